"""Throughput of the pure token paths: minting join tokens and validating admin-set tokens."""

from __future__ import annotations

import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta

from livestage.influencers.tokens import validate_auth_token
from livestage.providers.hms.tokens import mint_auth_token

ROUNDS = 5
N = 5000


def _per_second(work: object) -> list[float]:
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(N):
            work()  # type: ignore[operator]
        rates.append(N / (time.perf_counter() - start))
    return rates


def main() -> None:
    key, secret = secrets.token_hex(12), secrets.token_hex(32)
    now = datetime.now(UTC)
    room = secrets.token_hex(12)

    def mint() -> str:
        return mint_auth_token(
            access_key=key,
            app_secret=secret,
            room_id=room,
            role="broadcaster",
            user_id="u",
            ttl=timedelta(hours=4),
            now=now,
        )

    token = mint()

    def validate() -> object:
        return validate_auth_token(token, now=now, access_key=key, app_secret=secret)

    for name, work in (("mint auth token", mint), ("validate admin token", validate)):
        rates = _per_second(work)
        print(f"{name:22s} median {statistics.median(rates):9.0f}/s  min {min(rates):9.0f}/s")


if __name__ == "__main__":
    main()
