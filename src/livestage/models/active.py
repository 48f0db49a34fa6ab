"""The "open stream" condition as SQL both databases match against their partial index.

`uq_live_streams_one_active_per_influencer` covers only `status IN ('starting', 'live')`. SQLite
uses a partial index only when the query's WHERE has that term with the values written out: with
the statuses as bound parameters (SQLAlchemy's default for IN) it scanned every stream of the
table instead. So the list is rendered as literals (two fixed words: nothing to inject).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, bindparam

from livestage.models.live_stream import ACTIVE_STATUSES, LiveStream


def is_active() -> ColumnElement[bool]:
    return LiveStream.status.in_(
        bindparam(
            "active_statuses",
            [str(s) for s in ACTIVE_STATUSES],
            expanding=True,
            literal_execute=True,
        )
    )
