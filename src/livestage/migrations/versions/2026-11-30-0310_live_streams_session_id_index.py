"""live_streams.session_id index: every provider event finds its stream by session id

Revision ID: 8d2f4c6a1e93
Revises: 5b7c0e2a9d41
Create Date: 2026-11-30 03:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8d2f4c6a1e93"
down_revision: str | None = "5b7c0e2a9d41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_streams_session_id"), ["session_id"])


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_streams_session_id"))
