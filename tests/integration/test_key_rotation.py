"""Rotating LIVESTAGE_SECRET_KEY: old ciphertexts stay readable, then get re-encrypted."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

from livestage.accounts.service import account as account_service
from livestage.app import AppState
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.influencers.service import influencer as influencer_service
from livestage.kit.crypto import DecryptionError, SecretBox
from tests.support.fixtures import FakeClock, create_admin, create_influencer, load_influencer
from tests.support.hms_tokens import auth_token, throwaway_credentials

pytestmark = pytest.mark.asyncio


async def test_rotation_keeps_tokens_and_totp_readable(ctx: AppState, clock: FakeClock) -> None:
    key, secret = throwaway_credentials()
    admin = await create_admin(ctx)
    account = await create_influencer(ctx, "rota")
    token = auth_token(access_key=key, secret=secret, now=clock())
    async with transaction(ctx.database.sessionmaker) as session:
        from livestage.audit.service import Actor

        found = await influencer_service.get(session, account.id)
        await influencer_service.set_token(
            session,
            Actor(None, None),
            found,
            token,
            box=ctx.box,
            policy=ctx.influencers.token_policy,
            now=clock(),
        )

    old_key = ctx.settings.secret_key.get_secret_value()
    new_key = secrets.token_urlsafe(32)
    rotated_settings = ctx.settings.model_copy(
        update={"secret_key": SecretStr(new_key), "secret_key_fallbacks": SecretStr(old_key)}
    )
    rotating_box = SecretBox(rotated_settings.secret_keys)
    engine = create_engine(rotated_settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            assert await account_service.reencrypt_secrets(session, rotating_box) == 1
            assert await influencer_service.reencrypt_tokens(session, rotating_box) == 1
    finally:
        await engine.dispose()

    new_only = SecretBox([new_key])
    stored = await load_influencer(ctx, account.id)
    assert stored.auth_token_encrypted is not None
    assert new_only.decrypt(stored.auth_token_encrypted) == token
    with pytest.raises(DecryptionError):
        SecretBox([old_key]).decrypt(stored.auth_token_encrypted)
    assert admin.totp_secret
