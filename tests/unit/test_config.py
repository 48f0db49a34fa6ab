"""Settings reject what they cannot use, with the variable's name in the message."""

from __future__ import annotations

import pydantic
import pytest

from livestage.config import Settings


@pytest.mark.parametrize(("given", "level"), [("warning", "WARNING"), (" Info ", "INFO")])
def test_the_log_level_is_read_in_any_case(given: str, level: str) -> None:
    assert Settings(_env_file=None, log_level=given).log_level == level


@pytest.mark.parametrize("given", ["loud", "", "TRACE"])
def test_an_unknown_log_level_is_refused_by_name(given: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="LIVESTAGE_LOG_LEVEL must be one of"):
        Settings(_env_file=None, log_level=given)


def test_a_short_secret_key_is_refused_by_name() -> None:
    with pytest.raises(pydantic.ValidationError, match="LIVESTAGE_SECRET_KEY must be at least"):
        Settings(_env_file=None, secret_key="short")
