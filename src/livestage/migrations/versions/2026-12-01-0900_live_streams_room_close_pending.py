"""live_streams: the room End Stream could not close, and a session closed before its broadcaster

room_close_pending_since: ending the provider's room failed; the reconciler retries until it is
closed. session_closed_at: the session closed before the broadcaster's join was applied (viewers
alone, or events out of order); that join ends the stream then.

Revision ID: 6c1d8e4b2f70
Revises: 3a9e1f7c5b20
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "6c1d8e4b2f70"
down_revision: str | None = "3a9e1f7c5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "session_closed_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "room_close_pending_since",
                livestage.kit.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.create_index(
            batch_op.f("ix_live_streams_room_close_pending_since"), ["room_close_pending_since"]
        )


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_streams_room_close_pending_since"))
        batch_op.drop_column("room_close_pending_since")
        batch_op.drop_column("session_closed_at")
