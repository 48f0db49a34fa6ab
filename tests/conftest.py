"""Test-wide set-up. Importing this module installs the loopback-only network guard."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.support import network_guard

os.environ.setdefault("LIVESTAGE_ENV", "test")
network_guard.install_network_guard()

pytest_plugins = ["tests.support.fixtures", "tests.support.emulator", "tests.support.migrations"]


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback() -> Iterator[None]:
    """Fail the test if anything it ran tried to leave loopback, even if the error was caught."""
    network_guard.violations.clear()
    yield
    if network_guard.violations:
        found = list(network_guard.violations)
        network_guard.violations.clear()
        pytest.fail("non-loopback network access: " + "; ".join(found))


@pytest.fixture(autouse=True)
def _tasks_shown_before_a_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print every asyncio task's stack shortly before pytest-timeout stops a hanging test.

    pytest-timeout shows thread stacks, and a hung async test's thread only shows the event
    loop waiting; the tasks say what it waits for.
    """
    limit = float(request.config.getini("timeout") or 0)
    if limit <= 10:
        yield
        return
    timer = threading.Timer(limit - 5, _print_tasks)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


def _print_tasks() -> None:
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for loop in loops:
        if loop.is_closed():
            continue
        for task in list(asyncio.all_tasks(loop)):
            sys.stderr.write(f"--- {task!r}\n")
            task.print_stack(file=sys.stderr)
