"""Join intents, and how they are stored: a row per stream per write, not a row per join.

A flash crowd asks to join thousands of times a second. A row per join cost SQLite a b-tree
insert into the table and one into the stream's index for every viewer (~5 µs a join in
process, 6 % of a served join's time; packed, ~1 µs: bench/results/NOTES.md). Packed, the
joins to one stream written together are one row: how many, when the first was asked for,
and each viewer with its time as an offset from it, in JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

# A row holds at most this many joins (a crowd on one stream writes several rows a second).
BATCH_JOINS = 1_000
MICROSECOND = timedelta(microseconds=1)


class JoinIntent(NamedTuple):
    """A viewer asked to watch (a token was minted), before any provider event says the viewer
    really connected."""

    stream_id: uuid.UUID
    viewer_id: str
    requested_at: datetime


class JoinBatch(NamedTuple):
    """A row of `viewer_join_batches`: up to BATCH_JOINS intents to one stream."""

    stream_id: uuid.UUID
    first_requested_at: datetime
    joins: int
    # [[viewer id, microseconds after first_requested_at], ...], in the order they came.
    viewers: str


def pack(intents: Iterable[JoinIntent], *, size: int = BATCH_JOINS) -> Iterator[JoinBatch]:
    """Each stream's intents, in the order given, `size` to a batch."""
    by_stream: dict[uuid.UUID, list[JoinIntent]] = {}
    for intent in intents:
        if (joins := by_stream.get(intent.stream_id)) is None:
            joins = by_stream[intent.stream_id] = []
        joins.append(intent)
    for stream_id, joins in by_stream.items():
        for start in range(0, len(joins), size):
            chunk = joins[start : start + size]
            first = min(at for _, _, at in chunk)
            viewers = [[viewer, (at - first) // MICROSECOND] for _, viewer, at in chunk]
            yield JoinBatch(
                stream_id, first, len(chunk), json.dumps(viewers, separators=(",", ":"))
            )


def unpack(batch: JoinBatch) -> list[JoinIntent]:
    first = batch.first_requested_at
    return [
        JoinIntent(batch.stream_id, viewer, first + offset * MICROSECOND)
        for viewer, offset in json.loads(batch.viewers)
    ]
