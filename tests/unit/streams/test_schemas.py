from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from livestage.streams.schemas import VIEWER_NAME, TokenJoin

plain = st.text(string.ascii_letters + string.digits + "-_.:/ ", min_size=1)
ice_server = st.fixed_dictionaries(
    {"urls": st.lists(st.text(), min_size=1, max_size=2)},
    optional={"username": st.text(), "credential": st.text()},
)
hms = st.builds(lambda name: {"provider": name}, plain | st.text())
local = st.builds(
    lambda name, url, servers: {"provider": name, "signal_url": url, "ice_servers": servers},
    st.text(),
    st.text(),
    st.lists(ice_server, max_size=2),
)


@given(
    token=plain | st.text(),
    role=plain | st.text(),
    room_id=plain | st.text(),
    user_id=plain | st.text(),
    user_name=plain | st.text(),
    provider=hms | local,
)
def test_the_join_is_written_as_its_model_writes_it(
    token: str, role: str, room_id: str, user_id: str, user_name: str, provider: dict[str, Any]
) -> None:
    """Byte for byte, whatever the strings hold: plain ones through the template, any other
    (quotes, escapes, characters beyond ASCII) and the local provider's fields through pydantic."""
    joined = TokenJoin(token, role, room_id, user_id, user_name, provider)
    assert joined.json() == joined.info().model_dump_json().encode()


def test_a_100ms_join_says_what_the_browser_needs() -> None:
    joined = TokenJoin("t.o.k", "viewer", "room-1", "viewer-00ff", VIEWER_NAME, {"provider": "hms"})
    body = joined.json()
    assert json.loads(body) == {
        "kind": "token",
        "role": "viewer",
        "room_id": "room-1",
        "user_id": "viewer-00ff",
        "user_name": VIEWER_NAME,
        "token": "t.o.k",
        "room_code": None,
        "token_endpoint": None,
        "provider": "hms",
        "signal_url": None,
        "ice_servers": [],
    }
