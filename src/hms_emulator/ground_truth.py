"""Viewer statistics of a session, computed from the emulator's own peer records.

`GET /_emulator/rooms/{room_id}/ground-truth[?session_id=]` is what livestage's stream tracking
must reproduce from webhooks alone. Definitions (livestage uses the same ones):

* A *viewer* is a `user_id` among the peers whose role is not the broadcaster role
  (`broadcaster`): one person's tabs, reloads and reconnects are one viewer (livestage's SPEC §4).
* Each peer is the half-open interval [joined_at, left_at). A viewer is connected over the union
  of their peers' intervals. A leave and a join at the same instant do not overlap; a
  zero-length interval covers no instant.
* **peak_viewers** = the maximum number of viewers connected at any instant.
* **unique_viewers** = the number of distinct `user_id` among viewer peers.
* **viewer_role_peers** = the number of viewer peers (a re-join is a new peer).
* **total_watch_seconds** = sum over viewers of the length of the union of their intervals: the
  exact sum in microseconds, divided by 10^6 (a float).
* **per_minute_peak** = for each UTC minute from the minute of the session start to the minute
  of the session end inclusive, the maximum viewers connected within [minute, minute + 60 s).
* **duration_seconds** = session end − session start in whole seconds, rounded down (the same
  number as `session_duration` in `session.close.success`).

Times are rendered exactly as in the webhooks (`session_started_at`, `joined_at`, `left_at`,
`session_stopped_at`): RFC 3339 UTC with nine fractional digits, the last three zero.

A session still open has `ended_at` and `duration_seconds` null and its connected peers have
`left_at` null: they count as watching up to the session's last join or leave (`as_of`), which
bounds their watch time and the per-minute list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from hms_emulator.state import Peer, Session, ts_nanos, ts_seconds

BROADCASTER_ROLE = "broadcaster"
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)

# (instant, viewers connected from that instant on)
Step = tuple[datetime, int]


def is_viewer(peer: Peer) -> bool:
    return peer.role != BROADCASTER_ROLE


# A viewer connected from `joined_at` until `left_at` (None: still connected)
Span = tuple[datetime, datetime | None]


def connected_spans(viewers: Iterable[Peer]) -> list[Span]:
    """Each viewer's connected time: the union of their peers' intervals (overlapping or
    touching intervals merge), as disjoint spans."""
    by_user: dict[str, list[Peer]] = {}
    for peer in viewers:
        by_user.setdefault(peer.user_id, []).append(peer)
    spans: list[Span] = []
    for peers in by_user.values():
        peers.sort(key=lambda peer: peer.joined_at)
        start, end = peers[0].joined_at, peers[0].left_at
        for peer in peers[1:]:
            if end is None:
                break
            if peer.joined_at > end:
                spans.append((start, end))
                start, end = peer.joined_at, peer.left_at
            elif peer.left_at is None or peer.left_at > end:
                end = peer.left_at
        spans.append((start, end))
    return spans


def viewer_steps(viewers: Iterable[Peer]) -> list[Step]:
    """The viewer count as a step function: all joins and leaves at one instant net out first."""
    deltas: dict[datetime, int] = {}
    for joined_at, left_at in connected_spans(viewers):
        deltas[joined_at] = deltas.get(joined_at, 0) + 1
        if left_at is not None:
            deltas[left_at] = deltas.get(left_at, 0) - 1
    steps: list[Step] = []
    count = 0
    for instant in sorted(deltas):
        count += deltas[instant]
        steps.append((instant, count))
    return steps


def peak(steps: list[Step]) -> int:
    return max((count for _, count in steps), default=0)


def per_minute_peak(
    steps: list[Step], start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    result: list[tuple[datetime, int]] = []
    minute = floor_minute(start)
    index, current = 0, 0
    while minute <= floor_minute(end):
        # The count at the minute's first instant includes changes exactly at that instant.
        while index < len(steps) and steps[index][0] <= minute:
            current = steps[index][1]
            index += 1
        best = current
        while index < len(steps) and steps[index][0] < minute + MINUTE:
            current = steps[index][1]
            best = max(best, current)
            index += 1
        result.append((minute, best))
        minute += MINUTE
    return result


def floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def watch_time(viewers: Iterable[Peer], as_of: datetime) -> timedelta:
    total = timedelta()
    for joined_at, left_at in connected_spans(viewers):
        total += (left_at or as_of) - joined_at
    return total


def ground_truth(session: Session) -> dict[str, Any]:
    peers = list(session.peers.values())
    viewers = [p for p in peers if is_viewer(p)]
    start, as_of = session.created_at, session.updated_at
    steps = viewer_steps(viewers)
    minutes = per_minute_peak(steps, start, as_of)
    ended = not session.active
    return {
        "session_id": session.id,
        "room_id": session.room_id,
        "active": session.active,
        "started_at": ts_nanos(start),
        "ended_at": ts_nanos(as_of) if ended else None,
        "as_of": ts_nanos(as_of),
        "duration_seconds": (as_of - start) // SECOND if ended else None,
        "peers": [_peer_json(p) for p in peers],
        "viewer_role_peers": len(viewers),
        "peak_viewers": peak(steps),
        "unique_viewers": len({p.user_id for p in viewers}),
        "total_watch_seconds": watch_time(viewers, as_of).total_seconds(),
        "per_minute_peak": [{"minute": ts_seconds(m), "viewers": n} for m, n in minutes],
    }


def _peer_json(peer: Peer) -> dict[str, Any]:
    return {
        "peer_id": peer.id,
        "user_id": peer.user_id,
        "role": peer.role,
        "joined_at": ts_nanos(peer.joined_at),
        "left_at": ts_nanos(peer.left_at) if peer.left_at is not None else None,
    }
