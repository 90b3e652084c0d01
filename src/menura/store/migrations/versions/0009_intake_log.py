"""how far each intake log segment has been drained (embedded SQLite servers)

Revision ID: 0009_intake_log
Revises: 0008_campaigns
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_intake_log"
down_revision = "0008_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_log_offsets",
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("segment"),
    )


def downgrade() -> None:
    op.drop_table("intake_log_offsets")
