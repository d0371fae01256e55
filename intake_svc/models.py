"""intake_svc tables: petitions (信访件), petitioners (信访人), county-system API keys,
idempotency keys, the change history and the audit of personal-data reads."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import make_base, new_id
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass


class Petition(Base):
    """A registered petition (信访件).  ``id`` is immutable; ``display_no`` is for people."""

    __tablename__ = "petitions"
    __table_args__ = (
        UniqueConstraint("system", "county_no", name="uq_petitions_system_county_no"),
        Index("ix_petitions_region_registered", "region_code", "registered_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    display_no: Mapped[str] = mapped_column(String(32), unique=True)
    system: Mapped[str] = mapped_column(String(64))  # the registering system (登记系统)
    county_no: Mapped[str | None] = mapped_column(String(64))  # that system's own number
    channel: Mapped[str] = mapped_column(String(16))  # 信访形式
    purpose: Mapped[str] = mapped_column(String(16))  # 信访目的
    statutory_type: Mapped[str] = mapped_column(String(16))  # 申诉求决类 / 检举控告类 / 建议意见类
    petitioned_at: Mapped[datetime]  # when the petitioner came, wrote or called
    registered_at: Mapped[datetime] = mapped_column(index=True)  # when it was registered (登记时间)
    received_at: Mapped[datetime]  # when intake received it
    registrar: Mapped[str] = mapped_column(String(64))
    registrar_kind: Mapped[str] = mapped_column(String(16))  # staff | api_key
    registrar_level: Mapped[str] = mapped_column(String(16))  # province | city | county | township
    people_count: Mapped[int] = mapped_column(Integer, default=1)
    group_visit: Mapped[bool] = mapped_column(Boolean, default=False)  # 集体访
    title: Mapped[str] = mapped_column(String(200))
    request_text: Mapped[str] = mapped_column(Text)  # 诉求
    facts: Mapped[str] = mapped_column(Text, default="")  # 事实与理由
    category_code: Mapped[str] = mapped_column(String(8), index=True)
    category_name: Mapped[str] = mapped_column(String(64))
    classic_code: Mapped[str] = mapped_column(String(4))
    category_table_version: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(12))  # 问题属地
    complained_party: Mapped[str] = mapped_column(String(200), default="")  # 被反映人/单位
    legal_litigation: Mapped[bool] = mapped_column(Boolean, default=False)  # 涉法涉诉
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)  # 重大紧急
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    first_time: Mapped[bool] = mapped_column(Boolean, default=True)  # 初信初访
    # Detection at registration (重复 / 回流 / 越级 / 不再受理)
    repeat_of: Mapped[str | None] = mapped_column(String(32), index=True)
    repeat_of_display_no: Mapped[str | None] = mapped_column(String(32))
    repeat_score: Mapped[float | None] = mapped_column(Float)
    repeat_reasons: Mapped[list] = mapped_column(JSON, default=list)
    reflow: Mapped[bool] = mapped_column(Boolean, default=False)
    cross_level: Mapped[bool] = mapped_column(Boolean, default=False)
    no_longer_accepted: Mapped[bool] = mapped_column(Boolean, default=False)  # a proposal to confirm
    # What intake knows of the case, from case.status_changed
    case_status: Mapped[str] = mapped_column(String(16), default="")
    case_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    case_final: Mapped[bool] = mapped_column(Boolean, default=False)
    case_updated_at: Mapped[datetime | None]
    #: The ``seq`` (number in the case's timeline) of the change applied last: with ``case_updated_at`` the
    #: case's position, so that of two changes made at one instant the later action wins whatever the
    #: delivery order (NULL: no change yet, or one from a producer that sent no seq).
    case_seq: Mapped[int | None]

    petitioners: Mapped[list["Petitioner"]] = relationship(
        back_populates="petition", order_by="Petitioner.seq", cascade="all, delete-orphan", lazy="selectin")


class Petitioner(Base):
    """A petitioner (信访人); ``seq`` 0 is the main one.  Identity number and phone are
    stored encrypted, matched through keyed blind indexes."""

    __tablename__ = "petitioners"
    __table_args__ = (
        Index("ix_petitioners_id_blind_at", "id_blind", "registered_at"),
        Index("ix_petitioners_phone_blind_at", "phone_blind", "registered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[str] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64), default="")
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_blind: Mapped[str | None] = mapped_column(String(64))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_blind: Mapped[str | None] = mapped_column(String(64))
    address_code: Mapped[str | None] = mapped_column(String(12))
    address: Mapped[str] = mapped_column(String(200), default="")
    registered_at: Mapped[datetime]  # copied from the petition for the (blind, time) indexes

    petition: Mapped[Petition] = relationship(back_populates="petitioners")


class DisplaySequence(Base):
    """Last display-number sequence used per region and local day (gaps are tolerated)."""

    __tablename__ = "display_sequences"

    region6: Mapped[str] = mapped_column(String(6), primary_key=True)
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class PetitionChange(Base):
    """The change history of a petition (变更记录): who did what, when, and what changed."""

    __tablename__ = "petition_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[str] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)


class ApiClient(Base):
    """A county system's API key (接口密钥): stored hashed, bound to a jurisdiction, revocable."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    system: Mapped[str] = mapped_column(String(64))
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    rate_limit: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The first response to an ``Idempotency-Key``, per caller."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class PiiAccess(Base):
    """Audit of every read of a full identity number or phone (个人信息查看记录)."""

    __tablename__ = "pii_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    petition_id: Mapped[str] = mapped_column(String(32), index=True)
    fields: Mapped[list] = mapped_column(JSON, default=list)
    via: Mapped[str] = mapped_column(String(64))


from intake_svc.imports import models as imports_models  # noqa: E402,F401  (the imports table)
