"""Join intents packed a row per stream come back exactly as given, in the order given."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from livestage.streams.intents import JoinIntent, pack, unpack

STREAMS = [uuid.UUID(int=n) for n in range(1, 4)]
AT = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=UTC)

intents = st.lists(
    st.builds(
        JoinIntent,
        st.sampled_from(STREAMS),
        st.text(max_size=70),
        # A clock stepped back between two joins gives a join before the batch's first.
        st.integers(-(10**9), 10**11).map(lambda us: AT + timedelta(microseconds=us)),
    ),
    max_size=40,
)


@given(intents, st.integers(1, 7))
def test_every_intent_comes_back_as_given_each_streams_in_order(
    given_intents: list[JoinIntent], size: int
) -> None:
    batches = list(pack(given_intents, size=size))
    streams = list(dict.fromkeys(i.stream_id for i in given_intents))
    assert [i for b in batches for i in unpack(b)] == sorted(
        given_intents, key=lambda i: streams.index(i.stream_id)
    )
    for batch in batches:
        assert 1 <= batch.joins == len(json.loads(batch.viewers)) <= size
        assert batch.first_requested_at == min(i.requested_at for i in unpack(batch))


def test_a_streams_joins_fill_rows_of_the_batch_size_then_one_more() -> None:
    crowd = [JoinIntent(STREAMS[0], f"viewer-{n}", AT) for n in range(2_500)]
    assert [b.joins for b in pack(crowd)] == [1_000, 1_000, 500]
    assert json.loads(next(pack(crowd[:2])).viewers) == [["viewer-0", 0], ["viewer-1", 0]]
