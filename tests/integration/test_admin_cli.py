"""`livestage admin totp`: the operator gets an admin's current secret-key code at the console."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyotp
from typer.testing import CliRunner

from livestage.cli import app as cli_app
from tests.support.app_process import migrated_sqlite


def test_prints_the_code_an_authenticator_would_show(tmp_path: Path) -> None:
    env = {
        "LIVESTAGE_DATABASE_URL": migrated_sqlite(tmp_path / "livestage.db"),
        "LIVESTAGE_SECRET_KEY": secrets.token_urlsafe(32),
    }
    created = CliRunner().invoke(
        cli_app, ["admin", "create", "--email", "ops@example.com", "--name", "Ops"], env=env
    )
    assert created.exit_code == 0, created.output
    uri = next(line.strip() for line in created.output.splitlines() if "otpauth://" in line)
    authenticator = pyotp.parse_uri(uri)

    shown = CliRunner().invoke(cli_app, ["admin", "totp", "--email", "OPS@example.com"], env=env)
    assert shown.exit_code == 0, shown.output
    code = shown.output.strip()
    assert code.isdigit() and len(code) == 6
    assert authenticator.verify(code, for_time=datetime.now(UTC), valid_window=1)

    missing = CliRunner().invoke(cli_app, ["admin", "totp", "--email", "no@example.com"], env=env)
    assert missing.exit_code == 1
    assert "No admin with this email" in missing.output


def test_the_command_line_starts_without_the_heavy_parts() -> None:
    """`livestage --help` answers without loading the database, Alembic, password hashing or
    the web app: each command imports what it uses when it runs."""
    probe = (
        "import sys, livestage.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'alembic', 'argon2', 'sqlalchemy', 'fastapi', 'uvicorn', 'redis'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
