"""checkpoint_peers: the peers connected across a checkpoint; no (stream_id, left_at) index

A recompute of a stream whose figures are carried reads the peers connected across its
checkpoint by their ids, kept in checkpoint_peers, and those who joined from it on by the
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


def upgrade() -> None:
    op.create_table(
        "checkpoint_peers",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("peer_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["live_streams.id"],
            name=op.f("fk_checkpoint_peers_stream_id_live_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("stream_id", "peer_id", name=op.f("pk_checkpoint_peers")),
    )
    op.execute("UPDATE live_streams SET figures_carried_to = NULL")
    op.drop_index("ix_stream_peers_stream_left", table_name="stream_peers")


def downgrade() -> None:
    op.create_index("ix_stream_peers_stream_left", "stream_peers", ["stream_id", "left_at"])
    op.drop_table("checkpoint_peers")
