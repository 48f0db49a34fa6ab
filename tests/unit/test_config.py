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


@pytest.mark.parametrize("name", ["trusted_proxies", "metrics_allowed_networks"])
@pytest.mark.parametrize("given", ["10.0.0.0/33", "localhost", "10.0.0.1, nope"])
def test_a_malformed_network_is_refused_by_name(name: str, given: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=f"LIVESTAGE_{name.upper()}: "):
        Settings(_env_file=None, **{name: given})


def test_networks_are_ips_or_cidrs_and_any_proxy_is_a_star() -> None:
    Settings(
        _env_file=None,
        trusted_proxies=" 10.0.0.1, 192.168.0.0/16 ,::1,*",
        metrics_allowed_networks="fd00::/8,127.0.0.1",
    )
    with pytest.raises(pydantic.ValidationError, match="LIVESTAGE_METRICS_ALLOWED_NETWORKS"):
        Settings(_env_file=None, metrics_allowed_networks="*")
