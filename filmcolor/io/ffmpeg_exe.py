"""Locate the FFmpeg command-line tool used for the final remux.

Decoding and encoding go through PyAV's bundled libraries; only the remux (stream copy of the
source's audio and subtitles) runs the ``ffmpeg`` program.
"""

from __future__ import annotations

import logging
import shutil

from filmcolor.errors import RemuxError

logger = logging.getLogger("filmcolor")


def ffmpeg_exe() -> str:
    """Path of the ``ffmpeg`` executable.

    A system ``ffmpeg`` on ``PATH`` wins (the user may have a build with more muxers); otherwise
    the static binary shipped by ``imageio-ffmpeg`` is used, so a plain ``pip install`` works.

    Raises:
        RemuxError: neither is available.
    """
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # imported lazily: it is only needed when no system FFmpeg exists
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError as exc:  # the package is installed but its binary is missing
            logger.debug("imageio-ffmpeg has no binary: %s", exc)
    raise RemuxError("FFmpeg not found: install ffmpeg on PATH or `pip install imageio-ffmpeg`")
