from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin, TimestampMixin


class UserRole(enum.StrEnum):
    admin = "admin"
    influencer = "influencer"


class User(IDMixin, TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(Enum(UserRole, native_enum=False, length=16))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(String(512), default=None)
    # Last TOTP time step accepted, so a code cannot be replayed within its window.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
