"""Demo accounts for the quick start. Passwords are new random ones on every start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from livestage.accounts import passwords, totp
from livestage.accounts.repository import UserRepository
from livestage.accounts.service import account as account_service
from livestage.audit.service import Actor
from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.influencers.service import influencer as influencer_service
from livestage.kit.crypto import SecretBox
from livestage.kit.time import utc_now

DEMO_ADMIN = "admin@demo.livestage.test"
DEMO_INFLUENCER = "creator@demo.livestage.test"
DEMO_HANDLE = "democreator"


@dataclass(frozen=True, slots=True)
class DemoAccounts:
    admin_password: str
    admin_totp_secret: str
    admin_provisioning_uri: str
    influencer_password: str

    def describe(self, *, base_url: str) -> str:
        return "\n".join(
            [
                "livestage demo accounts (passwords are new on every start):",
                f"  admin      {base_url}/admin/login",
                f"             email {DEMO_ADMIN}  password {self.admin_password}",
                f"             secret key: TOTP, provisioning URI {self.admin_provisioning_uri}",
                f"             (code now: {totp.code_at(self.admin_totp_secret, utc_now())}; a "
                f"fresh one any time: livestage admin totp --email {DEMO_ADMIN})",
                f"  influencer {base_url}/login",
                f"             email {DEMO_INFLUENCER}  password {self.influencer_password}",
                f"  viewers    {base_url}/watch/{DEMO_HANDLE}",
            ]
        )


async def ensure_demo_accounts(settings: Settings) -> DemoAccounts:
    box = SecretBox(settings.secret_keys)
    admin_password = secrets.token_urlsafe(12)
    influencer_password = secrets.token_urlsafe(12)
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            users = UserRepository(session)
            admin = await users.get_by_email(DEMO_ADMIN)
            if admin is None:
                new = await account_service.create_admin(
                    session, box, email=DEMO_ADMIN, password=admin_password, name="Demo Admin"
                )
                admin = new.user
            admin.password_hash = await passwords.hash_off_loop(admin_password)
            assert admin.totp_secret_encrypted is not None
            secret = box.decrypt(admin.totp_secret_encrypted)

            creator = await users.get_by_email(DEMO_INFLUENCER)
            if creator is None:
                await influencer_service.create(
                    session,
                    Actor(None, "demo"),
                    email=DEMO_INFLUENCER,
                    name="Demo Creator",
                    handle=DEMO_HANDLE,
                    password=influencer_password,
                    now=utc_now(),
                )
            else:
                creator.password_hash = await passwords.hash_off_loop(influencer_password)
    finally:
        await engine.dispose()
    return DemoAccounts(
        admin_password, secret, totp.provisioning_uri(secret, DEMO_ADMIN), influencer_password
    )
