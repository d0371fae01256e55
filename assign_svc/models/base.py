"""The declarative base of assign_svc and its outbox/inbox tables."""
from __future__ import annotations

from shared.db import make_base
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass
