"""live_streams.figures_stale: the figures are behind the peer rows until the next recompute

Revision ID: 3a9e1f7c5b20
Revises: 8d2f4c6a1e93
Create Date: 2026-11-30 04:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3a9e1f7c5b20"
down_revision: str | None = "8d2f4c6a1e93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "figures_stale", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.drop_column("figures_stale")
