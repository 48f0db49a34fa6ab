"""stream tracking: provider events, peers, viewer samples

Revision ID: 31e152449adf
Revises: 48a0514e52de
Create Date: 2026-11-21 09:58:01.314219
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "31e152449adf"
down_revision: str | None = "48a0514e52de"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_events",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stream_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_provider_events_source")),
    )
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provider_events_unprocessed",
            ["received_at"],
            unique=False,
            sqlite_where=sa.text("processed_at IS NULL"),
            postgresql_where=sa.text("processed_at IS NULL"),
        )

    op.create_table(
        "stream_peers",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("peer_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("is_broadcaster", sa.Boolean(), nullable=False),
        sa.Column("joined_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_inferred", sa.Boolean(), nullable=False),
        sa.Column("leave_reason", sa.String(length=200), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["live_streams.id"],
            name=op.f("fk_stream_peers_stream_id_live_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_peers")),
        sa.UniqueConstraint("stream_id", "peer_id", name=op.f("uq_stream_peers_stream_id")),
    )
    with op.batch_alter_table("stream_peers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stream_peers_stream_id"), ["stream_id"], unique=False)

    op.create_table(
        "viewer_samples",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("minute", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["live_streams.id"],
            name=op.f("fk_viewer_samples_stream_id_live_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("stream_id", "minute", name=op.f("pk_viewer_samples")),
    )
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "broadcaster_left_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("current_viewers", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("recordings", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.alter_column("total_watch_seconds", type_=sa.Float(), existing_nullable=False)
        batch_op.alter_column("avg_watch_seconds", type_=sa.Float(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.alter_column("avg_watch_seconds", type_=sa.Integer(), existing_nullable=False)
        batch_op.alter_column("total_watch_seconds", type_=sa.Integer(), existing_nullable=False)
        batch_op.drop_column("recordings")
        batch_op.drop_column("current_viewers")
        batch_op.drop_column("broadcaster_left_at")

    op.drop_table("viewer_samples")
    with op.batch_alter_table("stream_peers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stream_peers_stream_id"))

    op.drop_table("stream_peers")
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_provider_events_unprocessed",
            sqlite_where=sa.text("processed_at IS NULL"),
            postgresql_where=sa.text("processed_at IS NULL"),
        )

    op.drop_table("provider_events")
