"""What a batch of events reads and writes, gathered: its streams found and locked in a few
statements, its peers read at once, held in memory while the events apply, written back in one.

The events apply one by one, in order, exactly as alone (service.py's handlers); only the reads
and writes around them are shared. So a batch ends in the state its events would reach one at
a time.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import cast

from livestage.kit.db import new_id
from livestage.models import LiveStream
from livestage.tracking.repository import CLOCK_SKEW, StreamKey, TrackingRepository

Lookup = tuple[str | None, str | None, datetime | None]  # room id, session id, event time


@dataclass(slots=True)
class PeerRow:
    """A stream_peers row while a batch applies (the handlers read and set its fields); its
    fields in the order of repository.PEER_COLUMNS."""

    stream_id: uuid.UUID
    peer_id: str
    user_id: str
    name: str = ""
    role: str = ""
    is_broadcaster: bool = False
    joined_at: datetime | None = None
    left_at: datetime | None = None
    left_inferred: bool = False
    leave_reason: str | None = None
    id: uuid.UUID = field(default_factory=new_id)

    def values(self) -> tuple[object, ...]:
        """The row's columns, in the order of PEER_COLUMNS."""
        return (
            self.stream_id,
            self.peer_id,
            self.user_id,
            self.name,
            self.role,
            self.is_broadcaster,
            self.joined_at,
            self.left_at,
            self.left_inferred,
            self.leave_reason,
            self.id,
        )


class StreamFinder:
    """Each event's stream, from the streams of the batch's sessions and rooms read once; a
    stream that adopts a session during the batch is found by it from then on."""

    def __init__(self, repository: TrackingRepository, keys: list[StreamKey]) -> None:
        self.repository = repository
        self.streams: dict[uuid.UUID, LiveStream] = {}
        self._sessions = {k.session_id: k.id for k in keys if k.session_id}
        self._rooms: dict[str, list[StreamKey]] = defaultdict(list)
        for key in keys:
            if key.room_id:
                self._rooms[key.room_id].append(key)
        for candidates in self._rooms.values():
            candidates.sort(key=lambda k: k.created_at, reverse=True)

    @classmethod
    async def load(cls, repository: TrackingRepository, lookups: list[Lookup]) -> StreamFinder:
        """Read the candidates, then lock the streams the events pick (at most one each)."""
        sessions = {session for _, session, _ in lookups if session}
        rooms = {room for room, _, _ in lookups if room}
        finder = cls(repository, await repository.stream_keys(sessions, rooms))
        picked = {finder.pick(*lookup) for lookup in lookups} - {None}
        if picked:
            finder.streams = await repository.lock_streams(
                (s for s in picked if s is not None), influencers=False
            )
        return finder

    def pick(
        self, room_id: str | None, session_id: str | None, at: datetime | None
    ) -> uuid.UUID | None:
        """The id of the event's stream as the batch stands: the stream in its session, else
        the newest stream of its room created before the event (give or take CLOCK_SKEW)."""
        if session_id and (found := self._sessions.get(session_id)) is not None:
            return found
        for key in self._rooms.get(room_id or "", ()):
            if at is None or key.created_at <= at + CLOCK_SKEW:
                return key.id
        return None

    async def find(
        self, room_id: str | None, session_id: str | None, at: datetime | None
    ) -> LiveStream | None:
        stream_id = self.pick(room_id, session_id, at)
        if stream_id is None:
            return None
        if stream_id not in self.streams:  # not foreseen by `load`: read and lock it now
            self.streams.update(await self.repository.lock_streams([stream_id], influencers=False))
        return self.streams.get(stream_id)

    def session_changed(self, stream: LiveStream, before: str | None) -> None:
        if stream.session_id == before:
            return
        if before and self._sessions.get(before) == stream.id:
            del self._sessions[before]
        if stream.session_id:
            self._sessions.setdefault(stream.session_id, stream.id)


# What a peer's figures depend on: (user id, is broadcaster, joined, left).
PeerFacts = tuple[str, bool, datetime | None, datetime | None]
# Where they are in PeerRow.values().
_facts_of_values = itemgetter(2, 5, 6, 7)


def _facts(values: tuple[object, ...]) -> PeerFacts:
    return cast(PeerFacts, _facts_of_values(values))


def changes_carried(stored: PeerFacts | None, now: PeerFacts, carried_to: datetime) -> bool:
    """Whether a peer's change (from `stored`, None for a new peer) changes what its stream's
    figures carried to `carried_to` hold (figures.Checkpoint): its time before that instant,
    or the broadcaster it was (the broadcaster's last leave is read from the window's peers
    alone when it has a broadcaster)."""
    if stored is None and now[2] is not None and now[2] >= carried_to:
        return now[3] is not None and now[3] < carried_to  # the common case: a new peer
    if stored is not None and stored[1] and not now[1]:
        return True
    return _before(stored, carried_to) != _before(now, carried_to)


def _before(facts: PeerFacts | None, at: datetime) -> PeerFacts | None:
    """The peer as seen before `at`: its times from `at` on read as unknown."""
    if facts is None:
        return None
    user_id, is_broadcaster, joined, left = facts
    joined = joined if joined is not None and joined < at else None
    left = left if left is not None and left < at else None
    return None if joined is None and left is None else (user_id, is_broadcaster, joined, left)


class PeerBook:
    """The batch's peers: read together, changed in memory, written together. The statements
    that change every peer of a stream run at once and are mirrored on the peers held here."""

    def __init__(self, repository: TrackingRepository) -> None:
        self.repository = repository
        self._rows: dict[tuple[uuid.UUID, str], PeerRow] = {}
        self._stored: dict[tuple[uuid.UUID, str], tuple[object, ...]] = {}
        self._read: set[tuple[uuid.UUID, str]] = set()
        self._changed: set[tuple[uuid.UUID, str]] = set()

    async def load(self, wanted: set[tuple[uuid.UUID, str]]) -> None:
        """Read these (stream id, peer id) peers that are stored, keeping those held."""
        wanted = wanted - self._read
        self._read |= wanted
        for row in await self.repository.peer_rows(wanted):
            peer = PeerRow(*row)
            key = (peer.stream_id, peer.peer_id)
            if key not in self._rows:
                self._rows[key] = peer
                self._stored[key] = peer.values()

    def changed_before(self, carried_to: dict[uuid.UUID, datetime]) -> set[uuid.UUID]:
        """The streams among these (id → the instant their figures are carried to) whose
        peers the batch changed before that instant (`changes_carried`)."""
        changed = set()
        for key in self._changed:
            at = carried_to.get(key[0])
            if at is None or key[0] in changed:
                continue
            stored, peer = self._stored.get(key), self._rows[key]
            now = (peer.user_id, peer.is_broadcaster, peer.joined_at, peer.left_at)
            if changes_carried(None if stored is None else _facts(stored), now, at):
                changed.add(key[0])
        return changed

    async def get(self, stream_id: uuid.UUID, peer_id: str) -> PeerRow | None:
        """The peer, which the batch will write back (the caller may change it)."""
        key = (stream_id, peer_id)
        if key not in self._read:  # not foreseen by the batch's `load`: read it now
            await self.load({key})
        peer = self._rows.get(key)
        if peer is not None:
            self._changed.add(key)
        return peer

    def add(self, peer: PeerRow) -> PeerRow:
        key = (peer.stream_id, peer.peer_id)
        self._rows[key] = peer
        self._changed.add(key)
        return peer

    async def close_open_peers(self, stream_id: uuid.UUID, at: datetime, reason: str) -> None:
        await self.repository.close_open_peers(stream_id, at, reason)
        for key, peer in self._of(stream_id):
            if peer.left_at is None:
                peer.left_at, peer.left_inferred, peer.leave_reason = at, True, reason
                self._changed.add(key)

    async def move_inferred_leaves(
        self, stream_id: uuid.UUID, estimate: datetime, actual: datetime
    ) -> None:
        await self.repository.move_inferred_leaves(stream_id, estimate, actual)
        for key, peer in self._of(stream_id):
            if peer.left_inferred and peer.left_at == estimate:
                peer.left_at = actual
                self._changed.add(key)

    def _of(self, stream_id: uuid.UUID) -> list[tuple[tuple[uuid.UUID, str], PeerRow]]:
        return [(key, peer) for key, peer in self._rows.items() if key[0] == stream_id]

    async def write(self) -> None:
        """Write back the peers the batch changed; those whose leave alone changed apart (on
        SQLite a statement rewrites every index on a column it sets, changed or not)."""
        rows, leaves = [], []
        for key in self._changed:
            row, stored = self._rows[key].values(), self._stored.get(key)
            if row == stored:
                continue
            # All but the leave's columns (left_at, left_inferred, leave_reason) as stored.
            if stored is not None and row[:7] == stored[:7] and row[10:] == stored[10:]:
                leaves.append(row)
            else:
                rows.append(row)
        await self.repository.upsert_peers(rows, leaves=leaves)
