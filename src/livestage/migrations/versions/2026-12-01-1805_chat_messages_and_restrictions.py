"""chat: messages, restrictions (timeouts and bans), and chat figures on live_streams

chat_messages: each stream's messages, numbered per stream (seq). chat_restrictions: a viewer
identity timed out of or banned from an influencer's chat and streams. live_streams: message and
chatter counts, and slow mode.

Revision ID: 3ca3556ef08a
Revises: 8f2a4c6e1d93
Create Date: 2026-12-01 18:05:27.060313
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "3ca3556ef08a"
down_revision: str | None = "8f2a4c6e1d93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_restrictions",
        sa.Column("influencer_id", sa.Uuid(), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("timeout", "ban", name="restrictionkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("until", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_chat_restrictions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["influencer_id"],
            ["influencers.id"],
            name=op.f("fk_chat_restrictions_influencer_id_influencers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_restrictions")),
        sa.UniqueConstraint(
            "influencer_id", "identity", name=op.f("uq_chat_restrictions_influencer_id")
        ),
    )
    op.create_table(
        "chat_messages",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("author_identity", sa.String(length=64), nullable=False),
        sa.Column("author_name", sa.String(length=40), nullable=False),
        sa.Column(
            "author_role",
            sa.Enum("viewer", "influencer", "admin", name="chatrole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deleted_by"],
            ["users.id"],
            name=op.f("fk_chat_messages_deleted_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["live_streams.id"],
            name=op.f("fk_chat_messages_stream_id_live_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chat_messages_stream_author_sent",
            ["stream_id", "author_identity", "sent_at"],
            unique=False,
        )
        batch_op.create_index("ix_chat_messages_stream_seq", ["stream_id", "seq"], unique=True)

    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chat_messages", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("chatters", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "chat_slow_mode_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.drop_column("chat_slow_mode_seconds")
        batch_op.drop_column("chatters")
        batch_op.drop_column("chat_messages")

    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_messages_stream_seq")
        batch_op.drop_index("ix_chat_messages_stream_author_sent")

    op.drop_table("chat_messages")
    op.drop_table("chat_restrictions")
