"""Describe a source before any work starts: :func:`probe` -> :class:`SourceInfo`.

Videos are read with PyAV: the container gives rate, time base, duration and the audio/subtitle
streams; the first decoded frame gives what only the decoder knows reliably (pixel format, colour
range and the display-matrix rotation, which PyAV 18 exposes on frames but not on streams).
Stills are read with OpenCV, which also applies EXIF orientation, so they report rotation 0.

Every failure is a :class:`~filmcolor.errors.SourceOpenError` with one line that says what to do.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from filmcolor.config import is_own_output
from filmcolor.errors import SourceOpenError
from filmcolor.io.containers import IMAGE_SUFFIXES, StrPath, is_image_path

logger = logging.getLogger("filmcolor")

# FFmpeg's AVColorRange values (libavutil/pixfmt.h).
_RANGE_NAMES: dict[int, Literal["tv", "pc"]] = {1: "tv", 2: "pc"}


@dataclass(frozen=True)
class StreamInfo:
    """One audio or subtitle stream of the source (copied, never decoded).

    Attributes:
        index: the stream's index in the container (what ``-map 1:<index>`` selects).
        codec: FFmpeg codec name, e.g. ``"aac"``, ``"subrip"``, ``"hdmv_pgs_subtitle"``.
        language: ISO 639 tag from the stream metadata, if any.
    """

    index: int
    codec: str
    language: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    """What filmcolor needs to know about an input video or image.

    Attributes:
        path: the source file.
        kind: ``"video"`` or ``"image"``.
        width: coded width in pixels (before rotation is applied by a player).
        height: coded height in pixels.
        time_base: unit of the video stream's ``pts`` (``None`` for images).
        frame_rate: average frame rate from the container, ``None`` when unknown.
        duration: video duration in seconds (the stream's, else the container's), or ``None``.
        frame_count: frames according to the container header, ``None`` when it does not say.
        rotation: display rotation in degrees counter-clockwise, normalised to 0, 90, 180 or 270
            (any angle in ``[0, 360)`` for odd matrices).
        sample_aspect_ratio: pixel aspect ratio, ``None`` when unset (square pixels).
        pix_fmt: FFmpeg pixel format name of the decoded frames, e.g. ``"yuv420p10le"``.
        bit_depth: bits per luma sample (8, 10, 12, 16).
        color_range: ``"tv"`` (limited), ``"pc"`` (full) or ``"unknown"`` (untagged).
        codec: FFmpeg name of the video codec (``"image"`` for stills).
        stream_index: container index of the video stream that is decoded.
        audio_streams: every audio stream, in container order.
        subtitle_streams: every subtitle stream, in container order.
    """

    path: Path
    kind: Literal["video", "image"]
    width: int
    height: int
    time_base: Fraction | None = None
    frame_rate: Fraction | None = None
    duration: float | None = None
    frame_count: int | None = None
    rotation: int = 0
    sample_aspect_ratio: Fraction | None = None
    pix_fmt: str | None = None
    bit_depth: int = 8
    color_range: Literal["tv", "pc", "unknown"] = "unknown"
    codec: str = ""
    stream_index: int = 0
    audio_streams: tuple[StreamInfo, ...] = field(default_factory=tuple)
    subtitle_streams: tuple[StreamInfo, ...] = field(default_factory=tuple)

    @property
    def frame_duration(self) -> float | None:
        """Seconds per frame at the average rate, ``None`` when the rate is unknown."""
        return float(1 / self.frame_rate) if self.frame_rate else None


def is_full_range(pix_fmt: str, color_range: int | str | None) -> bool:
    """Whether samples of ``pix_fmt`` span the full code range (``pc``) rather than 16-235 (``tv``).

    Untagged YUV is limited range (FFmpeg's and every player's assumption); the deprecated
    ``yuvj*`` formats are full range by definition; grey and RGB formats are full range unless
    explicitly tagged ``tv`` (libx264 can tag a ``gray`` stream as limited).

    Args:
        pix_fmt: FFmpeg pixel format name.
        color_range: AVColorRange value (0 unspecified, 1 tv, 2 pc) or its name
            (``"tv"``, ``"pc"``, ``"unknown"``).
    """
    tag = (
        _RANGE_NAMES.get(color_range, color_range) if isinstance(color_range, int) else color_range
    )
    if tag == "pc" or pix_fmt.startswith("yuvj"):
        return True
    if tag == "tv":
        return False
    return not pix_fmt.startswith(("yuv", "nv", "p0", "p2", "p4"))


def _check_path(path: Path) -> None:
    if not path.exists():
        raise SourceOpenError(f"no such file: '{path}'")
    if path.is_dir():
        raise SourceOpenError(
            f"'{path}' is a folder: pass a video or image file (folders of images are listed "
            "with list_images)"
        )
    if not os.access(path, os.R_OK):
        raise SourceOpenError(f"cannot read '{path}': permission denied")


def open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV, translating its errors into one-line :class:`SourceOpenError`."""
    _check_path(path)
    try:
        return av.open(str(path), "r")
    except PermissionError as exc:  # av.error.PermissionError subclasses it
        raise SourceOpenError(f"cannot read '{path}': permission denied") from exc
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise SourceOpenError(
            f"cannot open '{path}': not a video or image FFmpeg can read"
        ) from exc


def pick_video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first real video stream: cover art (``attached_pic``) in audio files does not count.

    Raises:
        SourceOpenError: the file has no video stream.
    """
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    what = "it is audio only" if container.streams.audio else "it holds no video"
    raise SourceOpenError(f"'{path}' has no video stream ({what}); pass a video or image file")


def _streams(container: av.container.InputContainer, kind: str) -> tuple[StreamInfo, ...]:
    out = []
    for s in container.streams:
        if s.type != kind:
            continue
        # A codec this FFmpeg build cannot decode has no context name; the stream is still copied.
        name = s.codec_context.name if s.codec_context is not None else "unknown"
        out.append(StreamInfo(index=s.index, codec=name, language=s.language))
    return tuple(out)


def _rate(stream: av.VideoStream) -> Fraction | None:
    rate = stream.average_rate or stream.guessed_rate
    return Fraction(rate) if rate else None


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        # Container duration spans all streams (audio may run longer); it is only a fallback.
        return container.duration / av.time_base
    return None


TEXT_CODECS: frozenset[str] = frozenset({"ansi", "bintext", "xbin", "idf"})
"""FFmpeg "video" decoders that draw a text file (its ``tty`` demuxer opens any ``.txt``): such
a file is not a film."""


def probe_video(path: Path) -> SourceInfo:
    """Probe a video file (see :func:`probe`)."""
    container = open_container(path)
    try:
        stream = pick_video_stream(container, path)
        if stream.codec_context.name in TEXT_CODECS:
            raise SourceOpenError(f"cannot open '{path}': a text file, not a film")
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise SourceOpenError(f"cannot decode the video stream of '{path}': {exc}") from exc
        if first is None:
            raise SourceOpenError(f"the video stream of '{path}' has no decodable frames")
        pix_fmt = first.format.name
        sar = stream.sample_aspect_ratio
        info = SourceInfo(
            path=path,
            kind="video",
            width=first.width,
            height=first.height,
            time_base=Fraction(stream.time_base) if stream.time_base else None,
            frame_rate=_rate(stream),
            duration=_duration(container, stream),
            frame_count=stream.frames or None,
            # frame.rotation is in (-180, 180]; a player applies the same matrix either way.
            rotation=round(first.rotation) % 360,
            sample_aspect_ratio=Fraction(sar) if sar else None,
            pix_fmt=pix_fmt,
            bit_depth=first.format.components[0].bits,
            color_range=_RANGE_NAMES.get(first.color_range, "unknown"),
            codec=stream.codec_context.name,
            stream_index=stream.index,
            audio_streams=_streams(container, "audio"),
            subtitle_streams=_streams(container, "subtitle"),
        )
    finally:
        container.close()
    logger.debug("probed %s: %s", path, info)
    return info


def read_image(path: Path) -> np.ndarray:
    """Read a still as OpenCV does (grey ``(H, W)`` or BGR ``(H, W, 3)``), keeping 16-bit depth.

    ``IMREAD_ANYDEPTH | IMREAD_ANYCOLOR`` keeps 16-bit PNG/TIFF samples and applies EXIF
    orientation (``IMREAD_UNCHANGED`` would ignore it); alpha is dropped.

    Raises:
        SourceOpenError: missing, unreadable or not an image OpenCV can decode.
    """
    _check_path(path)
    img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None or img.size == 0:
        raise SourceOpenError(f"cannot open '{path}': not an image OpenCV can read")
    return img


def _image_pix_fmt(img: np.ndarray) -> tuple[str, int]:
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(img.dtype, 32)
    grey = img.ndim == 2
    if depth == 8:
        return ("gray" if grey else "bgr24"), 8
    if depth == 16:
        return ("gray16le" if grey else "bgr48le"), 16
    return ("grayf32le" if grey else "bgrf32le"), 32


MAX_STILL_PIXELS: int = 400_000_000
"""Largest still filmcolor colours (20000x20000). Colouring takes about 30 bytes of memory per
pixel (the luminance, the upsampled colour and the result at full size), so this is about 12 GB;
a 12000x9000 scan (108 Mpx) peaks near 3 GB."""


def check_still_size(path: Path, width: int, height: int) -> None:
    """Refuse a still larger than :data:`MAX_STILL_PIXELS`, naming the limit.

    Raises:
        SourceOpenError: too large.
    """
    if width * height > MAX_STILL_PIXELS:
        raise SourceOpenError(
            f"'{path.name}' is {width}x{height} ({width * height / 1e6:.0f} Mpx): filmcolor "
            f"colours stills of at most {MAX_STILL_PIXELS / 1e6:.0f} Mpx (about "
            f"{MAX_STILL_PIXELS * 30 / 1e9:.0f} GB of memory); scale it down first"
        )


def probe_image(path: Path) -> SourceInfo:
    """Probe a still image (see :func:`probe`).

    Raises:
        SourceOpenError: unreadable, or larger than :data:`MAX_STILL_PIXELS`.
    """
    img = read_image(path)
    check_still_size(path, img.shape[1], img.shape[0])
    pix_fmt, depth = _image_pix_fmt(img)
    return SourceInfo(
        path=path,
        kind="image",
        width=img.shape[1],
        height=img.shape[0],
        pix_fmt=pix_fmt,
        bit_depth=depth,
        color_range="pc",
        codec="image",
    )


def probe(path: StrPath) -> SourceInfo:
    """Describe a video or still image.

    Args:
        path: source file. Suffixes in :data:`~filmcolor.io.containers.IMAGE_SUFFIXES` are stills;
            anything else is opened with FFmpeg (through PyAV).

    Returns:
        A frozen :class:`SourceInfo`.

    Raises:
        SourceOpenError: no such file, a folder, unreadable, not a video/image, or no video stream.
    """
    p = Path(path)
    return probe_image(p) if is_image_path(p) else probe_video(p)


def _natural_key(path: Path) -> list[int | str]:
    # "frame2.png" before "frame10.png": scanned film reels are numbered without zero padding.
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: StrPath) -> list[Path]:
    """Still images directly inside ``folder``, in natural name order (``2`` before ``10``).

    Hidden files (``.name``, e.g. macOS ``._x.jpg`` resource forks), sub-folders and filmcolor's
    own outputs (``x.colour.png``, a preview's ``x.preview-0-120.png``: an earlier run's results
    are not material to colour again) are skipped.

    Raises:
        SourceOpenError: ``folder`` does not exist or is not a folder.
    """
    p = Path(folder)
    if not p.is_dir():
        raise SourceOpenError(f"no such folder: '{p}'")
    images = [
        f
        for f in p.iterdir()
        if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()
        and not is_own_output(f)
    ]
    return sorted(images, key=_natural_key)
