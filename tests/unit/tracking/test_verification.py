from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest

from livestage.tracking.verification import (
    WebhookPolicy,
    WebhookVerificationError,
    verify_sender,
    verify_signature,
)

SECRET = secrets.token_hex(16)
HEADER = "X-Livestage-Webhook-Secret"
BODY = b'{"id":"e1","type":"peer.join.success","data":{}}'


def _headers(**extra: str) -> dict[str, str]:
    return {HEADER.lower(): SECRET, **extra}


def verify_webhook(
    policy: WebhookPolicy, headers: dict[str, str], body: bytes, client_ip: str | None
) -> None:
    """Both checks, in the route's order: the sender before the body is read, then the body."""
    verify_sender(policy, headers, client_ip)
    verify_signature(policy, headers, body)


class TestSecretHeader:
    def test_right_secret_passes(self) -> None:
        verify_webhook(WebhookPolicy(HEADER, SECRET), _headers(), BODY, "127.0.0.1")

    @pytest.mark.parametrize("headers", [{}, {HEADER.lower(): "wrong"}, {HEADER.lower(): ""}])
    def test_missing_or_wrong_secret_is_401(self, headers: dict[str, str]) -> None:
        with pytest.raises(WebhookVerificationError) as caught:
            verify_webhook(WebhookPolicy(HEADER, SECRET), headers, BODY, "127.0.0.1")
        assert caught.value.status_code == 401

    @pytest.mark.parametrize("secret", [None, ""])
    def test_no_secret_configured_means_disabled(self, secret: str | None) -> None:
        with pytest.raises(WebhookVerificationError, match="disabled"):
            verify_webhook(WebhookPolicy(HEADER, secret), {HEADER.lower(): ""}, BODY, None)


class TestHmac:
    KEY = secrets.token_hex(16)

    def _signed(self, body: bytes) -> dict[str, str]:
        signature = hmac.new(self.KEY.encode(), body, hashlib.sha256).hexdigest()
        return _headers(**{"x-100ms-signature": signature})

    def test_signed_body_passes(self) -> None:
        policy = WebhookPolicy(HEADER, SECRET, hmac_secret=self.KEY)
        verify_webhook(policy, self._signed(BODY), BODY, None)

    def test_tampered_body_is_rejected(self) -> None:
        policy = WebhookPolicy(HEADER, SECRET, hmac_secret=self.KEY)
        with pytest.raises(WebhookVerificationError, match="signature"):
            verify_webhook(policy, self._signed(BODY), BODY.replace(b"e1", b"e2"), None)

    def test_missing_signature_is_rejected(self) -> None:
        policy = WebhookPolicy(HEADER, SECRET, hmac_secret=self.KEY)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(policy, _headers(), BODY, None)


def test_ip_allowlist() -> None:
    policy = WebhookPolicy(HEADER, SECRET, allowed_networks=["34.100.0.0/16"])
    verify_webhook(policy, _headers(), BODY, "34.100.3.4")
    with pytest.raises(WebhookVerificationError) as caught:
        verify_webhook(policy, _headers(), BODY, "127.0.0.1")
    assert caught.value.status_code == 403
