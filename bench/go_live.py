"""Start Streaming latency: the whole server path (session, go-live, 100ms REST calls to the
emulator in-process, token minting, SQLite commit), sequential and under 20 concurrent clicks."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from livestage import migrate
from livestage.app import create_app
from livestage.audit.service import Actor
from livestage.config import Settings
from livestage.db import transaction
from livestage.influencers.service import influencer as influencer_service
from livestage.providers.emulator.app import create_emulator_app
from livestage.providers.emulator.config import EmulatorConfig
from livestage.providers.hms.provider import HmsProvider

INFLUENCERS = int(sys.argv[1]) if len(sys.argv) > 1 else 50


async def _login(client: httpx.AsyncClient, email: str, password: str) -> None:
    token = (await client.get("/api/auth/csrf")).json()["csrf_token"]
    response = await client.post(
        "/api/auth/login",
        json={"email": email, "password": password, "role": "influencer"},
        headers={"x-csrf-token": token},
    )
    response.raise_for_status()
    client.headers["x-csrf-token"] = response.json()["csrf_token"]


def _report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(
        f"{name:34s} n={len(samples):3d} median {statistics.median(samples) * 1000:7.1f} ms"
        f"  p95 {p95 * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms"
    )


async def run(url: str) -> None:
    key, secret = secrets.token_hex(12), secrets.token_hex(32)
    emulator = create_emulator_app(EmulatorConfig(access_key=key, app_secret=secret))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key=secrets.token_urlsafe(32),
        hms_access_key=key,
        hms_app_secret=secret,
        hms_api_url="http://emulator/v2",
        hms_auth_url="http://emulator/auth/v2",
        log_level="WARNING",
    )
    provider = HmsProvider.from_settings(settings, transport=httpx.ASGITransport(emulator))
    app = create_app(settings, provider=provider)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        accounts = []
        async with transaction(ctx.sessionmaker) as session:
            for i in range(INFLUENCERS + 1):
                password = secrets.token_urlsafe(12)
                await influencer_service.create(
                    session,
                    Actor(None, None),
                    email=f"c{i}@bench.test",
                    name=f"C{i}",
                    handle=f"creator{i}",
                    password=password,
                    now=ctx.clock(),
                )
                accounts.append((f"c{i}@bench.test", password))
        transport = httpx.ASGITransport(app=app)
        first, rest = [], []
        for email, password in accounts[:INFLUENCERS]:
            async with httpx.AsyncClient(transport=transport, base_url="https://bench") as c:
                await _login(c, email, password)
                body = {"title": "bench", "description": ""}
                start = time.perf_counter()
                (await c.post("/api/streams", json=body)).raise_for_status()
                first.append(time.perf_counter() - start)
                start = time.perf_counter()
                (await c.post("/api/streams", json=body)).raise_for_status()
                rest.append(time.perf_counter() - start)
        _report("go live (new room)", first)
        _report("go live again (idempotent)", rest)

        email, password = accounts[-1]
        async with httpx.AsyncClient(transport=transport, base_url="https://bench") as c:
            await _login(c, email, password)

            async def click() -> float:
                start = time.perf_counter()
                (await c.post("/api/streams", json={"title": "x"})).raise_for_status()
                return time.perf_counter() - start

            start = time.perf_counter()
            burst = await asyncio.gather(*(click() for _ in range(20)))
            total = time.perf_counter() - start
        _report("20 concurrent clicks (each)", list(burst))
        print(f"20 concurrent clicks (all done)    {total * 1000:7.1f} ms")
    await provider.aclose()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(url)
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
