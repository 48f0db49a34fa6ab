"""checkpoint_peers (8c4e1a7d2f60), on both databases: a checkpoint carried before it has no
peers connected across it, so the migration clears it (the next recompute reads every peer and
carries the figures again); the (stream_id, left_at) index is gone, and back on the way down."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from bench.seed import seed_live_streams
from sqlalchemy import column, select, table, update

from livestage import migrate
from livestage.kit.db import UTCDateTime
from livestage.models import LiveStream
from tests.support.migrations import index_names, run, schema_differences

BEFORE = "2f6b9d3e8a41"
CHECKPOINT = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
STREAMS = table("live_streams", column("figures_carried_to", UTCDateTime()))
LEFT_INDEX = "ix_stream_peers_stream_left"


def test_checkpoints_carried_before_are_cleared(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url)
    seed_live_streams(url, 2)  # by today's models, then down to the schema before
    command.downgrade(migrate.alembic_config(url), BEFORE)
    run(url, update(STREAMS).values(figures_carried_to=CHECKPOINT))
    assert LEFT_INDEX in index_names(url, "stream_peers")

    migrate.upgrade(url)

    (rows,) = run(url, select(LiveStream.figures_carried_to))
    assert rows == [(None,), (None,)]
    assert LEFT_INDEX not in index_names(url, "stream_peers")
    assert schema_differences(url) == []

    command.downgrade(migrate.alembic_config(url), BEFORE)
    assert LEFT_INDEX in index_names(url, "stream_peers")
