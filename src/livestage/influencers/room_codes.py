from __future__ import annotations

import re

# 100ms documents 3-4-3 ("abc-defg-hij"); 3-3-3 codes are also seen in the wild.
ROOM_CODE = re.compile(r"^[a-z]{3}-[a-z]{3,4}-[a-z]{3}$")


class InvalidRoomCode(ValueError):
    pass


def normalize_room_code(raw: str) -> str:
    code = raw.strip().lower()
    if not ROOM_CODE.match(code):
        raise InvalidRoomCode(
            "A room code looks like abc-defg-hij (letters in groups of 3, 4 and 3, "
            "separated by dashes). Copy it from the 100ms dashboard: Rooms → your room → "
            "Join with room code."
        )
    return code
