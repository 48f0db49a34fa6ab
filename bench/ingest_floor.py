"""The floor for webhook ingestion: the same events written straight into `provider_events` with
a plain `INSERT … ON CONFLICT DO NOTHING`, run for a batch's rows in one transaction, batches
of the largest size livestage's inbox can form under the bench's load (one per connection).

No HTTP, no parsing, no acknowledgement: what storing the events costs on this database, through
livestage's own engine settings (driver, SQLite pragmas, pool). Rows are written already marked
processed, so the server's worker leaves them alone (and the partial index of pending events is
not touched: the floor does slightly less than the inbox, never more).

Run on the server core beside the server, by the webhook scenario:

    python -m bench.ingest_floor DATABASE_URL BATCH SECONDS RUN   → one JSON line
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite

from livestage.config import Settings
from livestage.db import create_engine
from livestage.models import ProviderEvent


def _rows(run: str, start: int, count: int, now: datetime) -> list[dict[str, Any]]:
    at = now.isoformat().replace("+00:00", "Z")
    rows = []
    for i in range(start, start + count):
        kind = "peer.join.success" if i % 2 == 0 else "peer.leave.success"
        data = {
            "room_id": "floor-room",
            "session_id": "session-floor-room",
            "peer_id": f"{run}-peer-{i // 2}",
            "user_id": f"u{i // 2}",
            "role": "viewer",
            "joined_at": at,
        }
        event_id = str(uuid.uuid4())
        payload = {"version": "2.0", "id": event_id, "type": kind, "timestamp": at, "data": data}
        rows.append(
            {
                "id": uuid.uuid4(),
                "source": "floor",
                "external_id": event_id,
                "type": kind,
                "payload": payload,
                "occurred_at": now,
                "received_at": now,
                "processed_at": now,
                "room_id": data["room_id"],
                "attempts": 0,
            }
        )
    return rows


_COLUMNS = {
    "id": "uuid",
    "source": "varchar",
    "external_id": "varchar",
    "type": "varchar",
    "payload": "json",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "processed_at": "timestamptz",
    "room_id": "varchar",
    "attempts": "integer",
}
_UNNESTED = text(
    f"INSERT INTO provider_events ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _COLUMNS.items())
    + ") ON CONFLICT DO NOTHING"
)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    columns = {name: [row[name] for row in rows] for name in _COLUMNS}
    columns["payload"] = [json.dumps(payload) for payload in columns["payload"]]
    return columns


async def write(url: str, batch: int, seconds: float, run: str) -> dict[str, float]:
    engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    table: Table = ProviderEvent.__table__  # type: ignore[assignment]
    postgres = engine.dialect.name == "postgresql"
    dialect = postgresql if postgres else sqlite
    # SQLite: one statement run for the batch's rows (the driver's executemany), twice as fast
    # here as a multi-row VALUES statement. PostgreSQL: one array per column, unnested by the
    # server, as livestage's inbox now sends a batch: 1.2x the executemany's rate here.
    statement = dialect.insert(table).on_conflict_do_nothing()
    written = 0
    try:
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            rows = _rows(run, written, batch, datetime.now(UTC))
            async with engine.begin() as connection:
                if postgres:
                    await connection.execute(_UNNESTED, _columns(rows))
                else:
                    await connection.execute(statement, rows)
            written += batch
        elapsed = time.perf_counter() - began
    finally:
        await engine.dispose()
    return {"events": written, "seconds": elapsed, "eps": written / elapsed}


def main() -> None:
    url, batch, seconds, run = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    print(json.dumps(asyncio.run(write(url, batch, seconds, run))))


if __name__ == "__main__":
    main()
