"""stream_peers: no index on peer_id alone

Applying a batch of events finds its peers by their (stream_id, peer_id) keys, each a lookup in
the unique index (a VALUES list walked first on SQLite, arrays unnested on PostgreSQL): the
index on peer_id alone cost every join a write and served nothing else.

Revision ID: 3b7e5d1a9c42
Revises: 8c4e1a7d2f60
Create Date: 2026-12-04 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3b7e5d1a9c42"
down_revision: str | None = "8c4e1a7d2f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_stream_peers_peer_id", table_name="stream_peers")


def downgrade() -> None:
    op.create_index("ix_stream_peers_peer_id", "stream_peers", ["peer_id"])
