"""Browser-test fixtures, imported rather than listed in `pytest_plugins`: pytest accepts that
only in the root conftest, and these fixtures belong to this folder."""

from tests.support.browser import browser, page
from tests.support.live_server import (
    live_server,
    live_server_factory,
    live_server_provider,
    live_server_settings,
)

__all__ = [
    "browser",
    "live_server",
    "live_server_factory",
    "live_server_provider",
    "live_server_settings",
    "page",
]
