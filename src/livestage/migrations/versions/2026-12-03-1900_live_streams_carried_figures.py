"""live_streams: figures carried to a checkpoint; stream_peers by (stream_id, left_at)

A live stream's figures are carried to a minute's start (its peak and watch time before it),
so a recompute reads only the peers connected at that instant or later, found by the new
(stream_id, left_at) index, where it read every peer the stream ever had; its distinct viewers
are counted from the (stream_id, user_id, is_broadcaster, joined_at) index alone.

Revision ID: 2f6b9d3e8a41
Revises: 5d2a8f7c1b93
Create Date: 2026-12-03 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "2f6b9d3e8a41"
down_revision: str | None = "5d2a8f7c1b93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE statements, not a batch: on SQLite a batch would copy live_streams into a
# new table, dropping the trigger that deletes a stream's viewer joins with it.


def upgrade() -> None:
    op.add_column(
        "live_streams",
        sa.Column("figures_carried_to", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "live_streams",
        sa.Column("carried_peak", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "live_streams",
        sa.Column("carried_watch_us", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index("ix_stream_peers_stream_left", "stream_peers", ["stream_id", "left_at"])
    op.create_index(
        "ix_stream_peers_stream_viewers",
        "stream_peers",
        ["stream_id", "user_id", "is_broadcaster", "joined_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_stream_peers_stream_viewers", table_name="stream_peers")
    op.drop_index("ix_stream_peers_stream_left", table_name="stream_peers")
    for name in ("carried_watch_us", "carried_peak", "figures_carried_to"):
        op.drop_column("live_streams", name)
