"""petition case seq

The petition keeps the case's position as (``case_updated_at``, ``case_seq``): several actions of a case
share one instant, and of two ``case.status_changed`` made at that instant the one with the higher seq
wins whatever the delivery order.  Existing rows have no seq (NULL): they keep the time-only rule until
their next change.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('petitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_seq', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('petitions', schema=None) as batch_op:
        batch_op.drop_column('case_seq')
