"""Drop the index on stream_peers.stream_id alone

Two indexes begin with stream_id already (the unique (stream_id, peer_id) and the keyset
(stream_id, joined_at, id)) and serve every read by stream, the foreign key's cascade included;
the third cost every peer a write in each batch the worker applies.

Revision ID: 5d2a8f7c1b93
Revises: 9e1b7c4d2a60
Create Date: 2026-12-02 20:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5d2a8f7c1b93"
down_revision: str | None = "9e1b7c4d2a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_stream_peers_stream_id", table_name="stream_peers")


def downgrade() -> None:
    op.create_index("ix_stream_peers_stream_id", "stream_peers", ["stream_id"])
