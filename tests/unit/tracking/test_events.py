from __future__ import annotations

import json
from datetime import UTC

import pytest

from livestage.kit.time import parse_rfc3339
from livestage.tracking.events import (
    MAX_NESTING,
    EnvelopeError,
    decode_envelope,
    parse_envelope,
)

EVENT = {"id": "e1", "type": "peer.join.success", "data": {"room_id": "r1"}}


def _nested(depth: int) -> dict[str, object]:
    data: object = 1
    for _ in range(depth):
        data = [data]
    return {**EVENT, "data": {"x": data}}


class TestDecodeEnvelope:
    def test_an_event_is_decoded(self) -> None:
        payload, envelope = decode_envelope(json.dumps(EVENT).encode())
        assert payload == EVENT
        assert envelope.room_id == "r1"

    @pytest.mark.parametrize(
        "body",
        [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
        ids=["arrays", "objects"],
    )
    def test_nesting_deeper_than_the_parser_goes_is_an_envelope_error(self, body: bytes) -> None:
        with pytest.raises(EnvelopeError, match="nested"):
            decode_envelope(body)

    def test_nesting_is_bounded_well_below_the_parser(self) -> None:
        # The envelope and `data` take two levels; MAX_NESTING - 2 lists fit beside them.
        decode_envelope(json.dumps(_nested(MAX_NESTING - 2)).encode())
        with pytest.raises(EnvelopeError, match="nested"):
            decode_envelope(json.dumps(_nested(MAX_NESTING - 1)).encode())

    @pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
    def test_a_number_json_columns_cannot_hold_is_an_envelope_error(self, number: str) -> None:
        body = json.dumps(EVENT)[:-2] + f', "v": {number}}}}}'
        with pytest.raises(EnvelopeError, match="finite"):
            decode_envelope(body.encode())

    def test_finite_numbers_are_kept(self) -> None:
        payload, _ = decode_envelope(json.dumps({**EVENT, "data": {"v": 1.5e300}}).encode())
        assert payload["data"]["v"] == 1.5e300

    @pytest.mark.parametrize("body", [b"not json", b"\xff\xfe{", b"[]", b'{"id": "x"}'])
    def test_anything_else_is_an_envelope_error(self, body: bytes) -> None:
        with pytest.raises(EnvelopeError):
            decode_envelope(body)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T01:17:18Z",
        "2026-12-02T01:17:18.1Z",
        "2026-12-02T01:17:18.123Z",
        "2026-12-02T01:17:18.123456789Z",
        "2026-12-02T01:17:18.9999999Z",
        "2026-12-02T01:17:18.5+05:30",
        "2026-12-02T01:17:18",
        " 2026-12-02T01:17:18.25z ",
        "2026-12-02T01:17:18.000000001-02:00",
    ],
)
def test_event_times_read_as_parse_rfc3339_reads_them(text: str) -> None:
    envelope = parse_envelope({**EVENT, "timestamp": text, "data": {"joined_at": text}})
    assert envelope.timestamp == parse_rfc3339(text)
    assert envelope.time("joined_at") == parse_rfc3339(text)
    assert envelope.timestamp is not None and envelope.timestamp.tzinfo is UTC
