"""Contract tests run against the emulator as a real server on loopback.

pytest refuses `pytest_plugins` in a conftest below the root one, so the fixtures are imported
here; once `tests.support.emulator` is listed in the root `pytest_plugins`, these imports only
re-export the same functions.
"""

from tests.support.emulator import (  # noqa: F401
    emulator,
    emulator_server,
    start_emulator,
    webhook_receiver,
)
