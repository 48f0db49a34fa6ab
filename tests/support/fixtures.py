"""Shared fixtures (database servers, app, clients) live here."""
