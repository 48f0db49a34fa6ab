"""Keyset (cursor) pagination: a page starts after the last row of the previous one, so its cost
does not grow with how many rows come before it (OFFSET reads and drops them all).

A cursor is the opaque base64url of `[sort value, id]` of the last row shown; the next page is
the rows strictly after that pair in the list's order. Rows inserted meanwhile never shift what
is left to read, so none is skipped or shown twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from livestage.errors import BadRequest

MAX_CURSOR_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Cursor:
    at: datetime | None
    id: uuid.UUID


def encode_cursor(at: datetime | None, row_id: uuid.UUID) -> str:
    raw = json.dumps([None if at is None else at.isoformat(), str(row_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> Cursor | None:
    """None for no cursor (the first page); a 400 for anything this module did not write."""
    if not value:
        return None
    try:
        if len(value) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        at, row_id = json.loads(raw)
        moment = None if at is None else datetime.fromisoformat(at)
        if moment is not None and moment.tzinfo is None:
            raise ValueError("naive instant")
        return Cursor(moment, uuid.UUID(row_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest(
            "Invalid cursor: use the `next_cursor` of a previous page, unchanged."
        ) from exc


def after(
    cursor: Cursor | None,
    at: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    *,
    descending: bool,
    nullable: bool = False,
) -> ColumnElement[bool] | None:
    """The condition "strictly after `cursor`" in the order (at, id), both in one direction.
    The leading `at <= c` (or `>=`) is a plain range both databases read from an index on
    (at, id); the rest only sorts out ties. Rows whose `at` is NULL come last (see `order`)."""
    if cursor is None:
        return None
    id_beyond = row_id < cursor.id if descending else row_id > cursor.id
    if cursor.at is None:
        return and_(at.is_(None), id_beyond)
    if descending:
        within, beyond = at <= cursor.at, at < cursor.at
    else:
        within, beyond = at >= cursor.at, at > cursor.at
    keyed = and_(within, or_(beyond, id_beyond))
    return or_(keyed, at.is_(None)) if nullable else keyed


def order(
    at: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    *,
    descending: bool,
    nullable: bool = False,
) -> tuple[ColumnElement[Any], ...]:
    if descending:
        return (at.desc(), row_id.desc())
    return (at.asc().nulls_last() if nullable else at.asc(), row_id.asc())
