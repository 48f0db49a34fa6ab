"""live_streams: the peers connected across a checkpoint; no (stream_id, left_at) index

A recompute of a stream whose figures are carried reads the peers connected across its
checkpoint by their ids, kept on the stream row, and those who joined from it on by the
(stream_id, joined_at, id) index: the (stream_id, left_at) index, written at every join and
leave (and on PostgreSQL keeping a leave from being a HOT update), is dropped. Checkpoints
carried before have no ids, so they are cleared: the next recompute reads every peer.

Revision ID: 8c4e1a7d2f60
Revises: 2f6b9d3e8a41
Create Date: 2026-12-03 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8c4e1a7d2f60"
down_revision: str | None = "2f6b9d3e8a41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE statements, not a batch: on SQLite a batch would copy live_streams into a
# new table, dropping the trigger that deletes a stream's viewer joins with it.


def upgrade() -> None:
    op.add_column("live_streams", sa.Column("carried_peers", sa.JSON(), nullable=True))
    op.execute("UPDATE live_streams SET figures_carried_to = NULL")
    op.drop_index("ix_stream_peers_stream_left", table_name="stream_peers")


def downgrade() -> None:
    op.create_index("ix_stream_peers_stream_left", "stream_peers", ["stream_id", "left_at"])
    op.drop_column("live_streams", "carried_peers")
