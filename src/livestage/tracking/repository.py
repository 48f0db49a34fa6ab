from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ARRAY,
    Table,
    any_,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from livestage.kit.db import driver_of, new_id
from livestage.kit.time import as_utc
from livestage.models import LiveStream, ProviderEvent, StreamPeer, StreamStatus, ViewerSample
from livestage.models.active import is_active

# Provider clocks and ours differ a little; an event may carry a time just before the stream row.
CLOCK_SKEW = timedelta(minutes=5)


class StoredEvent(NamedTuple):
    """A claimed inbox row: what applying it needs, no ORM object."""

    id: uuid.UUID
    external_id: str
    payload: Any
    received_at: datetime
    attempts: int


class Lane(NamedTuple):
    """Share `number` of `lanes` of the inbox, by the hash of each event's room: the worker
    applies the shares at once, on connections of their own, and no two share a stream
    (PostgreSQL)."""

    number: int
    lanes: int


# An event's lane: its room's id hashed (an event with none, and one stored before the column,
# in the lane of the empty id).
_IN_LANE = (
    "(hashtext(coalesce(provider_events.room_id, '')) % {count} + {count}) % {count} = {index}"
)


class StreamKey(NamedTuple):
    """What finding an event's stream compares (see `batch.StreamFinder.pick`)."""

    id: uuid.UUID
    room_id: str | None
    session_id: str | None
    created_at: datetime


# In the order of batch.PeerRow's fields, which is built from these rows.
PEER_COLUMNS = (
    "stream_id",
    "peer_id",
    "user_id",
    "name",
    "role",
    "is_broadcaster",
    "joined_at",
    "left_at",
    "left_inferred",
    "leave_reason",
    "id",
)


# A peer as the figures read it: (user id, is broadcaster, joined, left, its row's id as text),
# times in microseconds since the epoch (figures.Span), None when not (yet) known.
PeerSpan = tuple[str, bool, int | None, int | None, str]


class NewEvent(NamedTuple):
    """An event to store in the inbox, as received."""

    source: str
    external_id: str
    type: str
    payload: Any
    occurred_at: datetime | None
    received_at: datetime
    room_id: str | None


_EVENT_COLUMNS = (
    "id, source, external_id, type, payload, occurred_at, received_at, room_id, attempts"
)
# PostgreSQL: the batch as one array per column, unnested by the server: one statement with
# seven parameters whatever the batch (asyncpg encodes the arrays in C), where SQLAlchemy's
# multi-row VALUES bound and processed seven parameters per row in Python.
_INSERT_EVENTS_PG = text(
    f"INSERT INTO provider_events ({_EVENT_COLUMNS}) SELECT e.*, 0 FROM unnest("
    "CAST(:id AS uuid[]), CAST(:source AS varchar[]), CAST(:external_id AS varchar[]),"
    " CAST(:type AS varchar[]), CAST(:payload AS json[]), CAST(:occurred_at AS timestamptz[]),"
    " CAST(:received_at AS timestamptz[]), CAST(:room_id AS varchar[])) AS e"
    " ON CONFLICT (source, external_id) DO NOTHING RETURNING source, external_id"
)


def _insert_events_sqlite(count: int) -> str:
    """SQLite: the rows' values as the column types store them, sent to the driver directly."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, 0)"] * count)
    return (
        f"INSERT INTO provider_events ({_EVENT_COLUMNS}) VALUES {values}"
        " ON CONFLICT (source, external_id) DO NOTHING RETURNING source, external_id"
    )


_EVENTS = cast(Table, ProviderEvent.__table__)
_PEERS = cast(Table, StreamPeer.__table__)
_SAMPLES = cast(Table, ViewerSample.__table__)


_PEER_TYPES = {
    "stream_id": "uuid",
    "peer_id": "varchar",
    "user_id": "varchar",
    "name": "varchar",
    "role": "varchar",
    "is_broadcaster": "boolean",
    "joined_at": "timestamptz",
    "left_at": "timestamptz",
    "left_inferred": "boolean",
    "leave_reason": "varchar",
    "id": "uuid",
}
_PEERS_CHANGED = ", ".join(
    f"{name} = excluded.{name}"
    for name in PEER_COLUMNS
    if name not in ("id", "stream_id", "peer_id")
)
# PostgreSQL: the rows as one array per column, unnested by the server. One statement with
# eleven parameters whatever the batch, where a multi-row VALUES had eleven per row, each
# bound and processed in Python (asyncpg encodes the arrays in C).
_UPSERT_PEERS_PG = text(
    f"INSERT INTO stream_peers ({', '.join(PEER_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {_PEER_TYPES[name]}[])" for name in PEER_COLUMNS)
    + f") ON CONFLICT (stream_id, peer_id) DO UPDATE SET {_PEERS_CHANGED}"
)
# SQLite: the driver's own executemany over plain tuples, the values already in the form the
# column types store (`_sqlite_uuid`, `_sqlite_time`): no per-row work in SQLAlchemy, which
# was most of the cost of writing a batch's peers.
_UPSERT_PEERS_SQLITE = (
    f"INSERT INTO stream_peers ({', '.join(PEER_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in PEER_COLUMNS)})"
    f" ON CONFLICT (stream_id, peer_id) DO UPDATE SET {_PEERS_CHANGED}"
)
_UPDATE_LEAVES_SQLITE = (
    "UPDATE stream_peers SET left_at = ?, left_inferred = ?, leave_reason = ?"
    " WHERE stream_id = ? AND peer_id = ?"
)
_MARK_APPLIED_SQLITE = (
    "UPDATE provider_events SET processed_at = ?, stream_id = ?, error = NULL WHERE id = ?"
)
# PostgreSQL joins a batch's arrays to a table the way its estimates say is cheapest, and with
# thousands of keys that was a hash join over a scan of the whole table: every mark of a batch
# read every event ever stored, and each recompute every peer. So each key is looked up in an
# index, in a LATERAL subquery per key (OFFSET 0 keeps it one).
#
# A batch's stored peers by their keys, each looked up in the unique (stream_id, peer_id) index:
# PostgreSQL, the keys as two arrays unnested; SQLite, as a VALUES list it walks first (CROSS
# JOIN keeps that order), the rows as stored (`_sqlite_peer`).
_PEERS_BY_KEY_PG = text(
    f"SELECT {', '.join('p.' + name for name in PEER_COLUMNS)} FROM unnest("
    "CAST(:streams AS uuid[]), CAST(:peers AS varchar[])) AS w (stream_id, peer_id)"
    " CROSS JOIN LATERAL (SELECT * FROM stream_peers AS s"
    " WHERE s.stream_id = w.stream_id AND s.peer_id = w.peer_id OFFSET 0) AS p"
).columns(*(_PEERS.c[name] for name in PEER_COLUMNS))
_PEERS_BY_KEY_SQLITE = (
    "WITH w (stream_id, peer_id) AS (VALUES {keys}) "
    f"SELECT {', '.join('p.' + name for name in PEER_COLUMNS)} FROM w CROSS JOIN stream_peers"
    " AS p ON p.stream_id = w.stream_id AND p.peer_id = w.peer_id"
)
# PostgreSQL: the batch's event and stream ids as two arrays, one statement and two parameters.
# Each event found by its key, then updated where that found it (its rows are this transaction's
# since the claim locked them, so none moves meanwhile).
_MARK_APPLIED_PG = text(
    "UPDATE provider_events SET processed_at = :at, stream_id = marks.stream_id, error = NULL"
    " FROM (SELECT e.ctid AS row, m.stream_id FROM unnest(CAST(:ids AS uuid[]),"
    " CAST(:streams AS uuid[])) AS m (id, stream_id) CROSS JOIN LATERAL"
    " (SELECT ctid FROM provider_events WHERE id = m.id OFFSET 0) AS e) AS marks"
    " WHERE provider_events.ctid = marks.row"
)
_MARK_FAILED = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("b_id", type_=_EVENTS.c.id.type))
    .values(
        processed_at=bindparam("b_at", type_=_EVENTS.c.processed_at.type),
        attempts=bindparam("b_attempts", type_=_EVENTS.c.attempts.type),
        error=bindparam("b_error", type_=_EVENTS.c.error.type),
    )
)


# A batch of per-minute samples in one statement: PostgreSQL, one array per column unnested;
# SQLite, the driver's executemany over the stored forms.
_INSERT_SAMPLES_PG = text(
    "INSERT INTO viewer_samples (stream_id, minute, viewers) SELECT * FROM unnest("
    "CAST(:stream_id AS uuid[]), CAST(:minute AS timestamptz[]), CAST(:viewers AS integer[]))"
)
_INSERT_SAMPLES_SQLITE = "INSERT INTO viewer_samples (stream_id, minute, viewers) VALUES (?, ?, ?)"
# The rows found by their streams' key ranges first, then deleted where those found them (only
# a recompute writes a stream's samples, holding its stream's lock).
_DELETE_SAMPLES_PG = text(
    "DELETE FROM viewer_samples WHERE ctid = ANY(ARRAY(SELECT s.ctid FROM unnest("
    "CAST(:stream_id AS uuid[]), CAST(:since AS timestamptz[])) AS w (stream_id, since)"
    " CROSS JOIN LATERAL (SELECT ctid FROM viewer_samples"
    " WHERE stream_id = w.stream_id AND minute >= w.since OFFSET 0) AS s))"
)
_DELETE_SAMPLES_SQLITE = "DELETE FROM viewer_samples WHERE stream_id = ? AND minute >= ?"
# Each stream's peers connected at its figures' checkpoint or later (tracking.figures.stats_of):
# those who joined from it on, by the (stream_id, joined_at, id) index (a stream without a
# checkpoint passes the earliest time, so all), and those connected across it (CheckpointPeer).
# The ids as text; the times as exact microseconds since the epoch: PostgreSQL's epoch is a
# numeric to the microsecond; SQLite's stored text is "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
_SPAN_PG = (
    "SELECT CAST(p.stream_id AS text), p.user_id, p.is_broadcaster,"
    " CAST(EXTRACT(epoch FROM p.joined_at) * 1000000 AS bigint),"
    " CAST(EXTRACT(epoch FROM p.left_at) * 1000000 AS bigint), CAST(p.id AS text)"
)
_PEER_SPANS_PG = (
    f"{_SPAN_PG} FROM unnest($1::uuid[], $2::timestamptz[]) AS w (stream_id, since)"
    " CROSS JOIN LATERAL (SELECT * FROM stream_peers AS s"
    " WHERE s.stream_id = w.stream_id AND s.joined_at >= w.since OFFSET 0) AS p"
    f" UNION ALL {_SPAN_PG} FROM checkpoint_peers AS c"
    " CROSS JOIN LATERAL (SELECT * FROM stream_peers AS s WHERE s.id = c.peer_id OFFSET 0) AS p"
    " WHERE c.stream_id = ANY($3::uuid[])"
)
_SQLITE_US = (
    "CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) * 1000000"
    " + CAST(substr({0}, 21, 6) AS INTEGER)"
)
_SPAN_SQLITE = (
    "SELECT p.stream_id, p.user_id, p.is_broadcaster, "
    + _SQLITE_US.format("p.joined_at")
    + ", "
    + _SQLITE_US.format("p.left_at")
    + ", p.id"
)
# CROSS JOIN keeps SQLite's join order (each id looked up, not each of the stream's peers).
_PEER_SPANS_SQLITE = (
    "WITH w (stream_id, since) AS (VALUES {windows}) "
    f"{_SPAN_SQLITE} FROM w JOIN stream_peers AS p"
    " ON p.stream_id = w.stream_id AND p.joined_at >= w.since"
    f" UNION ALL {_SPAN_SQLITE} FROM checkpoint_peers AS c"
    " CROSS JOIN stream_peers AS p ON p.id = c.peer_id WHERE c.stream_id IN ({carried})"
)
_DELETE_CHECKPOINT_PEERS_PG = text(
    "DELETE FROM checkpoint_peers WHERE stream_id = ANY(CAST(:streams AS uuid[]))"
)
_INSERT_CHECKPOINT_PEERS_PG = text(
    "INSERT INTO checkpoint_peers (stream_id, peer_id)"
    " SELECT * FROM unnest(CAST(:stream_id AS uuid[]), CAST(:peer_id AS uuid[]))"
)
_DELETE_CHECKPOINT_PEERS_SQLITE = "DELETE FROM checkpoint_peers WHERE stream_id = ?"
_INSERT_CHECKPOINT_PEERS_SQLITE = "INSERT INTO checkpoint_peers (stream_id, peer_id) VALUES (?, ?)"
_STREAM_OF_ROW, _SPAN_OF_ROW = itemgetter(0), itemgetter(1, 2, 3, 4, 5)
# Before every peer: "since" for a stream whose every peer is read.
EVERY_PEER = datetime(1, 1, 1, tzinfo=UTC)
_UNIQUE_VIEWERS = (
    select(_PEERS.c.stream_id, func.count(_PEERS.c.user_id.distinct()))
    .where(_PEERS.c.is_broadcaster.is_(False), _PEERS.c.joined_at.is_not(None))
    .group_by(_PEERS.c.stream_id)
)


def _among(column: Any, values: Iterable[Any], dialect: str) -> Any:
    """`column IN values`; on PostgreSQL `= ANY` of one array parameter, where an IN list was
    rendered into the statement anew for every execution, one parameter per value."""
    if dialect == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(list(values))


def _sqlite_uuid(value: uuid.UUID | None) -> str | None:
    """As the Uuid column type stores it on SQLite."""
    return None if value is None else value.hex


def _sqlite_time(value: datetime | None) -> str | None:
    """As UTCDateTime stores it on SQLite: naive UTC text, to the microsecond (compared as text
    in SQL, so the form must be exactly that)."""
    return (
        None if value is None else as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
    )


def _sqlite_peer(row: Sequence[Any]) -> tuple[Any, ...]:
    """A stream_peers row as SQLite stores it (`_sqlite_uuid`, `_sqlite_time`, booleans as
    integers), in Python's types, as the column types read it."""
    stream_id, peer_id, user_id, name, role, broadcaster, joined, left, inferred, reason, key = row
    return (
        uuid.UUID(stream_id),
        peer_id,
        user_id,
        name,
        role,
        bool(broadcaster),
        _from_sqlite_time(joined),
        _from_sqlite_time(left),
        bool(inferred),
        reason,
        uuid.UUID(key),
    )


def _from_sqlite_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._dialect = session.get_bind().dialect.name

    async def insert_many_if_absent(self, events: Sequence[NewEvent]) -> set[tuple[str, str]]:
        """Store events in one statement, skipping (source, external_id) pairs already there;
        returns the pairs that were new."""
        if not events:
            return set()
        ids = [new_id() for _ in events]
        payloads = [json.dumps(e.payload) for e in events]  # as the JSON column writes them
        if self._dialect == "postgresql":
            columns = map(list, zip(*events, strict=True))
            parameters = dict(zip(NewEvent._fields, columns, strict=True))
            parameters.update(id=ids, payload=payloads)
            rows = await self.session.execute(_INSERT_EVENTS_PG, parameters)
        else:
            received = {at: _sqlite_time(at) for at in {e.received_at for e in events}}
            flat: list[object] = []
            for event_id, event, payload in zip(ids, events, payloads, strict=True):
                flat += (event_id.hex, event.source, event.external_id, event.type, payload)
                flat += (
                    _sqlite_time(event.occurred_at),
                    received[event.received_at],
                    event.room_id,
                )
            connection = await self.session.connection()
            rows = await connection.exec_driver_sql(_insert_events_sqlite(len(events)), tuple(flat))
        return {(source, external_id) for source, external_id in rows}

    async def has_unprocessed(self) -> bool:
        """Whether any stored event waits (the worker looks before taking the writer)."""
        statement = select(ProviderEvent.id).where(ProviderEvent.processed_at.is_(None)).limit(1)
        return (await self.session.scalar(statement)) is not None

    async def claim_unprocessed(self, limit: int, *, lane: Lane | None = None) -> list[StoredEvent]:
        """The oldest unapplied events, locked until the transaction ends (another process
        skips them: each is applied once); with `lane`, only those of its rooms (`Lane`)."""
        c = _EVENTS.c
        statement = (
            select(c.id, c.external_id, c.payload, c.received_at, c.attempts)
            .where(c.processed_at.is_(None))
            .order_by(c.received_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if lane is not None:
            statement = statement.where(text(_IN_LANE.format(count=lane.lanes, index=lane.number)))
        return [StoredEvent(*row) for row in await self.session.execute(statement)]

    async def mark_applied(
        self, applied: Sequence[tuple[uuid.UUID, uuid.UUID | None]], now: datetime
    ) -> None:
        """(event id, the stream it touched) pairs: applied at `now`."""
        if not applied:
            return
        if self._dialect == "postgresql":
            ids, streams = zip(*applied, strict=True)
            parameters = {"at": now, "ids": list(ids), "streams": list(streams)}
            await self.session.execute(_MARK_APPLIED_PG, parameters)
        else:
            at = _sqlite_time(now)
            rows = [(at, _sqlite_uuid(s), _sqlite_uuid(e)) for e, s in applied]
            await (await self.session.connection()).exec_driver_sql(_MARK_APPLIED_SQLITE, rows)

    async def mark_failed(
        self, failed: Sequence[tuple[uuid.UUID, int, str, datetime | None]]
    ) -> None:
        """(event id, attempts, error, processed_at: set once it is given up) tuples."""
        if failed:
            rows = [
                {"b_id": e, "b_attempts": n, "b_error": error, "b_at": at}
                for e, n, error, at in failed
            ]
            await self.session.execute(_MARK_FAILED, rows)

    async def count(self, *, processed: bool | None = None) -> int:
        statement = select(func.count()).select_from(ProviderEvent)
        if processed is not None:
            column = ProviderEvent.processed_at
            statement = statement.where(column.is_not(None) if processed else column.is_(None))
        return int(await self.session.scalar(statement) or 0)


class TrackingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._dialect = session.get_bind().dialect.name

    async def stream_keys(self, sessions: set[str], rooms: set[str]) -> list[StreamKey]:
        """Every stream an event of these sessions or rooms may belong to, in one statement
        (the batch picks each event's own among them)."""
        if not sessions and not rooms:
            return []
        statement = select(
            LiveStream.id, LiveStream.room_id, LiveStream.session_id, LiveStream.created_at
        ).where(
            or_(
                _among(LiveStream.session_id, sessions, self._dialect),
                _among(LiveStream.room_id, rooms, self._dialect),
            )
        )
        return [StreamKey(*row) for row in await self.session.execute(statement)]

    async def lock_streams(
        self, ids: Iterable[uuid.UUID], *, influencers: bool = True
    ) -> dict[uuid.UUID, LiveStream]:
        """The streams, locked until the transaction ends, in id order so two processes
        locking overlapping sets never wait for each other in a circle; read again even if
        the session holds them (another process may have changed them before the lock).
        Without `influencers`, a stream's influencer (and user) are not read: applying
        events never needs them, and they were two thirds of the objects loaded."""
        statement = (
            select(LiveStream)
            .where(_among(LiveStream.id, sorted(ids), self._dialect))
            .order_by(LiveStream.id)
            .with_for_update(of=LiveStream)
            .execution_options(populate_existing=True)
        )
        if not influencers:
            statement = statement.options(raiseload(LiveStream.influencer))
        await self.session.flush()
        return {stream.id: stream for stream in await self.session.scalars(statement)}

    async def lock_streams_unless_locked(self, ids: Iterable[uuid.UUID]) -> list[LiveStream]:
        """The streams no other transaction holds, locked until this one ends (PostgreSQL:
        SKIP LOCKED; SQLite has one writer anyway). Pending changes are flushed first."""
        statement = (
            select(LiveStream)
            .where(_among(LiveStream.id, sorted(ids), self._dialect))
            .order_by(LiveStream.id)
            .with_for_update(of=LiveStream, skip_locked=True)
            .execution_options(populate_existing=True)
        )
        await self.session.flush()
        return list(await self.session.scalars(statement))

    async def peer_rows(self, wanted: set[tuple[uuid.UUID, str]]) -> list[tuple[Any, ...]]:
        """The stored peers among these (stream id, peer id) pairs, as tuples of PEER_COLUMNS,
        in one statement."""
        if not wanted:
            return []
        if self._dialect == "postgresql":
            streams, peers = map(list, zip(*wanted, strict=True))
            rows = await self.session.execute(
                _PEERS_BY_KEY_PG, {"streams": streams, "peers": peers}
            )
            return [tuple(row) for row in rows]
        keys = [value for stream_id, peer_id in wanted for value in (stream_id.hex, peer_id)]
        statement = _PEERS_BY_KEY_SQLITE.format(keys=", ".join(["(?, ?)"] * len(wanted)))
        connection = await self.session.connection()
        rows = await connection.exec_driver_sql(statement, tuple(keys))
        return [_sqlite_peer(row) for row in rows]

    async def upsert_peers(
        self, rows: list[tuple[Any, ...]], *, leaves: list[tuple[Any, ...]] | None = None
    ) -> None:
        """Insert or overwrite peer rows (tuples of every column of PEER_COLUMNS), one
        statement; `leaves`, stored rows of which only the leave's columns changed, in one
        more on SQLite (on PostgreSQL an UPDATE joined to the batch's keys was no faster, and
        its plan was left to the estimates, where the upsert looks up each key)."""
        leaves = leaves or []
        if self._dialect == "postgresql":
            rows = rows + leaves
        elif leaves:
            changes = [(_sqlite_time(r[7]), r[8], r[9], _sqlite_uuid(r[0]), r[1]) for r in leaves]
            connection = await self.session.connection()
            await connection.exec_driver_sql(_UPDATE_LEAVES_SQLITE, changes)
        if not rows:
            return
        if self._dialect == "postgresql":
            columns = zip(*rows, strict=True)
            parameters = {
                name: list(values) for name, values in zip(PEER_COLUMNS, columns, strict=True)
            }
            await self.session.execute(_UPSERT_PEERS_PG, parameters)
        else:
            stored = [
                (_sqlite_uuid(r[0]), r[1], r[2], r[3], r[4], r[5])
                + (_sqlite_time(r[6]), _sqlite_time(r[7]), r[8], r[9], _sqlite_uuid(r[10]))
                for r in rows
            ]
            await (await self.session.connection()).exec_driver_sql(_UPSERT_PEERS_SQLITE, stored)

    async def peer_spans_of(
        self, since: dict[uuid.UUID, datetime | None]
    ) -> dict[uuid.UUID, list[PeerSpan]]:
        """Who was in each stream when: its peers connected at its `since` or later (every
        peer for None), only the columns the figures need, the times as microseconds since
        the epoch, read on the driver's connection. A `since` must be the stream's
        `figures_carried_to` as stored (its CheckpointPeer rows are read). A busy stream's
        peers are read at every recompute: the rows through SQLAlchemy and as datetimes cost
        about three times as much. Pending changes are flushed first: the rows must say what
        the session's objects say."""
        await self.session.flush()
        spans: dict[uuid.UUID, list[PeerSpan]] = {s: [] for s in since}
        if not since:
            return spans
        driver = await driver_of(self.session)
        carried = [stream_id for stream_id, at in since.items() if at is not None]
        # Each row names its stream by its id as text (str() on PostgreSQL, hex on SQLite):
        # a plain string to look up, where the driver's own UUID objects hashed slowly.
        if self._dialect == "postgresql":
            by_key = {str(stream_id): its_spans for stream_id, its_spans in spans.items()}
            times = [at or EVERY_PEER for at in since.values()]
            rows = await driver.fetch(_PEER_SPANS_PG, list(since), times, carried)
        else:
            by_key = {stream_id.hex: its_spans for stream_id, its_spans in spans.items()}
            windows = [(s.hex, _sqlite_time(at or EVERY_PEER)) for s, at in since.items()]
            statement = _PEER_SPANS_SQLITE.format(
                windows=", ".join(["(?, ?)"] * len(windows)),
                carried=", ".join(["?"] * len(carried)),
            )
            flat = [value for window in windows for value in window]
            rows = await driver.execute_fetchall(statement, flat + [s.hex for s in carried])
        if self._dialect == "postgresql":
            # Grouped as they come (each stream's, then those across the checkpoints), each
            # span cut from its row in C: a Python loop over the rows was ~2 µs a row, a third
            # of a storm's recompute of 200 streams with 400 recent peers each.
            for stream_id, its_rows in groupby(rows, _STREAM_OF_ROW):
                by_key[stream_id].extend(map(_SPAN_OF_ROW, its_rows))
            return spans
        for stream_id, user_id, is_broadcaster, joined, left, peer in rows:
            by_key[stream_id].append((user_id, bool(is_broadcaster), joined, left, peer))
        return spans

    async def replace_checkpoint_peers(self, peers: dict[uuid.UUID, list[str]]) -> None:
        """Each stream's peers connected across its checkpoint replaced by these (their ids as
        `peer_spans_of` gives them), in one delete and one insert."""
        if not peers:
            return
        rows = [(stream_id, peer) for stream_id, its_peers in peers.items() for peer in its_peers]
        if self._dialect == "postgresql":
            await self.session.execute(_DELETE_CHECKPOINT_PEERS_PG, {"streams": list(peers)})
            if rows:
                stream_ids, peer_ids = map(list, zip(*rows, strict=True))
                parameters = {"stream_id": stream_ids, "peer_id": peer_ids}
                await self.session.execute(_INSERT_CHECKPOINT_PEERS_PG, parameters)
            return
        connection = await self.session.connection()
        streams = [(stream_id.hex,) for stream_id in peers]
        await connection.exec_driver_sql(_DELETE_CHECKPOINT_PEERS_SQLITE, streams)
        if rows:
            stored = [(stream_id.hex, peer) for stream_id, peer in rows]
            await connection.exec_driver_sql(_INSERT_CHECKPOINT_PEERS_SQLITE, stored)

    async def unique_viewers_of(self, stream_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many distinct viewers each stream has had (counted by the database: a stream
        whose figures are carried reads only its recent peers)."""
        if not stream_ids:
            return {}
        statement = _UNIQUE_VIEWERS.where(_among(_PEERS.c.stream_id, stream_ids, self._dialect))
        counted: dict[uuid.UUID, int] = dict((await self.session.execute(statement)).all())
        return {stream_id: counted.get(stream_id, 0) for stream_id in stream_ids}

    async def replace_samples_of(
        self, samples: dict[uuid.UUID, tuple[datetime | None, list[tuple[datetime, int]]]]
    ) -> None:
        """Each stream's per-minute series from its `since` on (all for None) replaced by the
        one given, in one delete and one insert (every recompute writes its stream's series:
        SQLAlchemy ran the insert once per minute)."""
        if not samples:
            return
        rows = [
            (stream_id, minute, viewers)
            for stream_id, (_, series) in samples.items()
            for minute, viewers in series
        ]
        connection = await self.session.connection()
        if self._dialect == "postgresql":
            ids = list(samples)
            times = [since or EVERY_PEER for since, _ in samples.values()]
            await self.session.execute(_DELETE_SAMPLES_PG, {"stream_id": ids, "since": times})
            if rows:
                stream_ids, minutes, viewers = map(list, zip(*rows, strict=True))
                parameters = {"stream_id": stream_ids, "minute": minutes, "viewers": viewers}
                await self.session.execute(_INSERT_SAMPLES_PG, parameters)
        else:
            windows = [
                (_sqlite_uuid(s), _sqlite_time(since or EVERY_PEER))
                for s, (since, _) in samples.items()
            ]
            await connection.exec_driver_sql(_DELETE_SAMPLES_SQLITE, windows)
            if rows:
                stored = [(_sqlite_uuid(s), _sqlite_time(m), v) for s, m, v in rows]
                await connection.exec_driver_sql(_INSERT_SAMPLES_SQLITE, stored)

    async def stale_stream_ids(self) -> set[uuid.UUID]:
        rows = await self.session.scalars(select(LiveStream.id).where(LiveStream.figures_stale))
        return set(rows)

    async def peers(self, stream_id: uuid.UUID) -> list[StreamPeer]:
        statement = (
            select(StreamPeer)
            .where(StreamPeer.stream_id == stream_id)
            .order_by(StreamPeer.joined_at, StreamPeer.peer_id)
        )
        return list(await self.session.scalars(statement))

    async def close_open_peers(self, stream_id: uuid.UUID, at: datetime, reason: str) -> None:
        await self.session.execute(
            update(StreamPeer)
            .where(StreamPeer.stream_id == stream_id, StreamPeer.left_at.is_(None))
            .values(left_at=at, left_inferred=True, leave_reason=reason)
        )

    async def move_inferred_leaves(
        self, stream_id: uuid.UUID, estimate: datetime, actual: datetime
    ) -> None:
        """Peers closed at an estimated end (no leave of their own yet) close at the real one."""
        await self.session.execute(
            update(StreamPeer)
            .where(
                StreamPeer.stream_id == stream_id,
                StreamPeer.left_inferred.is_(True),
                StreamPeer.left_at == estimate,
            )
            .values(left_at=actual)
        )

    async def samples(self, stream_id: uuid.UUID) -> list[ViewerSample]:
        statement = (
            select(ViewerSample)
            .where(ViewerSample.stream_id == stream_id)
            .order_by(ViewerSample.minute)
        )
        return list(await self.session.scalars(statement))

    async def active_streams(self) -> list[LiveStream]:
        return list(await self.session.scalars(select(LiveStream).where(is_active())))

    async def due_to_end(
        self, *, left_before: datetime, created_before: datetime
    ) -> list[LiveStream]:
        """Live streams whose broadcaster left before `left_before`, and starting ones created
        before `created_before` (what `end_after_grace` ends: none, almost every second)."""
        statement = select(LiveStream).where(
            or_(
                (LiveStream.status == StreamStatus.live)
                & (LiveStream.broadcaster_left_at < left_before),
                (LiveStream.status == StreamStatus.starting)
                & (LiveStream.created_at < created_before),
            )
        )
        return list(await self.session.scalars(statement))

    async def rooms_to_close(self, provider: str) -> list[LiveStream]:
        """Streams over for livestage whose provider room a failed end-room left open."""
        statement = select(LiveStream).where(
            LiveStream.room_close_pending_since.is_not(None), LiveStream.provider == provider
        )
        return list(await self.session.scalars(statement))
