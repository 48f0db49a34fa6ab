"""`/v2/live-streams` (HLS beams).

A started stream is `starting`, becomes `running` (webhook `hls.started.success`) after
`hls_transition_seconds`; a stop makes it `stopping`, then `completed` (`hls.stopped.success`).
A room left empty stops its stream `hls_idle_stop_seconds` later (100ms: 5 minutes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hms_emulator.body import json_body, ok, opt_dict, opt_int, opt_str
from hms_emulator.config import new_object_id
from hms_emulator.errors import ApiError, invalid_body
from hms_emulator.runtime import Emulator, emulator_of
from hms_emulator.state import (
    ZERO_TIME,
    LiveStream,
    Room,
    newest_first,
    paginate,
    ts,
    ts_nanos,
)

STOPPABLE = ("starting", "running")
# 100ms's limit on a timed-metadata payload.
MAX_METADATA_CHARS = 100


def _hls_data(emu: Emulator, stream: LiveStream, state_name: str) -> dict[str, Any]:
    session = emu.state.sessions.get(stream.session_id)
    room = emu.state.rooms[stream.room_id]
    now = emu.now()
    return {
        "beam_id": stream.id,
        "job_id": stream.id,
        "recording_single_file_per_layer_enabled": bool(
            stream.recording.get("single_file_per_layer", False)
        ),
        "recording_vod_playlist_enabled": bool(stream.recording.get("hls_vod", False)),
        "room_id": stream.room_id,
        "peer_id": "",
        "session_id": stream.session_id,
        "template_id": room.template_id,
        "meeting_url": stream.meeting_url,
        "metadata_id": "",
        "metadata_timestamp": ZERO_TIME,
        "state_name": state_name,
        "state_timestamp": ts(now),
        "max_width": 1280,
        "max_height": 720,
        "url": stream.playback_url,
        "started_at": ts_nanos(stream.started_at) if stream.started_at else ZERO_TIME,
        "session_started_at": ts_nanos(session.created_at) if session else ZERO_TIME,
    }


def _promote(emu: Emulator, stream: LiveStream) -> None:
    if stream.status != "starting":
        return
    stream.status = "running"
    stream.started_at = stream.updated_at = emu.now()
    data = {**_hls_data(emu, stream, "HLSStarted"), "start_delay": 0}
    emu.emit(emu.state.rooms[stream.room_id], "hls.started.success", data)


def _complete(emu: Emulator, stream: LiveStream, reason: str) -> None:
    if stream.status != "stopping":
        return
    stream.status = "completed"
    stream.updated_at = emu.now()
    stopped_at = stream.stopped_at or stream.updated_at
    started_at = stream.started_at or stopped_at
    data = {
        **_hls_data(emu, stream, "HLSStopped"),
        "duration": int((stopped_at - started_at).total_seconds()),
        "stopped_at": ts_nanos(stopped_at),
        "reason": reason,
        "live_transcription_enabled": False,
    }
    emu.emit(emu.state.rooms[stream.room_id], "hls.stopped.success", data)


def _stop(emu: Emulator, stream: LiveStream, reason: str) -> None:
    stream.status = "stopping"
    stream.stopped_at = stream.updated_at = emu.now()
    emu.after(emu.config.hls_transition_seconds, lambda: _complete(emu, stream, reason))


def stop_room_streams(emu: Emulator, room: Room, *, reason: str) -> list[LiveStream]:
    streams = [
        s for s in emu.state.live_streams.values() if s.room_id == room.id and s.status in STOPPABLE
    ]
    for stream in streams:
        _stop(emu, stream, reason)
    return streams


def stop_when_still_empty(emu: Emulator, room: Room, closed_session_id: str) -> None:
    """The room's last peer left: its live stream stops `hls_idle_stop_seconds` later unless a
    peer joined meanwhile (a new session opened)."""

    def stop_if_idle() -> None:
        # Sessions are kept in the order they opened: the room's last one is its newest.
        sessions = [s for s in emu.state.sessions.values() if s.room_id == room.id]
        latest = sessions[-1] if sessions else None
        if latest is not None and latest.id == closed_session_id and not latest.active:
            stop_room_streams(emu, room, reason="last peer left")

    emu.after(emu.config.hls_idle_stop_seconds, stop_if_idle)


def _meeting_url(body: dict[str, Any]) -> str | None:
    """100ms answers `{"meeting_url": ""}` with 400 `invalid input`; that a URL beam cannot open
    (not absolute http(s)) gets the same answer is UNCONFIRMED, an inference from it."""
    meeting_url = opt_str(body, "meeting_url")
    if meeting_url is None:
        return None
    parts = urlsplit(meeting_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in meeting_url:
        raise ApiError(400, "invalid input", ["meeting_url must be an http(s) URL"])
    return meeting_url


def _beam_room(emu: Emulator, room_id: str) -> Room:
    # 100ms answers beam calls for unknown or foreign rooms with 403, not 404.
    room = emu.state.rooms.get(room_id)
    if room is None:
        raise ApiError(403, "user does not have required permission")
    return room


async def start(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = _beam_room(emu, request.path_params["room_id"])
    body = await json_body(request, must_not_be_empty=True)
    meeting_url = _meeting_url(body) or ""
    recording = opt_dict(body, "recording") or {}
    if any(s.room_id == room.id and s.active for s in emu.state.live_streams.values()):
        raise ApiError(409, "beam already started")
    template = emu.state.templates.get(room.template_id)
    if not meeting_url and (template is None or template.subdomain is None):
        raise ApiError(400, "invalid input", ["meeting_url is required for this template"])
    session = emu.state.active_session(room.id)
    stream_id, now = new_object_id(), emu.now()
    stream = LiveStream(
        id=stream_id,
        room_id=room.id,
        session_id=session.id if session else "",
        meeting_url=meeting_url,
        playback_url=f"{request.base_url}_emulator/hls/{stream_id}/master.m3u8",
        created_at=now,
        updated_at=now,
        recording=recording,
    )
    emu.state.live_streams[stream.id] = stream
    emu.after(emu.config.hls_transition_seconds, lambda: _promote(emu, stream))
    return ok(stream.to_json())


async def stop_for_room(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = _beam_room(emu, request.path_params["room_id"])
    stopped = stop_room_streams(emu, room, reason="client request")
    if not stopped:
        raise ApiError(404, "beam not found")
    return ok({"data": [s.to_json() for s in stopped], "limit": 10, "last": stopped[-1].id})


async def stop_one(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    stream = emu.state.live_streams.get(request.path_params["stream_id"])
    if stream is None or stream.status not in (*STOPPABLE, "stopping"):
        raise ApiError(404, "beam not found")
    if stream.status in STOPPABLE:
        _stop(emu, stream, "client request")
    return ok(stream.to_json())


def _running(emu: Emulator, stream_id: str) -> LiveStream:
    stream = emu.state.live_streams.get(stream_id)
    if stream is None or stream.status not in STOPPABLE:
        raise ApiError(404, "beam not found")
    return stream


async def timed_metadata(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    stream = _running(emu, request.path_params["stream_id"])
    body = await json_body(request, must_not_be_empty=True)
    payload, duration = opt_str(body, "payload"), opt_int(body, "duration")
    if not payload or len(payload) > MAX_METADATA_CHARS:
        raise invalid_body(f"payload is required, at most {MAX_METADATA_CHARS} characters")
    if duration is None or duration <= 0:
        raise invalid_body("duration is required, in seconds")
    stream.timed_metadata.append((payload, duration, emu.now()))
    stream.updated_at = emu.now()
    return ok(stream.to_json())


async def pause_recording(request: Request) -> JSONResponse:
    return _set_recording_paused(request, paused=True)


async def resume_recording(request: Request) -> JSONResponse:
    return _set_recording_paused(request, paused=False)


def _set_recording_paused(request: Request, *, paused: bool) -> JSONResponse:
    emu = emulator_of(request)
    stream = _running(emu, request.path_params["stream_id"])
    if not stream.recording.get("hls_vod") and not stream.recording.get("single_file_per_layer"):
        raise ApiError(400, "recording is not enabled for this live stream")
    stream.recording_paused = paused
    stream.updated_at = emu.now()
    return ok(stream.to_json())


async def get_one(request: Request) -> JSONResponse:
    stream = emulator_of(request).state.live_streams.get(request.path_params["stream_id"])
    if stream is None:
        raise ApiError(404, "live stream not found")
    return ok(stream.to_json())


async def list_all(request: Request) -> JSONResponse:
    emu, query = emulator_of(request), request.query_params
    streams = list(emu.state.live_streams.values())
    for name in ("room_id", "session_id", "status"):
        if wanted := query.get(name):
            streams = [s for s in streams if getattr(s, name) == wanted]
    page = paginate(newest_first(streams), lambda s: s.id, query)
    return ok(page.to_json(LiveStream.to_json))


async def playlist(request: Request) -> Response:
    """A live playlist without segments, so a player pointed at the emulator gets a valid
    answer; timed metadata appears as 100ms writes it, one EXT-X-DATERANGE each."""
    stream = emulator_of(request).state.live_streams.get(request.path_params["stream_id"])
    if stream is None:
        return Response("not found", status_code=404)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for number, (payload, duration, at) in enumerate(stream.timed_metadata):
        quoted = payload.replace('"', "'")
        lines.append(
            f'#EXT-X-DATERANGE:ID="{number}",START-DATE="{ts(at)}",DURATION={duration},'
            f'X-100MSLIVE-PAYLOAD="{quoted}"'
        )
    return Response("\n".join(lines) + "\n", media_type="application/vnd.apple.mpegurl")


routes = [
    Route("/live-streams/room/{room_id}/start", start, methods=["POST"]),
    Route("/live-streams/room/{room_id}/stop", stop_for_room, methods=["POST"]),
    Route("/live-streams/{stream_id}/stop", stop_one, methods=["POST"]),
    Route("/live-streams/{stream_id}/timed-metadata", timed_metadata, methods=["POST"]),
    Route("/live-streams/{stream_id}/pause-recording", pause_recording, methods=["POST"]),
    Route("/live-streams/{stream_id}/resume-recording", resume_recording, methods=["POST"]),
    Route("/live-streams/{stream_id}", get_one, methods=["GET"]),
    Route("/live-streams", list_all, methods=["GET"]),
]

playlist_routes = [Route("/{stream_id}/master.m3u8", playlist, methods=["GET"])]
