"""Pages: home, the influencer's broadcast page, who is live, the viewer's watch page."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from livestage.accounts.auth import CurrentInfluencer, OptionalUserSession
from livestage.errors import LivestageError
from livestage.influencers.deps import ReadAdmin
from livestage.influencers.repository import InfluencerRepository
from livestage.providers.base import browser_signalling
from livestage.streams.deps import EndingDep, GoLiveDep, viewing_of
from livestage.streams.schemas import stream_read
from livestage.streams.service import stream as stream_service
from livestage.web.deps import DbSession
from livestage.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, _signed_in: OptionalUserSession, session: DbSession) -> Response:
    streams = await stream_service.list_live(session)
    return render(request, "home.html", {"streams": streams})


@router.get("/influencer/live")
async def broadcast_page(
    request: Request, user: CurrentInfluencer, session: DbSession, config: GoLiveDep
) -> Response:
    influencer = await InfluencerRepository(session).get_by_user(user)
    current = await stream_service.current(session, user)
    context = {
        "influencer": influencer,
        "current": stream_read(current).model_dump(mode="json") if current else None,
        "sdk_url": config.sdk_url,
        "broadcaster_role": config.broadcaster_role,
        "automatic_available": config.provider is not None,
        # HLS is a 100ms feature: the option is not offered with the local provider.
        "hls_available": config.provider is not None
        and browser_signalling(config.provider) is None,
    }
    return render(request, "influencer/live.html", context)


@router.get("/live")
async def live_page(request: Request, session: DbSession) -> Response:
    streams = await stream_service.list_live(session)
    return render(request, "live.html", {"streams": streams})


@router.get("/watch/{handle}")
async def watch_page(
    request: Request, handle: str, session: DbSession, config: GoLiveDep
) -> Response:
    try:
        influencer, latest = await stream_service.watch(session, handle)
    except LivestageError as error:
        missing = {"missing": error.message, "handle": handle[:40]}
        return render(request, "watch.html", missing, status_code=error.status_code)
    context: dict[str, object] = {
        "influencer": influencer,
        "stream": latest,
        "sdk_url": config.sdk_url,
        "broadcaster_role": config.broadcaster_role,
    }
    response = render(request, "watch.html", context)
    # The viewer's identity from the first page load on: the join that follows carries it.
    cookie = viewing_of(request).viewer_cookie
    cookie.remember(response, cookie.identify(request.cookies, None))
    return response


@router.post("/admin/influencers/{influencer_id}/stream/end")
async def admin_end_stream(
    influencer_id: uuid.UUID, actor: ReadAdmin, ending: EndingDep
) -> Response:
    await ending.by_admin(actor, influencer_id)
    notice = f"/admin/influencers/{influencer_id}?notice=stream_ended"
    return RedirectResponse(notice, status_code=303)
