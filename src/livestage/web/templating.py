from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from livestage.web.deps import csrf_token_for

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    signed_in = getattr(request.state, "signed_in", None)
    base = {"csrf_token": csrf_token_for(request, signed_in), "current_user": signed_in}
    return templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code
    )
