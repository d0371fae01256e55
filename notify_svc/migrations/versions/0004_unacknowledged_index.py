"""the unacknowledged notices' index (未签收通知一览)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    unacknowledged = sa.text("acknowledged_at IS NULL")
    op.create_index("ix_notices_unacknowledged", "notices", ["created_at"], unique=False,
                    sqlite_where=unacknowledged, postgresql_where=unacknowledged)


def downgrade() -> None:
    op.drop_index("ix_notices_unacknowledged", table_name="notices")
