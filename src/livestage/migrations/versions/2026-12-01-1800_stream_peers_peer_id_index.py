"""stream_peers: an index on peer_id

Applying a batch of events reads the peers it touches by their 100ms peer ids in one statement;
the (stream_id, peer_id) unique index alone made SQLite probe every stream × peer combination.

Revision ID: 8f2a4c6e1d93
Revises: 6c1d8e4b2f70
Create Date: 2026-12-01 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8f2a4c6e1d93"
down_revision: str | None = "6c1d8e4b2f70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stream_peers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stream_peers_peer_id"), ["peer_id"])


def downgrade() -> None:
    with op.batch_alter_table("stream_peers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stream_peers_peer_id"))
