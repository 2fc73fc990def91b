"""File-name conventions shared by the I/O modules: which suffixes are stills, which muxer to use.

Kept apart from probe/encode/remux because all three need it and none should import another for it.
"""

from __future__ import annotations

import os
from pathlib import Path

StrPath = str | os.PathLike[str]
"""Anything that names a file: ``str`` or a path-like object."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
)
"""Lower-case suffixes treated as still images (read with OpenCV, never with the video demuxer)."""

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".m2ts",
     ".mts", ".wmv", ".flv", ".ogv", ".mxf", ".dv", ".3gp", ".vob", ".nut"}
)
"""Lower-case suffixes a folder of films is searched for (``filmcolor batch``)."""

TEMP_SUFFIXES: frozenset[str] = frozenset({".tmp", ".part", ".partial"})
"""Trailing suffixes ignored when picking a muxer, so ``film.mp4.tmp`` is still written as MP4."""

_MUXERS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".nut": "nut",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
}
"""Output suffix -> FFmpeg muxer name, given explicitly: temporary names must not confuse FFmpeg."""

REFUSED_CONTAINERS: dict[str, str] = {
    ".avi": "AVI has no per-frame timestamps: the H.264 frames (reordered) and variable frame "
            "rates of a film cannot be kept exact in it",
    ".webm": "WebM takes only VP8/VP9/AV1 video and Opus/Vorbis sound, so the film's own sound "
             "could not be copied untouched",
}
"""Containers FFmpeg could write but filmcolor refuses before any work, with the reason: a film
must come out frame-exact with its sound copied, and these cannot promise that."""

MP4_FAMILY: frozenset[str] = frozenset({"mp4", "mov"})
"""Muxers that take only ``mov_text`` subtitles and understand ``-movflags +faststart``."""


def is_image_path(path: StrPath) -> bool:
    """``True`` when ``path`` has a still-image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def muxer_for(path: StrPath) -> str:
    """The FFmpeg muxer for an output path, looking through temporary suffixes.

    Args:
        path: output file name, e.g. ``out.mkv``, ``.out.tmp-42.mp4`` or ``out.mp4.tmp``.

    Returns:
        A muxer name such as ``"mp4"`` or ``"matroska"``.

    Raises:
        ValueError: the suffix names no container filmcolor knows how to write.
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    while suffixes and suffixes[-1] in TEMP_SUFFIXES:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in REFUSED_CONTAINERS:
        raise ValueError(
            f"cannot write '{p.name}': {REFUSED_CONTAINERS[suffix]} "
            f"(use {', '.join(sorted(_MUXERS))})"
        )
    try:
        return _MUXERS[suffix]
    except KeyError:
        known = ", ".join(sorted(_MUXERS))
        raise ValueError(
            f"cannot write '{p.name}': unknown video container (use {known})"
        ) from None
