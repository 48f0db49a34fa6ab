"""Model base shared by every table: naming convention (stable Alembic diffs), UTC datetimes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid_utils.compat import uuid7

from livestage.kit.time import as_utc, utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


def new_id() -> uuid.UUID:
    """A row's key: a UUIDv7, its first 48 bits the time (milliseconds), then a counter that
    keeps keys made in one millisecond in order (uuid-utils, as RFC 9562 allows) and random
    bits. Unique and ordered, not secret: a session is found by its token's hash, and access
    is checked, never inferred from knowing a key.

    New rows' keys sort after older ones, so each insert lands at the right edge of the key's
    index. With random (v4) keys it touched a leaf page anywhere in it: on a SQLite database
    grown to 300,000 events every commit of the inbox rewrote ~1,000 scattered pages, storing
    6,050-6,800 ev/s against 9,560-10,710 with these (bench/results/NOTES.md, s10)."""
    return uuid7()


class IDMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


def on_commit(session: Any, callback: Callable[[], object]) -> None:
    """Run `callback` once the session's transaction has committed (dropped on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


def run_after_commit(session: Any) -> None:
    for callback in session.info.pop("after_commit", []):
        callback()


def discard_after_commit(session: Any) -> None:
    session.info.pop("after_commit", None)


async def driver_of(session: AsyncSession) -> Any:
    """The session's connection as the driver's own (asyncpg's or aiosqlite's; neither package
    has types): for the few hot statements whose rows through SQLAlchemy cost more than the
    query."""
    return (await (await session.connection()).get_raw_connection()).driver_connection
