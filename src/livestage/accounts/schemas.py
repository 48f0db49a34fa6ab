from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from livestage.models import UserRole


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    totp_code: str | None = Field(default=None, max_length=16, description="Admins only.")
    role: UserRole = UserRole.admin


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: UserRole


class LoginResponse(BaseModel):
    user: UserRead
    csrf_token: str


class CsrfResponse(BaseModel):
    csrf_token: str
