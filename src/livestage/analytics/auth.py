"""Who may read `/metrics`: clients from LIVESTAGE_METRICS_ALLOWED_NETWORKS, carrying
LIVESTAGE_METRICS_TOKEN as a bearer token, each check on when its setting is set. With neither
set `/metrics` is open, which suits one machine; a server others can reach sets one."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from livestage.config import Settings, split_list
from livestage.errors import Forbidden, Unauthorized
from livestage.web.deps import client_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    token: str | None
    networks: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsAccess:
        networks = split_list(settings.metrics_allowed_networks)
        return cls(
            token=settings.metrics_token.get_secret_value() or None,
            networks=tuple(ipaddress.ip_network(n, strict=False) for n in networks),
        )

    def check(self, *, authorization: str | None, client_ip: str | None) -> None:
        """Raise unless this client may scrape. The address is checked first, so a client
        from elsewhere learns nothing about the token."""
        if self.networks and not self._allowed(client_ip):
            raise Forbidden("Metrics are not served to this address.")
        if self.token is None:
            return
        scheme, _, presented = (authorization or "").partition(" ")
        matches = hmac.compare_digest(presented.strip().encode(), self.token.encode())
        if scheme.lower() != "bearer" or not matches:
            raise Unauthorized("Metrics need the scrape token: Authorization: Bearer <token>.")

    def _allowed(self, host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)


async def check_metrics_access(connection: HTTPConnection) -> None:
    access = cast(MetricsAccess, connection.app.state.livestage.metrics_access)
    access.check(
        authorization=connection.headers.get("authorization"), client_ip=client_ip(connection)
    )


MetricsReader = Annotated[None, Depends(check_metrics_access)]
