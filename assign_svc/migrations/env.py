"""Alembic environment of assign_svc (its own database)."""
from assign_svc.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
