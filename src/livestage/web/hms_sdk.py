"""The 100ms browser SDK that livestage serves itself (`make deps` bundles it into
web/static/vendor/): a start without it says so in the log, where a deployer looks first; the
pages say so too (static/js/hms.js), instead of failing on a bare 404."""

from __future__ import annotations

import logging
from pathlib import Path

from livestage.config import Settings

log = logging.getLogger(__name__)

STATIC_PREFIX = "/static/"


def missing_local_sdk(settings: Settings, static_dir: Path) -> Path | None:
    """The file `LIVESTAGE_HMS_SDK_URL` names under /static/ when it is not there; None when it
    is, or when the URL points elsewhere (another host is the deployer's to check)."""
    url = settings.hms_sdk_url.split("?", 1)[0]
    if not url.startswith(STATIC_PREFIX):
        return None
    path = static_dir / url.removeprefix(STATIC_PREFIX)
    return None if path.is_file() else path


def warn_if_sdk_missing(settings: Settings, static_dir: Path) -> bool:
    """Logs an error when the served SDK is missing; True when it is."""
    missing = missing_local_sdk(settings, static_dir)
    if missing is None:
        return False
    log.error(
        "The 100ms browser SDK is not installed: %s is missing, so the broadcast and watch "
        "pages cannot join 100ms rooms. Run `make deps` (it needs Node.js and npm) or set "
        "LIVESTAGE_HMS_SDK_URL.",
        missing,
    )
    return True
