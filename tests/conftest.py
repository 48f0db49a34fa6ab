"""Test-wide set-up. Importing this module installs the loopback-only network guard."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import network_guard

os.environ.setdefault("LIVESTAGE_ENV", "test")
network_guard.install_network_guard()

pytest_plugins = ["tests.support.fixtures", "tests.support.emulator"]


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback() -> Iterator[None]:
    """Fail the test if anything it ran tried to leave loopback, even if the error was caught."""
    network_guard.violations.clear()
    yield
    if network_guard.violations:
        found = list(network_guard.violations)
        network_guard.violations.clear()
        pytest.fail("non-loopback network access: " + "; ".join(found))
