"""viewer joins: an integer key, and no foreign key checked per row

A flash crowd records thousands of joins a second. A random UUID key and a foreign-key check per
row were a share of each row's cost; an increasing integer key (SQLite's rowid) and a trigger
that deletes a stream's joins with the stream (as ON DELETE CASCADE did) cost nothing per join.
The rows are copied in the order they were requested.

Revision ID: 9e1b7c4d2a60
Revises: 3c8f1d6a9e42
Create Date: 2026-12-02 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "9e1b7c4d2a60"
down_revision: str | None = "3c8f1d6a9e42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER = "viewer_joins_go_with_their_stream"
SQLITE_TRIGGER = f"""
CREATE TRIGGER {TRIGGER} AFTER DELETE ON live_streams FOR EACH ROW
BEGIN DELETE FROM viewer_joins WHERE stream_id = OLD.id; END
"""
POSTGRESQL_TRIGGER = (
    f"""
CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM viewer_joins WHERE stream_id = OLD.id;
    RETURN OLD;
END $$
""",
    f"""
CREATE TRIGGER {TRIGGER} AFTER DELETE ON live_streams
FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()
""",
)
COLUMNS = "stream_id, viewer_id, requested_at"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # PostgreSQL's key index is named after it, and the old table's index has the name yet.
    key = "pk_viewer_joins_new" if postgresql else "pk_viewer_joins"
    op.create_table(
        "viewer_joins_new",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("viewer_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=key),
    )
    op.execute(
        f"INSERT INTO viewer_joins_new ({COLUMNS}) "
        f"SELECT {COLUMNS} FROM viewer_joins ORDER BY requested_at, id"
    )
    op.drop_table("viewer_joins")
    op.rename_table("viewer_joins_new", "viewer_joins")
    if postgresql:
        op.execute(f"ALTER TABLE viewer_joins RENAME CONSTRAINT {key} TO pk_viewer_joins")
        op.execute("ALTER SEQUENCE viewer_joins_new_id_seq RENAME TO viewer_joins_id_seq")
        for statement in POSTGRESQL_TRIGGER:
            op.execute(statement)
    else:
        op.execute(SQLITE_TRIGGER)
    op.create_index("ix_viewer_joins_stream_id", "viewer_joins", ["stream_id"])


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(f"DROP TRIGGER {TRIGGER}" + (" ON live_streams" if postgresql else ""))
    if postgresql:
        op.execute(f"DROP FUNCTION {TRIGGER}()")
    op.create_table(
        "viewer_joins_old",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("viewer_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["live_streams.id"],
            name="fk_viewer_joins_stream_id_live_streams",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "id", name="pk_viewer_joins_old" if postgresql else "pk_viewer_joins"
        ),
    )
    new_id = "gen_random_uuid()" if postgresql else "lower(hex(randomblob(16)))"
    op.execute(
        f"INSERT INTO viewer_joins_old ({COLUMNS}, id) "
        f"SELECT {COLUMNS}, {new_id} FROM viewer_joins "
        "WHERE stream_id IN (SELECT id FROM live_streams)"
    )
    op.drop_table("viewer_joins")
    op.rename_table("viewer_joins_old", "viewer_joins")
    if postgresql:
        op.execute(
            "ALTER TABLE viewer_joins RENAME CONSTRAINT pk_viewer_joins_old TO pk_viewer_joins"
        )
    op.create_index("ix_viewer_joins_stream_id", "viewer_joins", ["stream_id"])
