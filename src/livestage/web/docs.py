"""The API's Swagger UI at /docs, served whole by livestage: Swagger UI's own files come from
the fastapi-offline package (no CDN, so /docs works offline), and the page starts it from a
static script rather than FastAPI's inline one, which the Content-Security-Policy would refuse.
ReDoc is not served: it injects `<style>` elements, which the policy refuses too."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from livestage.web.templating import templates

SWAGGER_ASSETS = "/static/swagger-ui"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    openapi_url = request.app.openapi_url
    return templates.TemplateResponse(
        request,
        "docs.html",
        {"title": f"{request.app.title} API", "openapi_url": openapi_url, "assets": SWAGGER_ASSETS},
    )


def install_docs(app: FastAPI) -> None:
    """/docs and Swagger UI's files, ahead of any route or mount that would take their paths
    (`/static`'s mount answers 404 for what it does not hold)."""
    assets = StaticFiles(packages=[("fastapi_offline", "static")])
    app.router.routes.insert(0, Mount(SWAGGER_ASSETS, app=assets, name="swagger-ui"))
    app.include_router(router)
