"""Indexes for keyset pagination: stream lists, a stream's participants, the audit log

Every list pages by (sort instant, id) after the last row shown; these indexes let both databases
read a page as a range instead of sorting (or skipping) every row before it.

Revision ID: 7a4e2c9b5d18
Revises: 7d4e2a9b6c15
Create Date: 2026-12-01 19:35:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7a4e2c9b5d18"
down_revision: str | None = "7d4e2a9b6c15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("live_streams", "ix_live_streams_created_at_id", ["created_at", "id"]),
    ("live_streams", "ix_live_streams_influencer_created", ["influencer_id", "created_at", "id"]),
    ("live_streams", "ix_live_streams_status_created", ["status", "created_at", "id"]),
    ("stream_peers", "ix_stream_peers_stream_joined", ["stream_id", "joined_at", "id"]),
    ("audit_log", "ix_audit_log_created_at_id", ["created_at", "id"]),
    ("audit_log", "ix_audit_log_action_created", ["action", "created_at", "id"]),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
