"""The join intents' table after 9e1b7c4d2a60 (an integer key, no foreign key checked per row),
on both databases: the rows already recorded are kept in the order they were requested, a
stream's joins still go with the stream, deleted directly or with its influencer, and the
migration goes back down."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from bench.seed import seed_live_streams
from sqlalchemy import Uuid, column, delete, insert, select, table, text

from livestage import migrate
from livestage.kit.db import UTCDateTime
from livestage.models import Influencer, LiveStream
from tests.support.migrations import run, schema_differences

BEFORE = "3c8f1d6a9e42"
AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
COLUMNS = (column("stream_id", Uuid()), column("viewer_id"), column("requested_at", UTCDateTime()))
OLD_TABLE = table("viewer_joins", column("id", Uuid()), *COLUMNS)
NEW_TABLE = table("viewer_joins", *(column(c.name, c.type) for c in COLUMNS))


def _stream_ids(url: str) -> list[Any]:
    (rows,) = run(url, select(LiveStream.id).order_by(LiveStream.room_id))
    return [r[0] for r in rows]


def _joins(url: str) -> list[tuple[Any, ...]]:
    (rows,) = run(url, text("SELECT id, stream_id, viewer_id FROM viewer_joins ORDER BY id"))
    return [tuple(r) for r in rows]


def test_the_joins_recorded_before_are_kept_in_the_order_requested(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url)
    seed_live_streams(url, 2)  # by today's models, then down to the schema of the joins below
    command.downgrade(migrate.alembic_config(url), BEFORE)
    first, second = _stream_ids(url)
    rows = [(second, "viewer-late", 2), (first, "viewer-early", 0), (first, "viewer-mid", 1)]
    run(
        url,
        insert(OLD_TABLE).values(
            [
                {
                    "id": uuid.uuid4(),
                    "stream_id": s,
                    "viewer_id": v,
                    "requested_at": AT + n * SECOND,
                }
                for s, v, n in rows
            ]
        ),
    )

    migrate.upgrade(url)

    kept = _joins(url)
    assert [(r[2]) for r in kept] == ["viewer-early", "viewer-mid", "viewer-late"]
    assert [r[0] for r in kept] == sorted(r[0] for r in kept)
    assert all(isinstance(r[0], int) for r in kept)
    assert schema_differences(url) == []

    # Down again: the same joins, each with a key of its own.
    command.downgrade(migrate.alembic_config(url), BEFORE)
    assert sorted(r[2] for r in _joins(url)) == ["viewer-early", "viewer-late", "viewer-mid"]


def test_a_streams_joins_go_with_it(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url)
    seed_live_streams(url, 3)
    deleted, of_deleted_influencer, kept = _stream_ids(url)
    run(
        url,
        insert(NEW_TABLE).values(
            [
                {"stream_id": s, "viewer_id": f"viewer-{n}", "requested_at": AT}
                for n, s in enumerate((deleted, of_deleted_influencer, kept))
            ]
        ),
    )
    (influencer,) = run(
        url, select(LiveStream.influencer_id).where(LiveStream.id == of_deleted_influencer)
    )[0]

    run(
        url,
        delete(LiveStream).where(LiveStream.id == deleted),
        delete(Influencer).where(Influencer.id == influencer[0]),
    )

    assert [r[2] for r in _joins(url)] == ["viewer-2"]
