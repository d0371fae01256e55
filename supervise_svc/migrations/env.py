"""Alembic environment of supervise_svc (its own database)."""
from supervise_svc.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
