"""provider_events.room_id: each event's room, stored with it

The worker applies a backlog in lanes, one per share of the rooms (on PostgreSQL, on
connections of their own), and claims a lane's events by this column: reading the room from
every waiting event's JSON payload doubled the claim's time. Events stored before have none
and are applied in the lane of the empty room id.

Revision ID: 6e2c9a4b7d15
Revises: 3b7e5d1a9c42
Create Date: 2026-12-04 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6e2c9a4b7d15"
down_revision: str | None = "3b7e5d1a9c42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("provider_events", sa.Column("room_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.drop_column("room_id")
