"""The tracking worker with nothing to do takes no write transaction: on SQLite one would hold
the only writer that go-live, the webhooks and chat need, and it used to take three a second."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import event

from livestage.app import AppState

pytestmark = pytest.mark.asyncio
POLL_SECONDS = 0.05
WRITES = re.compile(r"\bBEGIN IMMEDIATE\b|\bFOR UPDATE\b|^(INSERT|UPDATE|DELETE)\b")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"worker_poll_seconds": POLL_SECONDS, "provider": "none"}


async def test_an_idle_worker_looks_without_writing(ctx: AppState) -> None:
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    engine = ctx.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        await asyncio.sleep(20 * POLL_SECONDS)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    looks = [s for s in statements if "FROM PROVIDER_EVENTS" in s]
    assert len(looks) >= 5, statements  # it did poll
    assert [s for s in statements if WRITES.search(s)] == []
