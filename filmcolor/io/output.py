"""Output paths: checked before any work, written under a temporary name, renamed when complete.

Nothing the user had is overwritten without ``--overwrite``, an unwritable destination fails
before hours of colouring, and an error or Ctrl-C never leaves a half-written file at the output
path (:func:`atomic_output`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2

from filmcolor.config import default_output
from filmcolor.errors import OutputError

logger = logging.getLogger("filmcolor")


def temp_path(final: Path, tag: str = "tmp") -> Path:
    """A hidden sibling of ``final`` with the same suffix (so muxers pick the same container)."""
    return final.with_name(f".{final.stem}.{tag}-{os.getpid()}{final.suffix}")


def check_output(out: Path, overwrite: bool, is_dir: bool = False) -> None:
    """Refuse to overwrite, and fail early on a destination that cannot be written.

    Writability is tested by creating (and removing) a scratch file in the folder: permission
    bits say nothing about read-only mounts or pseudo file systems, and hours of colouring must
    not end in a failed rename.

    Raises:
        OutputError: exists without ``overwrite``, or its folder is missing/unwritable.
    """
    if out.exists() and not overwrite and not is_dir:
        raise OutputError(f"output exists: {out} (use --overwrite to replace it)")
    if is_dir and out.exists() and not out.is_dir():
        raise OutputError(f"output folder is a file: {out}")
    parent = out if is_dir and out.exists() else out.parent
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".filmcolor-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to {parent}: {exc.strerror or exc}") from None


def check_image_output(out: Path) -> None:
    """Refuse an image output whose suffix OpenCV cannot write (before any colouring).

    Raises:
        OutputError: not an image suffix, or no writer for it in this OpenCV build.
    """
    from filmcolor.io.containers import IMAGE_SUFFIXES

    if out.suffix.lower() not in IMAGE_SUFFIXES or not cv2.haveImageWriter(str(out)):
        known = ", ".join(sorted(IMAGE_SUFFIXES))
        raise OutputError(f"cannot write image '{out.name}': unknown image format (use {known})")


def choose_video_output(src: Path, info, output: str | None) -> Path:
    """The output path of a video run, checked against what the source carries.

    The default is ``<stem>.colour.mp4``, or ``.mkv`` when MP4 could not take every audio and
    subtitle stream of the source as it is (bitmap subtitles, some PCM audio on older FFmpeg, or
    text subtitles MP4 would convert): nothing the film had is lost by default. An explicit
    MP4/MOV output that cannot hold a stream is refused now, not after hours of colouring.

    Raises:
        OutputError: the suffix names no video container filmcolor writes, or the container
            cannot hold one of the source's streams.
    """
    from filmcolor.errors import RemuxError
    from filmcolor.io.remux import ffmpeg_exe, unfit_streams

    out = Path(output) if output else default_output(src, info.kind)
    try:
        unfit = unfit_streams(info, out, ffmpeg_exe())
    except RemuxError as exc:
        raise OutputError(str(exc)) from None
    if not output and unfit:
        mkv = out.with_suffix(".mkv")
        logger.info("writing %s: MP4 cannot keep %s as it is",
                    mkv.name, ", ".join(unfit.refused + unfit.converted))
        return mkv
    if unfit.refused:
        raise OutputError(
            f"'{out.name}' cannot hold the source's {', '.join(unfit.refused)}: "
            f"use an .mkv output (-o {out.with_suffix('.mkv').name})"
        )
    return out


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``final`` on success, delete it on any failure."""
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_image(path: Path, rgb) -> None:
    """Write a uint8 RGB image atomically (the format from ``path``'s suffix).

    Raises:
        OutputError: OpenCV cannot write it.
    """
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"cannot write image {path}")
