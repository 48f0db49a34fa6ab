"""A local stand-in for the 100ms REST API (`livestage emulator`), for tests and offline work.

It is an independent implementation: it never imports `livestage.providers.hms`, so a client bug
shows up as a failing contract test instead of being mirrored.
"""

from livestage.providers.emulator.app import create_emulator_app
from livestage.providers.emulator.config import EmulatorConfig, WebhookChaos

__all__ = ["EmulatorConfig", "WebhookChaos", "create_emulator_app"]
