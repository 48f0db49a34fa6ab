"""A local stand-in for the 100ms REST API (`livestage emulator`), for tests and offline work.

A top-level package of its own (`src/hms_emulator/`), not part of `livestage`: it never imports
`livestage` (in particular not `livestage.providers.hms`), so a client bug shows up as a failing
contract test instead of being mirrored.
"""

from hms_emulator.app import create_emulator_app
from hms_emulator.config import EmulatorConfig, WebhookChaos

__all__ = ["EmulatorConfig", "WebhookChaos", "create_emulator_app"]
