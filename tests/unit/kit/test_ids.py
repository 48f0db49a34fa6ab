import time
import uuid

from livestage.kit.db import new_id


def test_row_keys_are_stdlib_uuids_of_version_7() -> None:
    key = new_id()
    assert type(key) is uuid.UUID
    assert key.version == 7


def test_a_later_key_sorts_after_an_earlier_one_in_both_stored_forms() -> None:
    # Stored as 32 hex digits on SQLite and as 16 bytes on PostgreSQL: both order by time.
    earlier = new_id()
    time.sleep(0.002)
    later = new_id()
    assert earlier.hex < later.hex
    assert earlier.bytes < later.bytes


def test_keys_made_together_are_distinct() -> None:
    assert len({new_id() for _ in range(10_000)}) == 10_000
