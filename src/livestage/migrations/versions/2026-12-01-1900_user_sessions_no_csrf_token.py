"""user_sessions: the CSRF token is no longer stored

A signed-in session's CSRF token is derived from the session cookie's token
(`kit.crypto.csrf_token_of`), so the database holds no token a request could present. Sessions
open before the upgrade keep working: their pages get the derived token on the next load.

Revision ID: 5e7b9d1c3a20
Revises: 3ca3556ef08a
Create Date: 2026-12-01 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e7b9d1c3a20"
down_revision: str | None = "3ca3556ef08a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_column("csrf_token")


def downgrade() -> None:
    # The old code reads a stored token: give every open session a fresh random one.
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("csrf_token", sa.String(length=64), nullable=False, server_default="")
        )
    op.execute(
        "UPDATE user_sessions SET csrf_token = "
        + (
            "substr(md5(random()::text), 1, 32)"
            if op.get_bind().dialect.name == "postgresql"
            else "lower(hex(randomblob(16)))"
        )
    )
