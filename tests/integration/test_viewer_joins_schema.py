"""The join intents' table after 9e1b7c4d2a60 (an integer key, no foreign key checked per row)
and 30d3db6a1e4d (packed a row per stream per write), on both databases: the joins already
recorded are kept, each stream's in the order they were requested, a stream's joins still go
with the stream, deleted directly or with its influencer, and both migrations go back down."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from bench.seed import seed_live_streams
from sqlalchemy import Uuid, column, delete, insert, select, table, text

from livestage import migrate
from livestage.kit.db import UTCDateTime
from livestage.models import Influencer, LiveStream, ViewerJoinBatch
from livestage.streams.intents import JoinIntent, pack
from tests.support.migrations import run, schema_differences

BEFORE = "3c8f1d6a9e42"
INTEGER_KEY = "9e1b7c4d2a60"
AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
COLUMNS = (column("stream_id", Uuid()), column("viewer_id"), column("requested_at", UTCDateTime()))
OLD_TABLE = table("viewer_joins", column("id", Uuid()), *COLUMNS)


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

    command.upgrade(migrate.alembic_config(url), INTEGER_KEY)

    kept = _joins(url)
    assert [(r[2]) for r in kept] == ["viewer-early", "viewer-mid", "viewer-late"]
    assert [r[0] for r in kept] == sorted(r[0] for r in kept)
    assert all(isinstance(r[0], int) for r in kept)

    migrate.upgrade(url)
    assert _packed(url) == [
        (first, 2, ["viewer-early", "viewer-mid"]),
        (second, 1, ["viewer-late"]),
    ]
    assert schema_differences(url) == []

    # Down again: the same joins, each with a key of its own, in the order requested.
    command.downgrade(migrate.alembic_config(url), INTEGER_KEY)
    assert [r[2] for r in _joins(url)] == ["viewer-early", "viewer-mid", "viewer-late"]
    command.downgrade(migrate.alembic_config(url), BEFORE)
    assert sorted(r[2] for r in _joins(url)) == ["viewer-early", "viewer-late", "viewer-mid"]


def _packed(url: str) -> list[tuple[Any, int, list[str]]]:
    """(stream, joins, viewers) of every batch, by stream as the tests' streams are ordered."""
    batch = ViewerJoinBatch
    (rows,) = run(url, select(batch.stream_id, batch.joins, batch.viewers).order_by(batch.id))
    batches = [(stream, joins, json.loads(viewers)) for stream, joins, viewers in rows]
    order = _stream_ids(url)
    return sorted(
        ((s, n, [viewer for viewer, _ in v]) for s, n, v in batches),
        key=lambda b: order.index(b[0]),
    )


def test_a_streams_joins_go_with_it(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url)
    seed_live_streams(url, 3)
    deleted, of_deleted_influencer, kept = _stream_ids(url)
    intents = [
        JoinIntent(s, f"viewer-{n}", AT)
        for n, s in enumerate((deleted, of_deleted_influencer, kept))
    ]
    run(url, insert(ViewerJoinBatch).values([b._asdict() for b in pack(intents)]))
    (influencer,) = run(
        url, select(LiveStream.influencer_id).where(LiveStream.id == of_deleted_influencer)
    )[0]

    run(
        url,
        delete(LiveStream).where(LiveStream.id == deleted),
        delete(Influencer).where(Influencer.id == influencer[0]),
    )

    assert _packed(url) == [(kept, 1, ["viewer-2"])]
