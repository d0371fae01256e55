"""case view last event seq

The case view keeps the position of the last folded case action as (``last_event_at``,
``last_event_seq``): several actions of a case share one instant, and of two actions at that instant
the one with the higher seq wins whatever the delivery order.  Existing views have no seq (NULL): they
keep the time-only rule until their next action.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case_views', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_event_seq', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('case_views', schema=None) as batch_op:
        batch_op.drop_column('last_event_seq')
