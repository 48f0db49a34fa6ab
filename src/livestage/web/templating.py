from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from livestage.web.csrf import pre_login_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is signed in, as plain values: safe to render even after a rollback. The auth
    dependency puts it on `request.state.signed_in`."""

    email: str
    role: str
    name: str
    csrf_token: str


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    signed_in: SignedIn | None = getattr(request.state, "signed_in", None)
    csrf_token = signed_in.csrf_token if signed_in else pre_login_token(request)
    base = {"csrf_token": csrf_token, "current_user": signed_in}
    return templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code
    )
