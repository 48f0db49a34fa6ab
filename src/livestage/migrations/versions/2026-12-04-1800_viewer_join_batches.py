"""viewer join batches: join intents packed a row per stream per write

A row per join cost SQLite two b-tree inserts per viewer of a flash crowd (the table and the
stream's index), 6 % of the join's time. The joins to one stream written together are now one
row: their count, the first one's time, and each viewer with its time as microseconds after it
(JSON). The joins recorded before are packed the same way, up to 1,000 a row, each stream's in
the order they were requested; going down unpacks them.

Revision ID: 30d3db6a1e4d
Revises: 6e2c9a4b7d15
Create Date: 2026-12-04 18:00:00.000000
"""

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op

import livestage.kit.db

revision: str = "30d3db6a1e4d"
down_revision: str | None = "6e2c9a4b7d15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_JOINS = 1_000
MICROSECOND = timedelta(microseconds=1)
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

JOINS = sa.table(
    "viewer_joins",
    sa.column("id", KEY),
    sa.column("stream_id", sa.Uuid()),
    sa.column("viewer_id", sa.String()),
    sa.column("requested_at", livestage.kit.db.UTCDateTime()),
)
BATCHES = sa.table(
    "viewer_join_batches",
    sa.column("id", KEY),
    sa.column("stream_id", sa.Uuid()),
    sa.column("first_requested_at", livestage.kit.db.UTCDateTime()),
    sa.column("joins", sa.Integer()),
    sa.column("viewers", sa.Text()),
)


def _trigger(table: str, postgresql: bool) -> list[str]:
    """A stream's joins go with it, as ON DELETE CASCADE would (no foreign key checked per row)."""
    name = f"{table}_go_with_their_stream"
    if not postgresql:
        return [
            f"CREATE TRIGGER {name} AFTER DELETE ON live_streams FOR EACH ROW "
            f"BEGIN DELETE FROM {table} WHERE stream_id = OLD.id; END"
        ]
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN DELETE FROM {table} WHERE stream_id = OLD.id; RETURN OLD; END $$",
        f"CREATE TRIGGER {name} AFTER DELETE ON live_streams "
        f"FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]


def _drop_trigger(table: str, postgresql: bool) -> None:
    name = f"{table}_go_with_their_stream"
    op.execute(f"DROP TRIGGER {name}" + (" ON live_streams" if postgresql else ""))
    if postgresql:
        op.execute(f"DROP FUNCTION {name}()")


def _packed(rows: Iterator[Any]) -> Iterator[dict[str, Any]]:
    """Rows ordered by stream, then request: each stream's, up to BATCH_JOINS a batch."""
    for stream_id, joins in groupby(rows, key=lambda row: row.stream_id):
        stream_joins = list(joins)
        for start in range(0, len(stream_joins), BATCH_JOINS):
            chunk = stream_joins[start : start + BATCH_JOINS]
            first = min(row.requested_at for row in chunk)
            viewers = [[row.viewer_id, (row.requested_at - first) // MICROSECOND] for row in chunk]
            yield {
                "stream_id": stream_id,
                "first_requested_at": first,
                "joins": len(chunk),
                "viewers": json.dumps(viewers, separators=(",", ":")),
            }


def _pages_of_joins(bind: Any, size: int = 10_000) -> Iterator[list[Any]]:
    """The recorded joins by stream, then id, a page at a time (a crowd's history is millions
    of rows): a stream split between pages gets one more batch."""
    columns = (JOINS.c.stream_id, JOINS.c.viewer_id, JOINS.c.requested_at, JOINS.c.id)
    after: tuple[Any, Any] | None = None
    while True:
        query = sa.select(*columns).order_by(JOINS.c.stream_id, JOINS.c.id).limit(size)
        if after is not None:
            query = query.where(sa.tuple_(JOINS.c.stream_id, JOINS.c.id) > after)
        page = bind.execute(query).all()
        if not page:
            return
        yield page
        after = (page[-1].stream_id, page[-1].id)


def _in_groups(rows: Iterator[dict[str, Any]], size: int = 500) -> Iterator[list[dict[str, Any]]]:
    group: list[dict[str, Any]] = []
    for row in rows:
        group.append(row)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.create_table(
        "viewer_join_batches",
        sa.Column("id", KEY, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column(
            "first_requested_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("joins", sa.Integer(), nullable=False),
        sa.Column("viewers", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viewer_join_batches")),
    )
    for page in _pages_of_joins(bind):
        for group in _in_groups(_packed(iter(page))):
            bind.execute(sa.insert(BATCHES), group)
    _drop_trigger("viewer_joins", postgresql)
    op.drop_index("ix_viewer_joins_stream_id", table_name="viewer_joins")
    op.drop_table("viewer_joins")
    op.create_index(op.f("ix_viewer_join_batches_stream_id"), "viewer_join_batches", ["stream_id"])
    for statement in _trigger("viewer_join_batches", postgresql):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.create_table(
        "viewer_joins",
        sa.Column("id", KEY, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("viewer_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", livestage.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_viewer_joins"),
    )
    batches = bind.execute(
        sa.select(BATCHES.c.stream_id, BATCHES.c.first_requested_at, BATCHES.c.viewers).order_by(
            BATCHES.c.id
        )
    )
    unpacked = [
        {
            "stream_id": stream_id,
            "viewer_id": viewer[:64],
            "requested_at": first + offset * MICROSECOND,
        }
        for stream_id, first, viewers in batches.fetchall()
        for viewer, offset in json.loads(viewers)
    ]
    unpacked.sort(key=lambda row: row["requested_at"])  # keys in request order, as before
    for group in _in_groups(iter(unpacked)):
        bind.execute(sa.insert(JOINS), group)
    _drop_trigger("viewer_join_batches", postgresql)
    op.drop_index(op.f("ix_viewer_join_batches_stream_id"), table_name="viewer_join_batches")
    op.drop_table("viewer_join_batches")
    op.create_index("ix_viewer_joins_stream_id", "viewer_joins", ["stream_id"])
    for statement in _trigger("viewer_joins", postgresql):
        op.execute(statement)
