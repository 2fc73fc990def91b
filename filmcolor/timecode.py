"""Positions in a film as users write them: ``17280f``, ``HH:MM:SS.fff``, ``MM:SS`` or seconds.

Shared by previews (``--start``/``--end``) and guidance (``--reference still.jpg@T``).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from filmcolor.errors import ConfigError

_TIMECODE = re.compile(r"^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d*)?)$")


def is_position(text: str) -> bool:
    """Whether ``text`` has the form of a position (whatever the film's rate)."""
    try:
        parse_position(text, Fraction(1))
    except ConfigError:
        return False
    return True


def parse_position(text: str, rate: Fraction, option: str = "--start") -> int:
    """Frame index of a position: ``17280f``, or a time ``HH:MM:SS(.fff)``, ``MM:SS`` or seconds.

    A time maps to the first frame that starts at or after it (at the average ``rate``).

    Raises:
        ConfigError: malformed (one line naming the option and the accepted forms).
    """
    t = text.strip()
    if t.endswith("f") and t[:-1].isdigit():
        return int(t[:-1])
    m = _TIMECODE.match(t)
    if not m or (m.group(1) is not None and int(m.group(2)) >= 60) or (
        m.group(2) is not None and float(m.group(3)) >= 60
    ):
        raise ConfigError(
            f"{option} {text!r} is not a position: use HH:MM:SS.fff, MM:SS, seconds, "
            "or a frame number like 17280f"
        )
    hours, minutes, seconds = m.group(1), m.group(2), m.group(3)
    total = Fraction(seconds) + 60 * int(minutes or 0) + 3600 * int(hours or 0)
    return math.ceil(total * rate)


def format_timecode(seconds: float) -> str:
    """``HH:MM:SS.fff`` (what :func:`parse_position` reads back)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"
