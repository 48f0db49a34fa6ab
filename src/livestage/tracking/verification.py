"""Webhook authenticity (pure) and the secret 100ms must send. A missing secret means the
endpoint is off, not open."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from livestage.config import Settings

WEBHOOK_SECRET_HEADER = "X-Livestage-Webhook-Secret"


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or one derived from LIVESTAGE_SECRET_KEY so none is needed."""
    configured = settings.webhook_secret.get_secret_value()
    if configured:
        return configured
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"livestage-hms-webhook", hashlib.sha256).hexdigest()


class WebhookVerificationError(Exception):
    def __init__(self, message: str, *, status_code: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    secret_header: str
    secret: str | None
    hmac_secret: str | None = None
    allowed_networks: Sequence[str] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPolicy:
        networks = settings.webhook_allowed_networks.split(",")
        return cls(
            secret_header=WEBHOOK_SECRET_HEADER,
            secret=webhook_secret(settings),
            hmac_secret=settings.webhook_hmac_secret.get_secret_value() or None,
            allowed_networks=tuple(n.strip() for n in networks if n.strip()),
        )


def verify_sender(policy: WebhookPolicy, headers: Mapping[str, str], client_ip: str | None) -> None:
    """Raise WebhookVerificationError unless the request carries our secret (from an allowed
    network). Needs no body, so a stranger's request is refused before any of it is read."""
    if not policy.secret:
        raise WebhookVerificationError(
            "webhooks are disabled: no secret is configured", status_code=503
        )
    if policy.allowed_networks and not _ip_allowed(client_ip, policy.allowed_networks):
        raise WebhookVerificationError("source address not allowed", status_code=403)
    presented = headers.get(policy.secret_header.lower(), "")
    if not hmac.compare_digest(presented.encode(), policy.secret.encode()):
        raise WebhookVerificationError("missing or wrong webhook secret header")


def verify_signature(policy: WebhookPolicy, headers: Mapping[str, str], body: bytes) -> None:
    """Raise WebhookVerificationError unless the body carries its HMAC, when one is configured."""
    if policy.hmac_secret:
        expected = hmac.new(policy.hmac_secret.encode(), body, hashlib.sha256).hexdigest()
        signature = headers.get("x-100ms-signature", "")
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise WebhookVerificationError("missing or wrong x-100ms-signature")


def _ip_allowed(client_ip: str | None, networks: Sequence[str]) -> bool:
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)
