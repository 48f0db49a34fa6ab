"""live_streams: HLS asked for at go-live, its state and why it did not start

hls_status: null when the stream did not ask for HLS; starting, running, stopped or failed
(100ms's hls.* events or go-live). hls_problem: what kept it from starting.

Revision ID: 7d4e2a9b6c15
Revises: 5e7b9d1c3a20
Create Date: 2026-12-01 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d4e2a9b6c15"
down_revision: str | None = "5e7b9d1c3a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hls_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("hls_problem", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.drop_column("hls_problem")
        batch_op.drop_column("hls_status")
