from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from livestage.kit.time import as_utc


def test_a_naive_value_is_read_as_utc() -> None:
    assert as_utc(datetime(2026, 12, 2, 3, 4, 5)) == datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)


def test_a_utc_value_comes_back_as_it_is() -> None:
    value = datetime(2026, 12, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert as_utc(value) is value


def test_another_zone_is_converted() -> None:
    value = datetime(2026, 12, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    converted = as_utc(value)
    assert converted.tzinfo is UTC
    assert converted == value
    assert converted.hour == 3
