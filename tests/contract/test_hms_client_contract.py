"""The real `HmsClient` against the emulator over loopback: the REST contract we rely on."""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from types import FrameType

import jwt
import pytest
import pytest_asyncio
from pydantic._internal import _generics

from livestage.kit.time import Clock, utc_now
from livestage.providers.hms.client import HmsClient
from livestage.providers.hms.errors import (
    HmsAuthenticationError,
    HmsConflict,
    HmsError,
    HmsNotFound,
    HmsPermissionDenied,
    HmsRequestError,
    HmsTransientError,
)
from livestage.providers.hms.tokens import ManagementTokenSource, TokenSource
from tests.support.emulator import EmulatorHandle, RecordingSleep, StartEmulator, wait_until
from tests.support.fixtures import FakeClock


def token_source(
    handle: EmulatorHandle,
    *,
    ttl: timedelta = timedelta(hours=1),
    clock: Clock = utc_now,
    app_secret: str | None = None,
) -> ManagementTokenSource:
    return ManagementTokenSource(
        access_key=handle.access_key,
        app_secret=app_secret or handle.app_secret,
        ttl=ttl,
        clock=clock,
    )


def make_client(
    handle: EmulatorHandle,
    *,
    source: TokenSource | None = None,
    sleep: RecordingSleep | None = None,
    timeout: float = 5.0,
    max_retries: int = 2,
    clock: Clock = utc_now,
) -> HmsClient:
    return HmsClient(
        token_source=source or token_source(handle, clock=clock),
        base_url=handle.api_url,
        auth_url=handle.auth_url,
        timeout=timeout,
        max_retries=max_retries,
        sleep=sleep or RecordingSleep(),
        clock=clock,
    )


@pytest_asyncio.fixture
async def hms(emulator: EmulatorHandle) -> AsyncIterator[HmsClient]:
    async with make_client(emulator) as client:
        yield client


def statuses(
    handle: EmulatorHandle, path_prefix: str = "/v2", method: str | None = None
) -> list[int]:
    return [r["status"] for r in handle.control.requests(path_prefix=path_prefix, method=method)]


class TestRooms:
    @pytest.mark.asyncio
    async def test_upsert_gives_one_room_per_name(
        self, hms: HmsClient, emulator: EmulatorHandle
    ) -> None:
        first = await hms.create_room("Creator-42", description="first")
        second = await hms.create_room("creator-42", description="second")

        rooms = [room async for room in hms.iter_rooms()]

        assert second.id == first.id
        assert second.description == "second"
        assert [r.id for r in rooms] == [first.id]
        assert statuses(emulator, "/v2/rooms", "POST") == [200, 200]

    @pytest.mark.asyncio
    async def test_get_disable_and_list(self, hms: HmsClient) -> None:
        room = await hms.create_room("stage")

        disabled = await hms.set_room_enabled(room.id, False)
        fetched = await hms.get_room(room.id)
        listed = await hms.list_rooms(enabled=False)

        assert disabled.enabled is False and fetched.enabled is False
        assert [r.id for r in listed.data] == [room.id]
        assert fetched.created_at is not None and fetched.template_id

    @pytest.mark.asyncio
    async def test_unknown_room(self, hms: HmsClient) -> None:
        with pytest.raises(HmsNotFound) as caught:
            await hms.get_room("0" * 24)

        assert caught.value.hms_message == "Room not found"

    @pytest.mark.asyncio
    async def test_validation_error_keeps_100ms_details(self, hms: HmsClient) -> None:
        with pytest.raises(HmsRequestError) as caught:
            await hms.create_room("big", size=3000)

        assert caught.value.status_code == 400
        assert caught.value.details == [
            "Invalid body param: room size greater than 2500, set large_room flag as true"
        ]

    @pytest.mark.asyncio
    async def test_iterates_past_one_page(self, hms: HmsClient) -> None:
        for i in range(105):
            await hms.create_room(f"room-{i:03d}")

        names = [room.name async for room in hms.iter_rooms()]

        assert sorted(names) == [f"room-{i:03d}" for i in range(105)]


class TestRoomCodes:
    @pytest.mark.asyncio
    async def test_create_list_toggle(self, hms: HmsClient) -> None:
        room = await hms.create_room("stage")

        created = await hms.create_room_codes(room.id)
        extra = await hms.create_room_code_for_role(room.id, "viewer")
        await hms.set_room_code_enabled(created[0].code, False)
        enabled = await hms.list_room_codes(room.id, enabled=True)
        viewers = await hms.list_room_codes(room.id, role="viewer")

        assert sorted(c.role for c in created) == ["broadcaster", "viewer"]
        assert {c.code for c in enabled} == {created[1].code, extra.code}
        assert {c.code for c in viewers} == {created[1].code, extra.code}

    @pytest.mark.asyncio
    async def test_replies_build_no_model_class_after_a_collection(
        self, hms: HmsClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """pydantic caches parametrized generics weakly: a page type made per call was built
        again (~1 ms) whenever a collection had run in between, on almost half the go-lives."""
        built: list[str] = []
        create = _generics.create_generic_submodel
        monkeypatch.setattr(
            _generics,
            "create_generic_submodel",
            lambda name, *rest: built.append(name) or create(name, *rest),
        )
        room = await hms.create_room("stage")

        for _ in range(3):
            gc.collect()
            await hms.create_room_codes(room.id)
            gc.collect()
            await hms.list_room_codes(room.id, enabled=True)

        assert built == []

    @pytest.mark.asyncio
    async def test_exchange(self, hms: HmsClient, emulator: EmulatorHandle) -> None:
        room = await hms.create_room("stage")
        code = (await hms.create_room_codes(room.id))[0]

        token = await hms.exchange_room_code(code.code, user_id="fan-1")

        claims = jwt.decode(token, emulator.app_secret, algorithms=["HS256"])
        assert (claims["room_id"], claims["role"], claims["user_id"]) == (
            room.id,
            code.role,
            "fan-1",
        )
        assert statuses(emulator, "/auth") == [200]

    @pytest.mark.asyncio
    async def test_exchange_refusals(self, hms: HmsClient) -> None:
        room = await hms.create_room("stage")
        code = (await hms.create_room_codes(room.id))[0].code
        await hms.set_room_code_enabled(code, False)

        with pytest.raises(HmsPermissionDenied):
            await hms.exchange_room_code(code)
        with pytest.raises(HmsNotFound):
            await hms.exchange_room_code("abc-defg-hij")

    @pytest.mark.asyncio
    async def test_disabled_room(self, hms: HmsClient) -> None:
        room = await hms.create_room("stage")
        await hms.set_room_enabled(room.id, False)

        with pytest.raises(HmsPermissionDenied) as caught:
            await hms.create_room_codes(room.id)

        assert caught.value.hms_message == "Room is disabled"


def _left_by_a_call(garbage: list[object]) -> list[str]:
    """What of the collector's finds came from the client's calls: httpx's and httpcore's
    objects, the client's frames (kept by an error's traceback) and its errors."""
    found = []
    for thing in garbage:
        kind = type(thing)
        if kind.__module__.split(".")[0] in ("httpx", "httpcore") or isinstance(thing, HmsError):
            found.append(kind.__qualname__)
        elif isinstance(thing, FrameType) and "providers/hms" in thing.f_code.co_filename:
            found.append(f"frame of {thing.f_code.co_qualname}")
    return found


class TestGarbage:
    @pytest.mark.asyncio
    async def test_calls_and_refusals_leave_nothing_for_the_garbage_collector(
        self, hms: HmsClient
    ) -> None:
        """Each call's objects are freed when dropped, not by the collector: a cycle per call
        piled up thousands for young collections that held go-lives up by 8-12 ms."""
        room = await hms.create_room("stage")
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                await hms.get_room(room.id)
                try:
                    await hms.end_room(room.id)  # nothing live: 404
                except HmsNotFound:
                    pass
                else:
                    raise AssertionError("ending a room with no session should be refused")
            gc.collect()
            left = _left_by_a_call(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

        assert left == []


class TestActiveRoomsAndSessions:
    @pytest.mark.asyncio
    async def test_peers_and_removal(self, hms: HmsClient, emulator: EmulatorHandle) -> None:
        room = await hms.create_room("stage")
        host = emulator.control.join_peer(room.id, user_id="host", role="broadcaster")
        fan = emulator.control.join_peer(room.id, user_id="fan", role="viewer")

        active = await hms.get_active_room(room.id)
        viewers = await hms.list_active_peers(room.id, role="viewer")
        await hms.remove_peers(room.id, peer_id=fan["id"], reason="spam")
        remaining = await hms.list_active_peers(room.id)

        assert active.session is not None and set(active.session.peers) == {host["id"], fan["id"]}
        assert [(p.id, p.user_id) for p in viewers] == [(fan["id"], "fan")]
        assert viewers[0].joined_at is not None
        assert [p.id for p in remaining] == [host["id"]]
        kicked = emulator.control.events("peer.leave.success")[0]["data"]
        assert (kicked["reason"], kicked["message"]) == ("peer kicked", "spam")

    @pytest.mark.asyncio
    async def test_end_room(self, hms: HmsClient, emulator: EmulatorHandle) -> None:
        room = await hms.create_room("stage")
        emulator.control.join_peer(room.id, user_id="host", role="broadcaster")

        await hms.end_room(room.id, reason="show over", lock=True)

        assert (await hms.get_room(room.id)).enabled is False
        with pytest.raises(HmsNotFound):
            await hms.end_room(room.id)
        with pytest.raises(HmsNotFound):
            await hms.get_active_room(room.id)

    @pytest.mark.asyncio
    async def test_sessions(self, hms: HmsClient, emulator: EmulatorHandle) -> None:
        room = await hms.create_room("stage")
        host = emulator.control.join_peer(room.id, user_id="host", role="broadcaster")
        emulator.control.leave_peer(room.id, host["id"])

        page = await hms.list_sessions(room_id=room.id, active=False)
        session = await hms.get_session(host["session_id"])

        assert [s.id for s in page.data] == [host["session_id"]]
        assert session.active is False
        peer = session.peers[host["id"]]
        assert peer.user_id == "host" and peer.joined_at and peer.left_at
        with pytest.raises(HmsNotFound):
            await hms.get_session("0" * 24)


class TestLiveStreams:
    @pytest.mark.asyncio
    async def test_start_conflict_stop(self, hms: HmsClient) -> None:
        room = await hms.create_room("stage")

        stream = await hms.start_live_stream(room.id)
        with pytest.raises(HmsConflict) as conflict:
            await hms.start_live_stream(room.id)
        listed = await hms.list_live_streams(room_id=room.id)

        assert stream.status == "starting" and stream.started_by == ""
        assert stream.playback_url and stream.playback_url.endswith(".m3u8")
        assert conflict.value.hms_message == "beam already started"
        assert [s.id for s in listed.data] == [stream.id]

    @pytest.mark.asyncio
    async def test_running_then_stopped(self, hms: HmsClient, emulator: EmulatorHandle) -> None:
        room = await hms.create_room("stage")
        stream = await hms.start_live_stream(room.id)
        wait_until(lambda: emulator.control.events("hls.started.success"))

        running = await hms.get_live_stream(stream.id)
        stopped = await hms.stop_live_streams(room.id)

        assert running.status == "running" and running.started_at is not None
        assert [(s.id, s.status) for s in stopped] == [(stream.id, "stopping")]
        with pytest.raises(HmsNotFound):
            await hms.stop_live_streams(room.id)

    @pytest.mark.asyncio
    async def test_api_made_template_needs_a_meeting_url(self, hms: HmsClient) -> None:
        template = await hms.ensure_livestage_template("livestage-contract")
        room = await hms.create_room("stage", template_id=template.id)

        with pytest.raises(HmsRequestError) as caught:
            await hms.start_live_stream(room.id)
        stream = await hms.start_live_stream(room.id, meeting_url="https://example.test/m")

        assert (caught.value.status_code, caught.value.hms_message) == (400, "invalid input")
        assert stream.status == "starting"


class TestTemplates:
    @pytest.mark.asyncio
    async def test_create_overwrite_get_list(self, hms: HmsClient) -> None:
        first = await hms.ensure_livestage_template("livestage-contract")
        second = await hms.ensure_livestage_template(
            "livestage-contract", broadcaster_role="host", viewer_role="audience"
        )

        fetched = await hms.get_template(first.id)
        listed = await hms.list_templates()

        assert second.id == first.id
        assert set(fetched.roles) == {"host", "audience"}
        assert fetched.roles["host"].max_peer_count == 1
        assert fetched.roles["audience"].publish_params.allowed == []
        assert first.id in {t.id for t in listed.data}


class TestFaults:
    @pytest.mark.asyncio
    async def test_429_waits_retry_after_then_succeeds(self, emulator: EmulatorHandle) -> None:
        sleep = RecordingSleep()
        emulator.control.queue_fault(
            "/v2/rooms", method="POST", kind="status", status=429, retry_after=2
        )

        async with make_client(emulator, sleep=sleep) as client:
            room = await client.create_room("stage")

        assert room.name == "stage"
        assert sleep.delays == [2.0]
        assert statuses(emulator, "/v2/rooms") == [429, 200]

    @pytest.mark.asyncio
    async def test_5xx_exhaustion_is_transient(self, emulator: EmulatorHandle) -> None:
        emulator.control.queue_fault("/v2/rooms", kind="status", status=503, count=10)

        async with make_client(emulator, max_retries=2) as client:
            with pytest.raises(HmsTransientError) as caught:
                await client.create_room("stage")

        assert caught.value.status_code == 503
        assert statuses(emulator) == [503, 503, 503]

    @pytest.mark.asyncio
    async def test_500_once_is_retried(self, emulator: EmulatorHandle) -> None:
        emulator.control.queue_fault("/v2/rooms", kind="status", status=500)

        async with make_client(emulator) as client:
            await client.create_room("stage")

        assert statuses(emulator) == [500, 200]
        assert len(emulator.control.requests(path_prefix="/v2/rooms")) == 2

    @pytest.mark.asyncio
    async def test_timeout_is_transient(self, emulator: EmulatorHandle) -> None:
        emulator.control.queue_fault("/v2/rooms", kind="timeout", count=2)

        async with make_client(emulator, timeout=0.3, max_retries=1) as client:
            with pytest.raises(HmsTransientError):
                await client.get_room("0" * 24)

        records = wait_until(
            lambda: (
                len(emulator.control.requests(path_prefix="/v2")) == 2
                and emulator.control.requests(path_prefix="/v2")
            )
        )
        assert [r["fault"] for r in records] == ["timeout=5", "timeout=5"]


class TestManagementToken:
    @pytest.mark.asyncio
    async def test_remints_before_expiry_with_a_moving_clock(
        self, start_emulator: StartEmulator, clock: FakeClock
    ) -> None:
        handle = start_emulator(clock=clock)
        source = token_source(handle, ttl=timedelta(minutes=2), clock=clock)

        async with make_client(handle, source=source, clock=clock) as client:
            room = await client.create_room("stage")
            for _ in range(12):
                clock.advance(seconds=25)
                await client.get_room(room.id)

        records = handle.control.requests(path_prefix="/v2")
        assert {r["status"] for r in records} == {200}
        assert len({r["token_jti"] for r in records}) >= 3
        for record in records:
            sent_at = clock().fromisoformat(record["timestamp"]).timestamp()
            assert record["token_exp"] > sent_at

    @pytest.mark.asyncio
    async def test_concurrent_calls_share_one_refresh(
        self, start_emulator: StartEmulator, clock: FakeClock
    ) -> None:
        handle = start_emulator(clock=clock)
        source = token_source(handle, ttl=timedelta(minutes=10), clock=clock)

        async with make_client(handle, source=source, clock=clock) as client:
            room = await client.create_room("stage")
            clock.advance(minutes=6)
            await asyncio.gather(*(client.get_room(room.id) for _ in range(10)))

        records = handle.control.requests(path_prefix="/v2")
        assert {r["status"] for r in records} == {200}
        assert len({r["token_jti"] for r in records}) == 2

    @pytest.mark.asyncio
    async def test_concurrent_401s_share_one_remint(
        self, start_emulator: StartEmulator, clock: FakeClock
    ) -> None:
        ahead = timedelta()

        def emulator_clock() -> datetime:
            return clock() + ahead

        handle = start_emulator(clock=emulator_clock)
        source = token_source(handle, ttl=timedelta(minutes=10), clock=clock)

        async with make_client(handle, source=source, clock=clock) as client:
            room = await client.create_room("stage")
            # Still fresh by our clock, already expired by 100ms's: every call gets a 401.
            clock.advance(minutes=4)
            ahead = timedelta(minutes=6)
            await asyncio.gather(*(client.get_room(room.id) for _ in range(5)))

        records = handle.control.requests(path_prefix=f"/v2/rooms/{room.id}")
        rejected = {r["token_jti"] for r in records if r["status"] == 401}
        accepted = {r["token_jti"] for r in records if r["status"] == 200}
        assert sorted(r["status"] for r in records) == [200] * 5 + [401] * 5
        assert len(rejected) == len(accepted) == 1 and rejected != accepted

    @pytest.mark.parametrize(("skew", "accepted"), [(5, True), (15, False)])
    @pytest.mark.asyncio
    async def test_tolerates_a_few_seconds_of_clock_skew(
        self, start_emulator: StartEmulator, clock: FakeClock, skew: int, accepted: bool
    ) -> None:
        def behind() -> datetime:
            return clock() - timedelta(seconds=skew)

        handle = start_emulator(clock=behind)

        async with make_client(handle, clock=clock) as client:
            if accepted:
                await client.list_rooms()
            else:
                with pytest.raises(HmsAuthenticationError) as caught:
                    await client.list_rooms()
                assert caught.value.details == ["token is not valid yet"]

    @pytest.mark.asyncio
    async def test_a_401_remints_once(self, emulator: EmulatorHandle) -> None:
        emulator.control.queue_fault("/v2/rooms", kind="status", status=401)

        async with make_client(emulator) as client:
            await client.create_room("stage")

        first, second = emulator.control.requests(path_prefix="/v2")
        assert (first["status"], second["status"]) == (401, 200)
        assert first["token_jti"] != second["token_jti"]

    @pytest.mark.asyncio
    async def test_a_second_401_is_an_authentication_error(self, emulator: EmulatorHandle) -> None:
        emulator.control.queue_fault("/v2/rooms", kind="status", status=401, count=2)

        async with make_client(emulator) as client:
            with pytest.raises(HmsAuthenticationError):
                await client.create_room("stage")

        assert statuses(emulator) == [401, 401]

    @pytest.mark.asyncio
    async def test_wrong_secret(self, emulator: EmulatorHandle) -> None:
        source = token_source(emulator, app_secret=secrets.token_hex(32))

        async with make_client(emulator, source=source) as client:
            with pytest.raises(HmsAuthenticationError) as caught:
                await client.list_rooms()

        assert caught.value.details == ["signature is invalid"]
        assert statuses(emulator) == [401, 401]
