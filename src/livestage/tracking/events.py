"""100ms webhook envelopes → our lifecycle facts (pure). Unknown types are stored, not applied."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from livestage.kit.time import as_utc, parse_rfc3339


class EnvelopeError(ValueError):
    pass


# 100ms's envelopes nest a few levels deep. Bounded far below Python's parser, so no stored
# payload can make whatever reads it later (the JSON column, PostgreSQL) recurse deeply.
MAX_NESTING = 32


class Kind(enum.StrEnum):
    session_open = "session.open.success"
    session_close = "session.close.success"
    peer_join = "peer.join.success"
    peer_leave = "peer.leave.success"
    peer_join_failure = "peer.join.failure"
    peer_leave_failure = "peer.leave.failure"
    room_end = "room.end.success"
    role_change = "role.change.success"
    hls_started = "hls.started.success"
    hls_stopped = "hls.stopped.success"
    hls_failure = "hls.failure"
    hls_recording = "hls.recording.success"
    beam_recording = "beam.recording.success"
    recording = "recording.success"


RECORDING_KINDS = {Kind.hls_recording, Kind.beam_recording, Kind.recording}


_KINDS = {kind.value: kind for kind in Kind}


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    type: str
    timestamp: datetime | None
    data: dict[str, Any]
    # Read once by parse_envelope: applying an event asks for each several times.
    kind: Kind | None
    room_id: str | None
    session_id: str | None
    # Each time text read once: an event's timestamp is usually one of its data's times, and
    # applying it asks for each of them more than once.
    times: dict[str, datetime | None] = field(default_factory=dict, compare=False, repr=False)

    def time(self, name: str) -> datetime | None:
        """A timestamp from `data`; Go's zero time (unset) counts as missing."""
        value = self.data.get(name)
        if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
            return None
        if value not in self.times:
            try:
                self.times[value] = _parse_time(value)
            except ValueError:
                self.times[value] = None
        return self.times[value]

    def text(self, field: str) -> str | None:
        return _text(self.data, field)


def decode_envelope(body: bytes) -> tuple[dict[str, Any], Envelope]:
    """A webhook body as its JSON payload and its envelope; EnvelopeError for anything else."""
    try:
        # As json.loads reads bytes, with one decoder made once (json.loads makes one per call
        # when given parse_float).
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        payload = _DECODER.decode(text)
    except RecursionError as error:
        raise EnvelopeError(f"the JSON is nested more than {MAX_NESTING} levels deep") from error
    except ValueError as error:
        raise EnvelopeError(f"the body is not JSON ({error})") from error
    # Each level opens with a bracket: a body with few cannot be nested deeper than its count.
    if text.count("{") + text.count("[") > MAX_NESTING and _deeper_than(payload, MAX_NESTING):
        raise EnvelopeError(f"the JSON is nested more than {MAX_NESTING} levels deep")
    return payload, parse_envelope(payload)


def _finite(text: str) -> float:
    # Python reads NaN and Infinity (and 1e999 as infinity); PostgreSQL's JSON cannot hold them.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_finite)


def _deeper_than(value: Any, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in item)
    return False


def parse_envelope(payload: Any) -> Envelope:
    if not isinstance(payload, dict):
        raise EnvelopeError("the body must be a JSON object")
    event_id, event_type, data = payload.get("id"), payload.get("type"), payload.get("data")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise EnvelopeError("the event has no valid id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 64:
        raise EnvelopeError("the event has no valid type")
    if not isinstance(data, dict):
        raise EnvelopeError("the event has no data object")
    timestamp = payload.get("timestamp")
    try:
        when = _parse_time(timestamp) if isinstance(timestamp, str) else None
    except ValueError:
        when = None
    room_id, session_id = _text(data, "room_id"), _text(data, "session_id")
    times: dict[str, datetime | None] = {timestamp: when} if isinstance(timestamp, str) else {}
    kind = _KINDS.get(event_type)
    return Envelope(event_id, event_type, when, data, kind, room_id, session_id, times)


def _parse_time(value: str) -> datetime:
    """parse_rfc3339, through Python's own parser first: it reads what 100ms sends (`Z`, any
    number of fractional digits, truncated to 6) at a fraction of the cost."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return parse_rfc3339(value)
    return parsed if parsed.tzinfo is UTC else as_utc(parsed)


def _text(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    return value if isinstance(value, str) and value else None
