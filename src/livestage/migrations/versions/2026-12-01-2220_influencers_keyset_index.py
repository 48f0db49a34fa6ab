"""Index for keyset pagination of the admin influencer list

The list pages newest first by (created_at, id) after the last row shown, like the stream lists
(7a4e2c9b5d18); this index lets both databases read a page as a range.

Revision ID: 3c8f1d6a9e42
Revises: 7a4e2c9b5d18
Create Date: 2026-12-01 22:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c8f1d6a9e42"
down_revision: str | None = "7a4e2c9b5d18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_influencers_created_at_id", "influencers", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_influencers_created_at_id", table_name="influencers")
