"""Runs the emulator under uvicorn; the CLI's `livestage emulator` calls `run_emulator`."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
import uvicorn

from hms_emulator.app import create_emulator_app
from hms_emulator.config import EmulatorConfig

log = structlog.get_logger()


def run_emulator(
    *,
    host: str,
    port: int,
    access_key: str,
    app_secret: str,
    webhook_url: str | None = None,
    webhook_headers: Mapping[str, str] | None = None,
) -> None:
    """Serve until interrupted. Point livestage at it with LIVESTAGE_HMS_API_URL and
    LIVESTAGE_HMS_AUTH_URL (both logged at start) and the same access key and secret."""
    if not access_key or not app_secret:
        raise ValueError("the emulator needs an access key and an app secret")
    config = EmulatorConfig(
        access_key=access_key,
        app_secret=app_secret,
        webhook_url=webhook_url,
        webhook_headers=dict(webhook_headers or {}),
    )
    base = f"http://{host}:{port}"
    log.info(
        "hms.emulator.start",
        api_url=f"{base}/v2",
        auth_url=f"{base}/auth/v2",
        customer_id=config.customer_id,
        default_template_id=config.default_template_id,
        webhook_url=webhook_url,
    )
    uvicorn.run(create_emulator_app(config), host=host, port=port, log_level="info")
