"""Alembic environment of intake_svc (its own database)."""
from intake_svc.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
