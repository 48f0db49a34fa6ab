"""Which peer changes reach back before a stream's checkpoint (its next recompute then reads
every peer): batch.changes_carried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from livestage.tracking.batch import changes_carried

CHECKPOINT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
BEFORE = CHECKPOINT - timedelta(seconds=30)
AFTER = CHECKPOINT + timedelta(seconds=30)


def test_a_leave_at_or_after_the_checkpoint_of_a_peer_connected_across_it_changes_nothing() -> None:
    crossing = ("u", False, BEFORE, None)
    assert not changes_carried(crossing, ("u", False, BEFORE, AFTER), CHECKPOINT)
    assert not changes_carried(crossing, ("u", False, BEFORE, CHECKPOINT), CHECKPOINT)


def test_a_leave_before_the_checkpoint_changes_it() -> None:
    crossing = ("u", False, BEFORE - timedelta(minutes=1), None)
    assert changes_carried(crossing, ("u", False, crossing[2], BEFORE), CHECKPOINT)


def test_a_new_peer_changes_it_only_if_it_joined_or_left_before_it() -> None:
    assert not changes_carried(None, ("u", False, AFTER, None), CHECKPOINT)
    assert not changes_carried(None, ("u", False, CHECKPOINT, AFTER), CHECKPOINT)
    assert changes_carried(None, ("u", False, BEFORE, None), CHECKPOINT)
    # A leave reported before its join, both known only from the leave.
    assert changes_carried(None, ("u", False, AFTER, BEFORE), CHECKPOINT)


def test_a_role_change_counts_before_the_checkpoint_and_for_a_broadcaster_after_it() -> None:
    assert changes_carried(("u", False, BEFORE, None), ("u", True, BEFORE, None), CHECKPOINT)
    assert not changes_carried(("u", False, AFTER, None), ("u", True, AFTER, None), CHECKPOINT)
    # The broadcaster's last leave is read from the window's broadcasters: one fewer there
    # may leave it wrong.
    assert changes_carried(("h", True, AFTER, AFTER), ("h", False, AFTER, AFTER), CHECKPOINT)
