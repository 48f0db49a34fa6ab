from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from livestage.models.live_stream import StreamStatus
from livestage.streams.lifecycle import can_transition, start_overdue

CREATED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=5)


class TestStartOverdue:
    def test_a_starting_stream_waits_for_its_broadcaster_until_the_timeout(self) -> None:
        at_timeout = CREATED + TIMEOUT
        assert not start_overdue(StreamStatus.starting, CREATED, now=at_timeout, timeout=TIMEOUT)
        later = at_timeout + timedelta(seconds=1)
        assert start_overdue(StreamStatus.starting, CREATED, now=later, timeout=TIMEOUT)

    @pytest.mark.parametrize("status", [StreamStatus.live, StreamStatus.ended, StreamStatus.failed])
    def test_only_a_starting_stream_is_ever_overdue(self, status: StreamStatus) -> None:
        assert not start_overdue(status, CREATED, now=CREATED + 10 * TIMEOUT, timeout=TIMEOUT)

    def test_a_starting_stream_may_fail(self) -> None:
        assert can_transition(StreamStatus.starting, StreamStatus.failed)
