"""stage rows carry their case's deadline_rows flag

The scorecard counts the few cases with several rows of a scored kind from their stage rows; the flag on
those rows and a partial index on their due let it find them without scanning every stage.  Existing
rows take the flag from their case view.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SCORED_KINDS = "('acceptance_notice', 'handling', 'assigned', 'evaluation')"


def upgrade() -> None:
    with op.batch_alter_table('supervise_case_stages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_rows', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE supervise_case_stages SET deadline_rows = true WHERE kind IN " + SCORED_KINDS +
               " AND case_id IN (SELECT case_id FROM case_views WHERE deadline_rows = true)")
    with op.batch_alter_table('supervise_case_stages', schema=None) as batch_op:
        batch_op.create_index('ix_supervise_case_stages_deadline_rows_due', ['due_at'], unique=False,
                              postgresql_where=sa.text('deadline_rows IS true'),
                              sqlite_where=sa.text('deadline_rows IS 1'))


def downgrade() -> None:
    with op.batch_alter_table('supervise_case_stages', schema=None) as batch_op:
        batch_op.drop_index('ix_supervise_case_stages_deadline_rows_due',
                            postgresql_where=sa.text('deadline_rows IS true'), sqlite_where=sa.text('deadline_rows IS 1'))
        batch_op.drop_column('deadline_rows')
