"""`livestage serve` started as a deployer starts it: whose address a request comes from
(`X-Forwarded-For` counts only from LIVESTAGE_TRUSTED_PROXIES), and who may read `/metrics`."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.app_process import ServeProcess, app_environment, migrated_sqlite

FORWARDED = "203.0.113.9"
START_TIMEOUT = 30.0


class Served(ServeProcess):
    """`livestage serve` on a SQLite file of its own, with the local provider."""

    def __init__(self, workdir: Path, **settings: object) -> None:
        self.database = workdir / "livestage.db"
        if not self.database.exists():
            migrated_sqlite(self.database)
        env = app_environment(
            env="test",
            database_url=f"sqlite+aiosqlite:///{self.database}",
            secret_key=secrets.token_urlsafe(32),
            cookie_secure="false",
            provider="local",
            **{"log_level": "WARNING", **settings},
        )
        super().__init__(env, workdir=workdir)

    def failed_sign_in_addresses(self) -> list[str | None]:
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            rows = db.execute(
                "SELECT ip FROM audit_log WHERE action = 'login.failed' ORDER BY created_at"
            ).fetchall()
        return [ip for (ip,) in rows]


@contextlib.contextmanager
def served(workdir: Path, **settings: object) -> Iterator[Served]:
    process = Served(workdir, **settings)
    try:
        process.wait_ready("/healthz", timeout=START_TIMEOUT)
        yield process
    finally:
        process.stop()


def fail_sign_in(base_url: str, forwarded_for: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        csrf = client.get("/api/auth/csrf").json()["csrf_token"]
        response = client.post(
            "/api/auth/login",
            json={"email": "nobody@example.com", "password": "wrong", "role": "influencer"},
            headers={"x-csrf-token": csrf, "x-forwarded-for": forwarded_for},
        )
    assert response.status_code == 401, response.text


class TestForwardedFor:
    def test_is_ignored_unless_the_peer_is_a_trusted_proxy(self, tmp_path: Path) -> None:
        with served(tmp_path) as app:
            fail_sign_in(app.base_url, FORWARDED)
            fail_sign_in(app.base_url, "198.51.100.1")
            # Whatever the header says, the throttle and the audit log see the real peer.
            assert app.failed_sign_in_addresses() == ["127.0.0.1", "127.0.0.1"]

    def test_counts_from_a_trusted_proxy(self, tmp_path: Path) -> None:
        with served(tmp_path, trusted_proxies="127.0.0.1") as app:
            fail_sign_in(app.base_url, FORWARDED)
            assert app.failed_sign_in_addresses() == [FORWARDED]


class TestMetricsAccess:
    def test_token_and_allowlist(self, tmp_path: Path) -> None:
        with served(
            tmp_path, metrics_token="scrape-me-please", metrics_allowed_networks="127.0.0.0/8"
        ) as app:
            assert httpx.get(f"{app.base_url}/metrics").status_code == 401
            wrong = {"authorization": "Bearer not-the-token"}
            assert httpx.get(f"{app.base_url}/metrics", headers=wrong).status_code == 401
            right = {"authorization": "Bearer scrape-me-please"}
            scraped = httpx.get(f"{app.base_url}/metrics", headers=right)
            assert scraped.status_code == 200
            assert "livestage_streams_live" in scraped.text

    def test_outside_the_allowlist_is_refused_even_with_the_token(self, tmp_path: Path) -> None:
        right = {"authorization": "Bearer scrape-me-please"}
        with served(
            tmp_path, metrics_token="scrape-me-please", metrics_allowed_networks="10.0.0.0/8"
        ) as app:
            assert httpx.get(f"{app.base_url}/metrics", headers=right).status_code == 403
            # A forged header from an untrusted peer does not get in.
            forged = {**right, "x-forwarded-for": "10.1.2.3"}
            assert httpx.get(f"{app.base_url}/metrics", headers=forged).status_code == 403

    def test_the_allowlist_sees_the_address_a_trusted_proxy_forwarded(self, tmp_path: Path) -> None:
        with served(
            tmp_path, trusted_proxies="127.0.0.1", metrics_allowed_networks="10.0.0.0/8"
        ) as app:
            inside = {"x-forwarded-for": "10.1.2.3"}
            assert httpx.get(f"{app.base_url}/metrics", headers=inside).status_code == 200
            outside = {"x-forwarded-for": FORWARDED}
            assert httpx.get(f"{app.base_url}/metrics", headers=outside).status_code == 403


def test_a_malformed_proxy_stops_the_start_by_name(tmp_path: Path) -> None:
    app = Served(tmp_path, trusted_proxies="10.0.0.0/33")
    try:
        assert app.process.wait(timeout=START_TIMEOUT) != 0
    finally:
        app.stop()
    assert "LIVESTAGE_TRUSTED_PROXIES" in app.log_path.read_text(errors="replace")


class TestAccessLog:
    """At INFO each request gets an access line; above INFO uvicorn's access log is off (not
    merely filtered, so no line's arguments are built per response), and errors still log."""

    def test_written_at_info(self, tmp_path: Path) -> None:
        with served(tmp_path, log_level="INFO") as app:
            assert httpx.get(f"{app.base_url}/api/live").status_code == 200
        assert '"GET /api/live HTTP/1.1" 200' in app.log_path.read_text(errors="replace")

    def test_off_above_info(self, tmp_path: Path) -> None:
        with served(tmp_path, log_level="WARNING") as app:
            assert httpx.get(f"{app.base_url}/api/live").status_code == 200
        assert "GET /api/live" not in app.log_path.read_text(errors="replace")
