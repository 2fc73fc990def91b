"""Write coloured frames to a video-only file, keeping every source timestamp.

Output frames are assembled plane by plane, with no RGB round trip: Y comes from the source luma
(``16 + 219 * luma``, limited range, so an 8-bit limited-range source's Y passes through
unchanged) and Cb/Cr from ``frame.extra["cbcr"]`` (``128 + 224 * c``). The stream is tagged
BT.601 / limited range so players undo exactly that matrix.

Timing: the output stream uses the source's ``time_base`` and each frame keeps its source ``pts``,
so variable-frame-rate and 24000/1001 sources stay frame-exact against the original audio. The
encoder is only told the average rate for its rate control; no frame is dropped or duplicated.

Repeatable output: libx264 (as bundled with PyAV) reads some heap memory it never initialises,
so identical frames encoded after other work (torch convolutions) gave different bitstreams, and a
resumed job's redone chunks would differ from an uninterrupted run (#4). Every call into the
encoder therefore runs with glibc's ``M_PERTURB`` set (:func:`repeatable_heap`): memory allocated
meanwhile is filled with a constant. Scoped to the encoder calls it costs almost nothing; set for
a whole run it slowed the CPU pipeline by about a fifth (every numpy temporary was filled twice).

Intermediate container: write ``.mp4``. It stores the source time base exactly (1/24000,
1/90000...) and holds every codec offered here (H.264, HEVC, FFV1, AV1, VP9). Matroska rounds
timestamps to 1 ms, which moves 24000/1001 frames by up to half a millisecond.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from filmcolor.errors import EncodeError
from filmcolor.frames import DURATION, Frame
from filmcolor.io.containers import StrPath, muxer_for
from filmcolor.io.probe import SourceInfo

logger = logging.getLogger("filmcolor")

# The run settings' defaults (--codec, --crf, --preset) are declared on RunConfig
# (filmcolor.config); these are the encoder's own, for library callers. They cannot import
# filmcolor.config (a higher layer), and config does not import this module (it loads av and
# cv2, and config must stay light for `--help`), so tests/test_settings.py keeps the two equal.
DEFAULT_CODEC: str = "libx264"
"""Encoder used when none is named: plays everywhere. Equals ``RunConfig.codec``'s default."""

DEFAULT_CRF: int = 18
"""Visually transparent for x264/x265; the luma is the film's own, so it deserves the bits.
Equals ``RunConfig.crf``'s default."""

DEFAULT_PRESET: str = "medium"
"""x264/x265 speed preset. Equals ``RunConfig.preset``'s default."""

# FFmpeg enum values (libavutil/pixfmt.h): AVCOL_SPC_SMPTE170M (BT.601 525) and AVCOL_RANGE_MPEG.
_COLORSPACE_BT601 = 6
_RANGE_LIMITED = 1

M_PERTURB: int = -6
"""glibc ``mallopt`` parameter: fill newly allocated and freed heap memory with a byte."""


def _load_mallopt():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt
    except (OSError, AttributeError):
        return None


_MALLOPT = _load_mallopt()
_PERTURB_LOCK = threading.Lock()
_perturb_depth = 0


@contextlib.contextmanager
def repeatable_heap() -> Iterator[None]:
    """Fill heap memory allocated inside the block with a constant, so libx264's output depends
    only on its input.

    Measured with PyAV's bundled libx264: without it, jobs interrupted and resumed in another
    process gave H.264 chunks that differ from an uninterrupted run's (the encoder reads memory
    it never initialised, whose contents depend on what ran before); with it around every encoder
    call, they are identical. Re-entrant and thread-safe (the setting is process-wide, so it is
    switched off only when the last user leaves). A no-op where glibc's ``mallopt`` is missing
    (non-glibc systems): there, redone H.264 chunks may differ by encoder noise.
    """
    global _perturb_depth
    if _MALLOPT is None:
        yield
        return
    with _PERTURB_LOCK:
        if _perturb_depth == 0:
            _MALLOPT(M_PERTURB, 0xA5)
        _perturb_depth += 1
    try:
        yield
    finally:
        with _PERTURB_LOCK:
            _perturb_depth -= 1
            if _perturb_depth == 0:
                _MALLOPT(M_PERTURB, 0)


# Planar YUV formats this module can fill: 4:2:0 / 4:2:2 / 4:4:4, 8 to 16 bits, little-endian.
_WRITABLE = re.compile(r"^yuv(420|422|444)p(?:(9|10|12|14|16)le)?$")

# Which generic knobs each encoder understands. Encoders not listed get neither (ffv1 is
# lossless; mpeg4 has no CRF); extra options can still be passed through ``options``.
_CRF_CODECS = frozenset({"libx264", "libx265", "libsvtav1", "libvpx-vp9", "libaom-av1", "libvvenc"})
_PRESET_CODECS = frozenset({"libx264", "libx265", "libvvenc"})
# These use CRF only in "constant quality" mode, which needs the target bitrate set to 0.
_CRF_NEEDS_ZERO_BITRATE = frozenset({"libvpx-vp9", "libaom-av1"})


@dataclass(frozen=True)
class EncodeStats:
    """What :func:`encode` wrote.

    Attributes:
        path: the output file.
        frames: frames written (one per input frame).
        codec: encoder name.
        pix_fmt: pixel format actually encoded (may differ from the request for odd sizes).
        width: frame width.
        height: frame height.
        time_base: time base of ``first_pts``/``last_pts`` (the source's).
        first_pts: pts of the first frame.
        last_pts: pts of the last frame.
        duration: seconds from the first frame's start to the last frame's end.
    """

    path: Path
    frames: int
    codec: str
    pix_fmt: str
    width: int
    height: int
    time_base: Fraction
    first_pts: int | None
    last_pts: int | None
    duration: float


def _yuv_layout(pix_fmt: str) -> tuple[str, int] | None:
    """``(subsampling, bits)`` for a writable planar YUV format, else ``None``."""
    m = _WRITABLE.match(pix_fmt)
    return (m.group(1), int(m.group(2) or 8)) if m else None


def choose_pix_fmt(
    codec: str, requested: str | None, width: int, height: int, source_bits: int = 8
) -> str:
    """Pick the pixel format to encode, keeping the exact frame size.

    With no request, 8-bit sources get ``yuv420p`` and deeper sources ``yuv420p10le`` (when the
    encoder supports it), so a 10-bit scan keeps its precision. Chroma-subsampled formats need
    even dimensions in most encoders (libx264 refuses 4:2:0 at 322x179), and cropping or padding
    would break the "same size as the source" promise, so odd sizes are promoted to 4:4:4 with a
    warning.

    Raises:
        EncodeError: the encoder is unknown, is not a video encoder, or cannot take the format.
    """
    try:
        enc = av.Codec(codec, "w")
    except Exception as exc:  # UnknownCodecError and friends
        raise EncodeError(
            f"unknown encoder '{codec}': use an FFmpeg video encoder such as libx264, libx265 "
            "or ffv1"
        ) from exc
    if enc.type != "video":
        raise EncodeError(f"'{codec}' is a {enc.type} encoder, not a video encoder")
    supported = [f.name for f in enc.video_formats or []]
    if requested:
        fmt = requested
    elif source_bits > 8 and "yuv420p10le" in supported:
        fmt = "yuv420p10le"
    else:
        fmt = "yuv420p"
    layout = _yuv_layout(fmt)
    if layout is None:
        raise EncodeError(
            f"cannot write pixel format '{fmt}': use a planar YUV format such as yuv420p, "
            "yuv444p or yuv420p10le"
        )
    sub, _ = layout
    odd_w, odd_h = width % 2 == 1, height % 2 == 1
    if (sub in ("420", "422") and odd_w) or (sub == "420" and odd_h):
        promoted = fmt.replace(sub, "444", 1)
        logger.warning(
            "frame size %dx%d is odd: encoding %s instead of %s to keep the exact size "
            "(some players cannot show 4:4:4 H.264; use an even-sized source for those)",
            width,
            height,
            promoted,
            fmt,
        )
        fmt = promoted
    if supported and fmt not in supported:
        raise EncodeError(
            f"encoder '{codec}' cannot encode {fmt} at {width}x{height}: "
            f"it supports {', '.join(supported[:8])}; choose another --codec or pix_fmt"
        )
    return fmt


def codec_options(
    codec: str, crf: int | None, preset: str | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Encoder options: ``crf``/``preset`` only where the encoder has them, then ``extra``."""
    opts: dict[str, str] = {}
    if crf is not None and codec in _CRF_CODECS:
        opts["crf"] = str(crf)
        if codec in _CRF_NEEDS_ZERO_BITRATE:
            opts["b"] = "0"
    if preset and codec in _PRESET_CODECS:
        opts["preset"] = preset
    if codec == "libx265":
        opts["x265-params"] = "log-level=error"  # x265 prints a banner per stream to stderr
    opts.update(extra or {})
    return opts


def _plane(plane: av.video.plane.VideoPlane, dtype: np.dtype) -> np.ndarray:
    """Writable ``(h, w)`` view of a frame plane, hiding the row padding."""
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : plane.width]


class VideoEncoder:
    """Encode :class:`Frame` objects (luma + ``extra["cbcr"]``) into a video-only file.

    Use as a context manager::

        with VideoEncoder(tmp, info) as enc:
            for frame in frames:
                enc.write(frame)
        stats = enc.stats

    Args:
        path: output file; the container follows the suffix (``.mp4`` recommended, see module doc;
            ``name.mp4.tmp`` counts as MP4).
        info: the source's :class:`SourceInfo` (size, time base, rate, aspect ratio, bit depth).
        codec: any FFmpeg video encoder PyAV provides (``libx264``, ``libx265``, ``ffv1``...).
        crf: constant-quality level, passed only to encoders that have one.
        preset: speed preset, passed only to encoders that have one.
        pix_fmt: planar YUV output format; default by source depth (see :func:`choose_pix_fmt`).
        options: extra encoder options (strings), applied last.

    Raises:
        EncodeError: on any encoder or muxer failure, with one line.
    """

    def __init__(
        self,
        path: StrPath,
        info: SourceInfo,
        codec: str = DEFAULT_CODEC,
        crf: int | None = DEFAULT_CRF,
        preset: str | None = DEFAULT_PRESET,
        pix_fmt: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = info
        self.codec = codec
        self.width, self.height = info.width, info.height
        self.pix_fmt = choose_pix_fmt(codec, pix_fmt, info.width, info.height, info.bit_depth)
        sub_bits = _yuv_layout(self.pix_fmt)
        assert sub_bits is not None  # choose_pix_fmt only returns writable formats
        self._bits = sub_bits[1]
        self._dtype = np.dtype(np.uint8) if self._bits <= 8 else np.dtype("<u2")
        self.time_base = info.time_base or Fraction(1, 25)
        self._options = codec_options(codec, crf, preset, options)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._count = 0
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._last_step = self._default_step()
        self._next_pts: dict[int, int] = {}  # a frame's pts -> the next frame's
        self._last_duration: int | None = None  # the last frame's, as its source gave it
        self._held: collections.deque = collections.deque()  # packets waiting for a duration
        self.stats: EncodeStats | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> VideoEncoder:  # noqa: PYI034 - not meant to be subclassed
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def open(self) -> None:
        """Create the file and set up the stream (called by ``__enter__``)."""
        with repeatable_heap():
            self._open()

    def _open(self) -> None:
        try:
            fmt = muxer_for(self.path)
        except ValueError as exc:
            raise EncodeError(str(exc)) from None
        # PyAV creates the file only when the header is written (first frame); check the folder
        # now so a bad path fails before any decoding or model work.
        folder = self.path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise EncodeError(f"cannot create '{self.path}': folder missing or not writable")
        try:
            self._container = av.open(str(self.path), "w", format=fmt)
        except av.FFmpegError as exc:
            raise EncodeError(f"cannot create '{self.path}': {exc}") from exc
        try:
            rate = self.info.frame_rate
            stream = self._container.add_stream(self.codec, rate=rate, options=self._options)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.pix_fmt
            # Source time base on both the codec and the stream: pts are copied verbatim and
            # MP4 keeps the time base as its track timescale, so nothing is rounded.
            stream.codec_context.time_base = self.time_base
            stream.time_base = self.time_base
            if rate:
                stream.codec_context.framerate = rate  # for rate control only; pts decide timing
            cc = stream.codec_context
            cc.colorspace = _COLORSPACE_BT601
            cc.color_range = _RANGE_LIMITED
            sar = self.info.sample_aspect_ratio
            if sar:
                cc.sample_aspect_ratio = sar
                stream.sample_aspect_ratio = sar
            self._stream = stream
        except (av.FFmpegError, ValueError, TypeError) as exc:
            self._abort()
            raise EncodeError(
                f"cannot set up encoder '{self.codec}' for '{self.path}': {exc}"
            ) from exc
        logger.debug(
            "encoding %s: %s %s %dx%d tb=%s rate=%s options=%s",
            self.path,
            self.codec,
            self.pix_fmt,
            self.width,
            self.height,
            self.time_base,
            self.info.frame_rate,
            self._options,
        )

    def close(self) -> EncodeStats:
        """Flush the encoder, finish the file and return :attr:`stats`.

        Raises:
            EncodeError: nothing was written, or the flush/mux failed.
        """
        if self.stats is not None:
            return self.stats
        if self._stream is None or self._container is None:
            raise EncodeError("encoder is not open")
        with repeatable_heap():
            return self._close()

    def _close(self) -> EncodeStats:
        assert self._stream is not None and self._container is not None
        try:
            if self._count == 0:
                raise EncodeError(f"no frames to encode into '{self.path}'")
            # No argument = flush: drains the frames the encoder still holds (B-frame lookahead).
            for packet in self._stream.encode():
                self._hold(packet)
            # The last frame lasts as its source says (else as the interval before it), as
            # EncodeStats says.
            assert self._last_pts is not None
            self._next_pts[self._last_pts] = self._last_pts + self._final_step()
            self._release(final=True)
            self._container.close()
        except av.FFmpegError as exc:
            self._abort()
            raise EncodeError(f"finishing '{self.path}' failed: {exc}") from exc
        except EncodeError:
            self._abort()
            raise
        self._container = None
        assert self._first_pts is not None and self._last_pts is not None
        end = self._last_pts + self._final_step()
        self.stats = EncodeStats(
            path=self.path,
            frames=self._count,
            codec=self.codec,
            pix_fmt=self.pix_fmt,
            width=self.width,
            height=self.height,
            time_base=self.time_base,
            first_pts=self._first_pts,
            last_pts=self._last_pts,
            duration=float((end - self._first_pts) * self.time_base),
        )
        logger.debug("encoded %s", self.stats)
        return self.stats

    def _abort(self) -> None:
        """Close the file without flushing (the caller deletes the temporary output)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # noqa: BLE001 - already failing; keep the first error
                logger.debug("closing %s after an error: %s", self.path, exc)
            self._container = None

    # -- frames ------------------------------------------------------------------------------
    def _default_step(self) -> int:
        rate = self.info.frame_rate
        return max(1, round(1 / (rate * self.time_base))) if rate else 1

    def _pts(self, frame: Frame) -> int:
        """The frame's pts in the output time base (synthesised only for frames without one)."""
        if frame.pts is None:
            return 0 if self._last_pts is None else self._last_pts + self._last_step
        pts = frame.pts
        if frame.time_base is not None and Fraction(frame.time_base) != self.time_base:
            pts = round(pts * Fraction(frame.time_base) / self.time_base)
        return pts

    def build_frame(self, frame: Frame) -> av.VideoFrame:
        """The output :class:`av.VideoFrame` for ``frame`` (Y from luma, Cb/Cr from extra)."""
        luma = frame.luma
        if luma.shape != (self.height, self.width):
            raise EncodeError(
                f"frame {frame.index} is {luma.shape[1]}x{luma.shape[0]} but the stream is "
                f"{self.width}x{self.height}"
            )
        vf = av.VideoFrame(self.width, self.height, self.pix_fmt)
        shift = self._bits - 8
        top = float((1 << self._bits) - 1)
        y = np.clip(luma, 0.0, 1.0) * np.float32(219 << shift) + np.float32(16 << shift)
        _plane(vf.planes[0], self._dtype)[:] = np.rint(y)
        cb_plane = _plane(vf.planes[1], self._dtype)
        cr_plane = _plane(vf.planes[2], self._dtype)
        cbcr = frame.extra.get("cbcr")
        if cbcr is None:
            # Grey frame (tests, or a frame the model skipped on purpose): neutral chroma.
            cb_plane[:] = 128 << shift
            cr_plane[:] = 128 << shift
        else:
            cbcr = self._fit_chroma(np.asarray(cbcr, dtype=np.float32), cb_plane.shape, frame.index)
            c = cbcr * np.float32(224 << shift) + np.float32(128 << shift)
            np.clip(c, 0.0, top, out=c)
            cb_plane[:] = np.rint(c[0])
            cr_plane[:] = np.rint(c[1])
        vf.colorspace = _COLORSPACE_BT601
        vf.color_range = _RANGE_LIMITED
        return vf

    @staticmethod
    def _fit_chroma(cbcr: np.ndarray, size: tuple[int, int], index: int) -> np.ndarray:
        if cbcr.ndim != 3 or cbcr.shape[0] != 2:
            raise EncodeError(
                f"frame {index}: extra['cbcr'] must have shape (2, h, w), got {cbcr.shape}"
            )
        if cbcr.shape[1:] == size:
            return cbcr
        h, w = size
        # cv2 resizes (h, w, channels) arrays; both planes in one call.
        hwc = cv2.resize(np.moveaxis(cbcr, 0, -1), (w, h), interpolation=cv2.INTER_LINEAR)
        return np.moveaxis(hwc, -1, 0)

    def write(self, frame: Frame) -> None:
        """Encode one frame (its pts must be greater than the previous frame's).

        Raises:
            EncodeError: wrong size, timestamps not increasing, or an encoder/muxer failure.
        """
        if self._stream is None or self._container is None:
            raise EncodeError("encoder is not open")
        pts = self._pts(frame)
        if self._last_pts is not None and pts <= self._last_pts:
            # Encoders reject this anyway, with a cryptic message; a reordering bug upstream
            # would otherwise desynchronise audio silently in a lenient muxer.
            raise EncodeError(
                f"frame {frame.index} has pts {pts} <= previous {self._last_pts}: "
                "timestamps must increase"
            )
        vf = self.build_frame(frame)
        vf.pts = pts
        vf.time_base = self.time_base
        if self._last_pts is not None:
            self._next_pts[self._last_pts] = pts
        try:
            with repeatable_heap():
                for packet in self._stream.encode(vf):
                    self._hold(packet)
                self._release()
        except av.FFmpegError as exc:
            raise EncodeError(
                f"encoding frame {frame.index} into '{self.path}' failed: {exc}"
            ) from exc
        if self._last_pts is not None:
            self._last_step = pts - self._last_pts
        if self._first_pts is None:
            self._first_pts = pts
        self._last_pts = pts
        duration = frame.extra.get(DURATION)
        if isinstance(duration, int) and duration > 0:
            if frame.time_base is not None and Fraction(frame.time_base) != self.time_base:
                duration = max(1, round(duration * Fraction(frame.time_base) / self.time_base))
            self._last_duration = duration
        else:
            self._last_duration = None
        self._count += 1


    def _final_step(self) -> int:
        """The last frame's duration: its source's when known (a variable-frame-rate film may
        end on a frame of any length), else the interval before it."""
        return self._last_duration or self._last_step

    # -- packet durations ---------------------------------------------------------------------
    # Each packet is muxed with its frame's real duration (the step to the next frame's pts), so
    # that every container ends the film where EncodeStats says: left to itself a muxer gives
    # the last frame one nominal period, which for a variable-frame-rate film is not its length.
    # A packet waits here until the next frame's pts is known (at once for encoders with a
    # lookahead; one frame later for intra-only ones); packets keep their order.
    def _hold(self, packet: av.Packet) -> None:
        self._held.append(packet)

    def _release(self, final: bool = False) -> None:
        assert self._container is not None
        while self._held:
            packet = self._held[0]
            step = self._next_pts.get(packet.pts) if packet.pts is not None else None
            if step is None and not final:
                return
            self._held.popleft()
            if step is not None:
                packet.duration = step - packet.pts
                del self._next_pts[packet.pts]
            self._container.mux(packet)


def encode(
    frames: Iterable[Frame],
    path: StrPath,
    info: SourceInfo,
    codec: str = DEFAULT_CODEC,
    crf: int | None = DEFAULT_CRF,
    preset: str | None = DEFAULT_PRESET,
    pix_fmt: str | None = None,
    options: Mapping[str, str] | None = None,
) -> EncodeStats:
    """Encode ``frames`` into a video-only file at ``path`` (the sink of the pipeline).

    Pulls every frame through the chain, one at a time. See :class:`VideoEncoder` for the
    arguments; frames without ``extra["cbcr"]`` are encoded grey.

    Returns:
        :class:`EncodeStats`: frame count and exact duration, for
        :func:`~filmcolor.io.remux.verify_output`.

    Raises:
        EncodeError: no frames, or the encoder/muxer failed.
    """
    with VideoEncoder(path, info, codec, crf, preset, pix_fmt, options) as enc:
        for frame in frames:
            enc.write(frame)
    assert enc.stats is not None
    return enc.stats
