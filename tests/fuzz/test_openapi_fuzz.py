"""schemathesis over every operation of /openapi.json, three times: as an influencer, as an admin
and anonymously (issue 12). Each run has a server of its own (the real app behind uvicorn, the
local provider), so what one role changes (an admin disabling the creator) cannot mask another's
run. The signed-in runs leave out sign-out, which would end their own session; the anonymous run
fuzzes it.

Generation is derandomized with a fixed seed and no example database, so CI sends the same cases
each run. Every case must pass: no 5xx, a documented status, content type, body and headers, and
a 405 with `Allow` for a method a path does not answer."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case
from schemathesis.schemas import BaseSchema

from livestage.app import AppState, create_app
from livestage.kit.time import utc_now
from tests.support.fixtures import create_admin, create_influencer, make_settings
from tests.support.live_server import LiveServer, bind_loopback, fresh_sqlite_url

SEED = 20261201
MAX_EXAMPLES = 70
# At least 5,000 cases over the three runs (3 x 1,667).
MIN_CASES_PER_RUN = 1_667
SIGN_OUT = "/api/auth/logout"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
]
CONFIG = {
    "seed": SEED,
    # An event stream is read up to its first event (the state), then closed.
    "max-stream-events": 1,
    "request-timeout": 10,
    "generation": {"deterministic": True, "database": "none", "max-examples": MAX_EXAMPLES},
    "phases": {"stateful": {"enabled": False}},
}


def _document() -> dict[str, Any]:
    """The document the app serves at /openapi.json, read without starting the app."""
    with tempfile.TemporaryDirectory() as directory:
        settings = make_settings(f"sqlite+aiosqlite:///{Path(directory) / 'unused.db'}")
        return create_app(settings).openapi()


EVERYONE = schemathesis.openapi.from_dict(_document(), config=SchemathesisConfig.from_dict(CONFIG))
SIGNED_IN = EVERYONE.exclude(method="POST", path=SIGN_OUT)


@dataclass
class Visitor:
    """Who sends the cases: a signed-in session (cookie + CSRF header), or an anonymous one
    holding the pre-login CSRF cookie and 100ms's webhook secret, and what it has sent."""

    base_url: str
    session: requests.Session
    known: dict[str, str]
    operations: int
    cases: int = 0
    seen: set[str] = field(default_factory=set)

    def send(self, case: Case) -> None:
        """Every other case with a path parameter names the real creator or stream, so it
        gets past the 404 into the handler."""
        self.cases += 1
        self.seen.add(case.operation.label)
        if self.cases % 2 and case.path_parameters:
            for name in case.path_parameters.keys() & self.known.keys():
                case.path_parameters[name] = self.known[name]
        case.call_and_validate(base_url=self.base_url, session=self.session, checks=CHECKS)

    def check_count(self) -> None:
        """Asserted only when the whole document was fuzzed (not under `-k`)."""
        if len(self.seen) == self.operations:
            assert self.cases >= MIN_CASES_PER_RUN, f"only {self.cases} cases"


def _csrf(session: requests.Session, base_url: str) -> str:
    response = session.get(f"{base_url}/api/auth/csrf", timeout=10)
    response.raise_for_status()
    token: str = response.json()["csrf_token"]
    return token


def _sign_in(session: requests.Session, base_url: str, credentials: dict[str, Any]) -> None:
    token = _csrf(session, base_url)
    response = session.post(
        f"{base_url}/api/auth/login", json=credentials, headers={"x-csrf-token": token}, timeout=10
    )
    assert response.status_code == 200, response.text
    session.headers["x-csrf-token"] = response.json()["csrf_token"]


def _ended_stream(creator: requests.Session, base_url: str) -> str:
    started = creator.post(f"{base_url}/api/streams", json={"title": "Fuzz"}, timeout=10)
    assert started.status_code == 201, started.text
    ended = creator.post(f"{base_url}/api/streams/current/end", timeout=10)
    assert ended.status_code == 200, ended.text
    stream_id: str = started.json()["stream"]["id"]
    return stream_id


def _visit(
    tmp_path_factory: pytest.TempPathFactory, role: str, schema: BaseSchema
) -> Iterator[Visitor]:
    """A server with an admin, a creator and one ended stream, and a session as `role`."""
    sock = bind_loopback()
    # Without it each response waits out the client's delayed ACK (40 ms) between its header
    # and body writes: the run took 5 minutes instead of one.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(
        fresh_sqlite_url(tmp_path_factory.mktemp(f"fuzz-{role}")),
        provider="local",
        public_url=base_url,
        cookie_secure=False,
    )
    server = LiveServer(settings, sock=sock).start()
    try:
        ctx: AppState = server.ctx
        admin = server.run(create_admin(ctx))
        creator_account = server.run(create_influencer(ctx, handle="fuzzed_creator"))
        creator = requests.Session()
        _sign_in(
            creator,
            base_url,
            {
                "email": creator_account.email,
                "password": creator_account.password,
                "role": "influencer",
            },
        )
        known = {
            "handle": creator_account.handle,
            "influencer_id": str(creator_account.id),
            "stream_id": _ended_stream(creator, base_url),
        }
        session = requests.Session()
        if role == "influencer":
            session = creator
        elif role == "admin":
            admin_credentials = {
                "email": admin.email,
                "password": admin.password,
                "totp_code": admin.code(utc_now()),
                "role": "admin",
            }
            _sign_in(session, base_url, admin_credentials)
        else:
            session.headers["x-csrf-token"] = _csrf(session, base_url)
            policy = ctx.ingestion.policy
            session.headers[policy.secret_header] = policy.secret or ""
        operations = sum(1 for _ in schema.get_all_operations())
        visitor = Visitor(base_url, session, known, operations)
        yield visitor
        visitor.check_count()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def influencer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visitor]:
    yield from _visit(tmp_path_factory, "influencer", SIGNED_IN)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visitor]:
    yield from _visit(tmp_path_factory, "admin", SIGNED_IN)


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visitor]:
    yield from _visit(tmp_path_factory, "anonymous", EVERYONE)


@SIGNED_IN.parametrize()
def test_as_influencer(case: Case, influencer: Visitor) -> None:
    influencer.send(case)


@SIGNED_IN.parametrize()
def test_as_admin(case: Case, admin: Visitor) -> None:
    admin.send(case)


@EVERYONE.parametrize()
def test_anonymously(case: Case, anonymous: Visitor) -> None:
    anonymous.send(case)
