"""livestage's performance bench: `.venv/bin/python -m bench` (see bench/README.md)."""
