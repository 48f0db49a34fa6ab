"""viewer joins: one row per viewer token minted (the join intent)

Revision ID: 5b7c0e2a9d41
Revises: 31e152449adf
Create Date: 2026-11-21 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "5b7c0e2a9d41"
down_revision: str | None = "31e152449adf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "viewer_joins",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("viewer_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["live_streams.id"],
            name=op.f("fk_viewer_joins_stream_id_live_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viewer_joins")),
    )
    with op.batch_alter_table("viewer_joins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_viewer_joins_stream_id"), ["stream_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("viewer_joins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_viewer_joins_stream_id"))
    op.drop_table("viewer_joins")
