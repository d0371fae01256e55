"""the scorecard's per-case month facts

``supervise_score_facts``: one narrow row per case and local month in which something of the case counts
(``supervise_svc.scores.facts``); the month's scorecard is one GROUP BY over that month's rows.  Existing
cases get their facts computed here, in the service's time zone (``XINFANG_TIMEZONE``).

Revision ID: 0009
Revises: 0008
"""
import os

from alembic import op
import sqlalchemy as sa
import shared.db
from sqlalchemy.orm import Session


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'supervise_score_facts',
        sa.Column('petition_id', sa.String(length=32), nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('prefix', sa.String(length=9), nullable=False),
        *(sa.Column(name, sa.Boolean(), nullable=False) for name in (
            'registered', 'repeat', 'visit', 'cross_level_visit', 'evaluated', 'satisfied', 'closed', 'resolved',
            'judged', 'substantiated', 'a_closed', 'a_late')),
        sa.Column('a_open_due', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('h_closed', sa.Boolean(), nullable=False),
        sa.Column('h_late', sa.Boolean(), nullable=False),
        sa.Column('h_open_due', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('e_expired', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('petition_id', 'month'),
    )
    op.create_index('ix_supervise_score_facts_month', 'supervise_score_facts', ['month'], unique=False)
    from supervise_svc.scores import facts

    facts.configure(os.environ.get("XINFANG_TIMEZONE", "Asia/Shanghai"))
    session = Session(bind=op.get_bind())
    facts.rebuild_all(session)
    session.flush()


def downgrade() -> None:
    op.drop_index('ix_supervise_score_facts_month', table_name='supervise_score_facts')
    op.drop_table('supervise_score_facts')
