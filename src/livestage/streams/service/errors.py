"""What going live, ending and watching refuse with. Each message says what the creator or
viewer can do now; `problems` are for admins."""

from __future__ import annotations

from livestage.errors import Conflict, Forbidden, LivestageError, NotFound, ServiceUnavailable
from livestage.providers.base import ProviderError, StreamingProvider, browser_signalling


class StreamingDisabled(Forbidden):
    # The refusal is audited (`stream.start_refused`): that row must outlive the rollback.
    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Streaming is turned off for your account. Ask an admin to enable it.")


MISCONFIGURED = "Streaming is not set up correctly on this server; an admin has been told."


ROOM_CODE_HOW = (
    "in the 100ms dashboard open Rooms, pick your room, and copy the code for the broadcaster role"
)


class RoomCodeRequired(LivestageError):
    """Neither automatic set-up nor an admin-set token can be used, and a room code can.
    `problems` say why, for admins: they reach the log and the audit row, never the creator."""

    status_code = 409
    problem = "room_code_required"
    keeps_changes = True

    def __init__(self, problems: list[str], *, misconfigured: bool) -> None:
        if misconfigured:
            message = (
                f"{MISCONFIGURED} You can still go live with the room code of your 100ms room: "
                f"ask an admin for it, or {ROOM_CODE_HOW}."
            )
        else:
            message = f"Enter the room code of your 100ms room to go live: {ROOM_CODE_HOW}."
        super().__init__(message)
        self.problems = problems


class ProviderUnavailable(ServiceUnavailable):
    """Nothing can start a stream now, not even a room code: the creator can only wait (or
    an admin must fix the server). `problems` are for admins, as for `RoomCodeRequired`."""

    problem = "provider_unavailable"
    keeps_changes = True

    def __init__(self, problems: list[str], message: str) -> None:
        super().__init__(message)
        self.problems = problems


def blocked(
    provider: StreamingProvider | None, failure: ProviderError | None, problems: list[str]
) -> LivestageError:
    """What the creator is told when nothing could start the stream."""
    if provider is None:
        return RoomCodeRequired(problems, misconfigured=False)
    if failure is not None and failure.transient:
        # The browser's room-code exchange goes to 100ms too: it would fail the same way.
        return ProviderUnavailable(problems, not_answering(provider))
    if browser_signalling(provider) is not None:
        return ProviderUnavailable(problems, MISCONFIGURED)
    return RoomCodeRequired(problems, misconfigured=True)


def not_answering(provider: StreamingProvider | None) -> str:
    who = "100ms is" if provider is not None and provider.name == "hms" else "The video service is"
    return f"{who} not answering right now; try again in a minute."


class StartInterrupted(Conflict):
    # The provider's room, when it answered, stays remembered for the next try.
    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Your stream was stopped while it was being set up. Start again.")


class StillSettingUp(Conflict):
    def __init__(self) -> None:
        super().__init__("Your stream is still being set up; try again in a moment.")


class StreamFull(Conflict):
    problem = "stream_full"

    def __init__(self, cap: int) -> None:
        super().__init__(f"This stream is full ({cap} viewers). Try again in a moment.")


class Banned(Forbidden):
    problem = "banned"

    def __init__(self) -> None:
        super().__init__("You are banned from this creator's streams.")


class NoActiveStream(NotFound):
    def __init__(self) -> None:
        super().__init__("You are not live right now.")
