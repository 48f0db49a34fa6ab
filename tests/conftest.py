"""Test-wide set-up. Importing this module installs the loopback-only network guard."""

from __future__ import annotations

import os

os.environ.setdefault("LIVESTAGE_ENV", "test")

from tests.support.network_guard import install_network_guard

install_network_guard()

pytest_plugins = ["tests.support.fixtures", "tests.support.emulator"]
