"""Shared pytest configuration and fixtures.

Sections (add new fixtures to the matching one, or start a new section):
    1. Environment: set before filmcolor is imported.
    2. Log policy: a test that logs at ERROR fails unless it opts in.
    3. Media: small clips generated once per session with :mod:`tests.media` (PyAV, no network,
       no shared data). Each is a :class:`tests.media.Clip` (path + the facts it was built with).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

# -- 1. Environment -------------------------------------------------------------------------------
# Library errors re-raise with a traceback instead of the CLI's one-line exit (see __main__).
os.environ.setdefault("FILMCOLOR_DEBUG", "1")

from tests.media import (  # after the environment is set
    Clip,
    add_subtitles,
    make_clip,
    make_image,
    rotate_with_ffmpeg,
)


# -- 2. Log policy ---------------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_error_logs: the test is expected to log at ERROR level"
    )


@pytest.fixture(autouse=True)
def no_logs_gte_error(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fail any test that logged at ERROR or above (errors must be raised, not just logged)."""
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    bad = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if bad:
        pytest.fail("logged at ERROR: " + "; ".join(r.getMessage() for r in bad))


# -- 3. Media --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One session folder for generated media."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_ntsc(media_dir: Path) -> Clip:
    """24000/1001 fps, 160x120, 48 frames, cuts at 16 and 32, AAC tone track (mp4, libx264)."""
    return make_clip(media_dir / "ntsc.mp4")


@pytest.fixture(scope="session")
def clip_vfr(media_dir: Path) -> Clip:
    """Variable frame rate: irregular pts (durations of 1, 2 and 3 frame periods), with audio."""
    return make_clip(media_dir / "vfr.mp4", n_frames=32, cuts=(12,), vfr=True)


@pytest.fixture(scope="session")
def clip_odd(media_dir: Path) -> Clip:
    """Odd size 322x179 (yuv444p, as libx264 cannot store odd 4:2:0) with a 4:3 pixel aspect."""
    return make_clip(
        media_dir / "odd.mp4",
        width=322,
        height=179,
        n_frames=8,
        cuts=(4,),
        pix_fmt="yuv444p",
        sar=Fraction(4, 3),
    )


@pytest.fixture(scope="session")
def clip_rotated(media_dir: Path, clip_ntsc: Clip) -> Clip:
    """``clip_ntsc`` stream-copied with ``ffmpeg -display_rotation 90`` (a phone video)."""
    dst = rotate_with_ffmpeg(clip_ntsc.path, media_dir / "rot90.mp4", 90)
    return Clip(**{**clip_ntsc.__dict__, "path": dst})


@pytest.fixture(scope="session")
def clip_10bit(media_dir: Path) -> Clip:
    """yuv420p10le H.264, lossless (qp 0), so decoded luma equals :meth:`Clip.luma` exactly."""
    return make_clip(
        media_dir / "10bit.mp4",
        n_frames=6,
        cuts=(3,),
        pix_fmt="yuv420p10le",
        options={"qp": "0"},
    )


@pytest.fixture(scope="session")
def clip_subtitled(media_dir: Path, clip_ntsc: Clip) -> Clip:
    """``clip_ntsc`` in Matroska with an added SRT subtitle stream (stream index 2)."""
    dst = add_subtitles(clip_ntsc.path, media_dir / "subtitled.mkv")
    return Clip(**{**clip_ntsc.__dict__, "path": dst})


@pytest.fixture(scope="session")
def image_png(media_dir: Path) -> Path:
    """An 8-bit grey PNG, 96x64."""
    path = media_dir / "still.png"
    make_image(path)
    return path


@pytest.fixture(scope="session")
def image_png16(media_dir: Path) -> Path:
    """A 16-bit grey PNG, 96x64."""
    path = media_dir / "still16.png"
    make_image(path, bit_depth=16)
    return path
