"""livestage: the live-streaming backbone of a creator platform."""

__version__ = "0.1.0"
