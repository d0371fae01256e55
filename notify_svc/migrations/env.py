"""Alembic environment of notify_svc (its own database)."""
from notify_svc.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
