"""Who may read `/metrics`: the allowlist first, then the bearer token, each only when set."""

from __future__ import annotations

import pytest

from livestage.analytics.auth import MetricsAccess
from livestage.config import Settings
from livestage.errors import Forbidden, Unauthorized

TOKEN = "scrape-token-0123456789"


def access(**settings: str) -> MetricsAccess:
    return MetricsAccess.from_settings(Settings(_env_file=None, **settings))  # type: ignore[arg-type]


def test_with_nothing_set_anyone_may_scrape() -> None:
    access().check(authorization=None, client_ip=None)


@pytest.mark.parametrize(
    "authorization", [None, "", f"Basic {TOKEN}", "Bearer", "Bearer wrong", f"Bearer {TOKEN}x"]
)
def test_a_missing_or_wrong_token_is_401(authorization: str | None) -> None:
    with pytest.raises(Unauthorized):
        access(metrics_token=TOKEN).check(authorization=authorization, client_ip="127.0.0.1")


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer  {TOKEN}"])
def test_the_token_lets_in(authorization: str) -> None:
    access(metrics_token=TOKEN).check(authorization=authorization, client_ip="127.0.0.1")


@pytest.mark.parametrize("client_ip", ["10.1.2.3", "fd00::7"])
def test_clients_inside_the_networks_are_served(client_ip: str) -> None:
    access(metrics_allowed_networks="10.0.0.0/8, fd00::/8").check(
        authorization=None, client_ip=client_ip
    )


@pytest.mark.parametrize("client_ip", ["11.0.0.1", "::1", None, "not-an-address"])
def test_clients_outside_are_403_even_with_the_token(client_ip: str | None) -> None:
    guarded = access(metrics_allowed_networks="10.0.0.0/8, fd00::/8", metrics_token=TOKEN)
    with pytest.raises(Forbidden):
        guarded.check(authorization=f"Bearer {TOKEN}", client_ip=client_ip)
