"""Decode a video (or still) into :class:`~filmcolor.frames.Frame` objects carrying luminance only.

:func:`decode` demuxes and decodes with PyAV in one bounded background thread, so decoding overlaps
with the model on the consumer's side while memory stays bounded by the queue (``prefetch``
frames). The thread is always stopped and joined when the consumer finishes, fails, or simply
drops the generator.

Luminance is read straight from the decoded Y plane where there is one (no colour conversion, so
an 8-bit limited-range source comes back bit-exact from the encoder); colour sources of other
formats are reduced to BT.601 luma.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from filmcolor.errors import DecodeError, FilmcolorError
from filmcolor.frames import DURATION, Frame
from filmcolor.io.containers import StrPath, is_image_path
from filmcolor.io.probe import is_full_range, open_container, pick_video_stream, read_image

logger = logging.getLogger("filmcolor")

DEFAULT_PREFETCH: int = 8
"""Frames decoded ahead of the consumer. Bounds memory: a 4K float32 luma frame is 33 MB."""

THREAD_NAME: str = "filmcolor-decode"
"""Name of the decode thread (tests look for it to prove it never outlives its generator)."""

BT601: tuple[float, float, float] = (0.299, 0.587, 0.114)
"""R, G, B luma weights used to reduce colour sources to grey."""

_POLL_S: float = 0.1
"""How often a blocked queue operation re-checks the stop event, in seconds."""

# Formats whose plane 0 is the luma plane with samples stored LSB-aligned, one per element.
# (P010-style formats keep 10 bits in the high bits of 16 and go through the RGB fallback.)
_DIRECT_Y = re.compile(
    r"^(?:yuvj?a?\d{3}p(?:\d+(?:le|be))?|gray(?:\d+(?:le|be))?|nv(?:12|21|16|24|42))$"
)


def luma_from_plane(frame: av.VideoFrame) -> np.ndarray | None:
    """Luma of a planar-YUV or grey frame read directly from plane 0, or ``None`` for other formats.

    Limited range maps code ``16 << (bits - 8)`` to 0 and ``235 << (bits - 8)`` to 1 (for 10 bit:
    64 and 940); full range maps 0 to 0 and ``2**bits - 1`` to 1. Out-of-range codes (super-white
    and super-black) are clipped to [0, 1].
    """
    fmt = frame.format
    if not _DIRECT_Y.match(fmt.name):
        return None
    bits = fmt.components[0].bits
    plane = frame.planes[0]
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype(">u2" if fmt.is_big_endian else "<u2")
    # Rows are padded to line_size bytes; slice the visible width out of each row.
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    y = rows[:, : plane.width].astype(np.float32)
    if is_full_range(fmt.name, frame.color_range):
        y *= 1.0 / ((1 << bits) - 1)
    else:
        scale = 1 << (bits - 8)
        y -= 16.0 * scale
        y *= 1.0 / (219.0 * scale)
    np.clip(y, 0.0, 1.0, out=y)
    return y


def luma_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB array ``(H, W, 3)`` (uint8, uint16 or float in [0, 1]) as float32."""
    if rgb.dtype == np.uint8:
        scale = 1.0 / 255.0
    elif rgb.dtype == np.uint16:
        scale = 1.0 / 65535.0
    else:
        scale = 1.0
    r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
    y = (BT601[0] * r + BT601[1] * g + BT601[2] * b) * np.float32(scale)
    return np.clip(y, 0.0, 1.0, out=y)


def frame_luma(frame: av.VideoFrame) -> np.ndarray:
    """Full-resolution luma of a decoded PyAV frame: float32 ``(H, W)`` in [0, 1], 0 = black."""
    y = luma_from_plane(frame)
    if y is not None:
        return y
    # Anything else (RGB, palette, P010, Bayer...): let swscale produce RGB, then reduce it.
    deep = frame.format.components[0].bits > 8
    rgb = frame.to_ndarray(format="rgb48le" if deep else "rgb24")
    return luma_from_rgb(rgb)


def decode_image(path: StrPath) -> Frame:
    """Decode a still image into a single :class:`Frame` (index 0, no timestamp).

    8- and 16-bit PNG/TIFF keep their precision; colour images are reduced to BT.601 luma.

    Raises:
        SourceOpenError: missing or unreadable image.
    """
    p = Path(path)
    img = read_image(p)
    if img.ndim == 2:
        if img.dtype == np.uint8:
            luma = img.astype(np.float32) * np.float32(1.0 / 255.0)
        elif img.dtype == np.uint16:
            luma = img.astype(np.float32) * np.float32(1.0 / 65535.0)
        else:
            luma = np.clip(img.astype(np.float32), 0.0, 1.0)
    else:
        luma = luma_from_rgb(img[..., 2::-1])  # OpenCV's BGR -> RGB
    return Frame(index=0, luma=np.ascontiguousarray(luma), pts=None, time_base=None)


@dataclass
class _End:
    """Sentinel put on the queue by the decode thread: done, with the error that stopped it."""

    error: BaseException | None = None


@dataclass(frozen=True)
class _Lost:
    """A frame the container holds (a packet with this pts) that the decoder could not give."""

    pts: int


CONCEALED: str = "concealed"
"""Key of :attr:`Frame.extra` set on a frame that could not be decoded and shows the last good
frame's picture instead."""


REORDER_FRAMES: int = 16
"""Decoded frames held back, once a stream has shown damage, before they are given out, so that
a frame the recovering decoder emits late still takes its place in time. A healthy stream's
decoder emits frames in order, and they pass straight through."""


def _decoded(
    container: av.container.InputContainer, stream: av.VideoStream
) -> Iterator[av.VideoFrame | _Lost]:
    """The stream's frames in presentation order, with a :class:`_Lost` for each one lost.

    A damaged packet (bytes zeroed or flipped, a chunk of the file missing) makes the decoder
    refuse it, or drop the frames that depend on it, or emit frames out of order while it
    recovers. The film's frame count and timing must be kept all the same: every packet's pts is
    noted as it is demuxed; frames pass through a small reordering buffer
    (:data:`REORDER_FRAMES`); a noted pts that the output has passed without its frame is given
    out as lost, in its place; a frame arriving after its place was given out is dropped.
    Packets the container marks to be discarded (an edit list's pre-roll) are not frames of the
    film and are not expected. A demuxer that cannot read on (a truncated file) ends the stream
    there.
    """
    import heapq
    import itertools

    expected: list[int] = []  # pts of demuxed packets whose frame has not been given out
    pending: list[tuple[int, int, av.VideoFrame]] = []  # (pts, arrival, frame)
    arrival = itertools.count()
    last: int | None = None  # the last pts given out (frames and lost ones)
    hold = 0  # frames held back: REORDER_FRAMES from the first sign of damage on

    def release(keep: int) -> Iterator[av.VideoFrame | _Lost]:
        nonlocal last, hold
        while len(pending) > keep:
            pts, _, frame = heapq.heappop(pending)
            while expected and expected[0] < pts:
                lost = heapq.heappop(expected)
                hold = REORDER_FRAMES
                if last is None or lost > last:
                    last = lost
                    yield _Lost(lost)
            if expected and expected[0] == pts:
                heapq.heappop(expected)
            if last is not None and pts <= last:
                logger.debug("dropped a late frame at pts %d (after %d)", pts, last)
                continue
            last = pts
            yield frame

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:  # the container itself breaks off: the film ends here
            logger.debug("demuxing stopped: %s", exc)
            packet = None
            hold = REORDER_FRAMES
        if (
            packet is not None and packet.size and packet.pts is not None
            and not packet.is_discard and (last is None or packet.pts > last)
        ):
            heapq.heappush(expected, packet.pts)
        try:
            # A None packet flushes the decoder (PyAV's demux ends with empty packets that do).
            frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
        except av.FFmpegError as exc:
            logger.debug("undecodable packet at pts %s: %s", getattr(packet, "pts", None), exc)
            frames = []
            hold = REORDER_FRAMES
        for frame in frames:
            if frame.pts is None:  # no time to order by (raw streams): as it comes
                yield from release(0)
                yield frame
                continue
            heapq.heappush(pending, (frame.pts, next(arrival), frame))
            yield from release(hold)
        if packet is None:
            break
    yield from release(0)
    while expected:
        lost = heapq.heappop(expected)
        if last is None or lost > last:
            last = lost
            yield _Lost(lost)


def _timestamps(
    frames: Iterator[av.VideoFrame], default_step: int
) -> Iterator[tuple[int, av.VideoFrame, int]]:
    """``(index, frame, pts)`` in decode order, synthesising missing pts.

    Raw elementary streams (``.h264``, some AVI) can yield frames without ``pts``. Such a frame gets
    the previous frame's pts plus the last observed step (or one frame period at the average rate
    when no step has been seen), so every Frame has a usable, increasing timestamp.
    """
    prev: int | None = None
    step = default_step
    for index, frame in enumerate(frames):
        pts = frame.pts
        if pts is None:
            pts = 0 if prev is None else prev + step
        elif prev is not None and pts > prev:
            step = pts - prev
        prev = pts
        yield index, frame, pts


def _seek(
    container: av.container.InputContainer, stream: av.VideoStream, seek_pts: int
) -> Iterator[tuple[int, av.VideoFrame, int]] | None:
    """Frames from the one whose pts is exactly ``seek_pts`` on, or ``None`` to decode from 0.

    Seeks to the last keyframe at or before ``seek_pts`` and decodes forward, dropping the
    frames before it (leading B-frames of an open GOP included), so the cost is that of one GOP
    plus the range, wherever the range lies. The first kept frame must have exactly ``seek_pts``:
    otherwise (a timestamp that is not a frame's, frames without pts, a demuxer that seeks past
    the target) the caller decodes from the start and counts frames, which is always right.
    """
    try:
        container.seek(seek_pts, backward=True, any_frame=False, stream=stream)
    except av.FFmpegError as exc:
        logger.debug("seek to pts %d failed (%s): decoding from the start", seek_pts, exc)
        return None
    frames = _decoded(container, stream)
    for frame in frames:
        if frame.pts is None:
            break
        if frame.pts < seek_pts:
            continue
        if frame.pts != seek_pts:
            break
        return _chain_first(frame, frames)
    logger.debug("seek to pts %d missed the frame: decoding from the start", seek_pts)
    container.seek(stream.start_time or 0, backward=True, any_frame=False, stream=stream)
    return None


def _chain_first(
    first: av.VideoFrame, rest: Iterator[av.VideoFrame]
) -> Iterator[tuple[int, av.VideoFrame, int]]:
    yield 0, first, first.pts
    for i, frame in enumerate(rest, start=1):
        if frame.pts is None:
            raise DecodeError(f"frame {i} after a seek has no timestamp")
        yield i, frame, frame.pts


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has gone; ``False`` when it has (stop is set)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _decode_worker(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    start: int,
    end: int | None,
    q: queue.Queue,
    stop: threading.Event,
    path: Path,
    seek_pts: int | None = None,
) -> None:
    """Thread body: decode frames ``[start, end)`` into ``q``; the last item is always an _End."""
    error: BaseException | None = None
    index = -1
    try:
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1)
        rate = stream.average_rate or stream.guessed_rate
        default_step = max(1, round(1 / (Fraction(rate) * tb))) if rate else 1
        frames = _seek(container, stream, seek_pts) if seek_pts is not None else None
        if frames is None:
            # One persistent decode generator: the codec keeps its B-frame reorder buffer across
            # packets, which per-packet decoding would flush too early.
            frames = _timestamps(_decoded(container, stream), default_step)
        else:
            frames = ((start + i, f, pts) for i, f, pts in frames)
        good: np.ndarray | None = None  # the last decoded picture, shown for a lost frame
        waiting: list[tuple[int, int]] = []  # lost frames before the first good one
        for index, frame, pts in frames:
            if stop.is_set():
                return
            if isinstance(frame, _Lost):
                if good is None:
                    waiting.append((index, pts))
                    continue
                luma = good
            else:
                # Converted even before the range: a lost frame just inside it shows this one.
                luma = good = frame_luma(frame) if index >= start - 1 or waiting else None
                for w_index, w_pts in waiting:  # a film that starts damaged: the first picture
                    if start <= w_index and (end is None or w_index < end):
                        lost = Frame(index=w_index, luma=luma, pts=w_pts, time_base=tb)
                        lost.extra[CONCEALED] = True
                        if not _put(q, lost, stop):
                            return
                waiting = []
            if index < start:
                continue  # frames before the range are decoded (references) but not converted
            if end is not None and index >= end:
                break
            item = Frame(index=index, luma=luma, pts=pts, time_base=tb)
            if isinstance(frame, _Lost):
                item.extra[CONCEALED] = True
            elif frame.duration:
                item.extra[DURATION] = int(frame.duration)
            if not _put(q, item, stop):
                return
        if waiting:
            raise DecodeError(f"no frame of '{path}' could be decoded")
    except FilmcolorError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
        error = DecodeError(f"decoding '{path}' failed after frame {index}: {exc}")
        error.__cause__ = exc
    finally:
        _put(q, _End(error), stop)


def decode(
    path: StrPath,
    start: int = 0,
    end: int | None = None,
    prefetch: int = DEFAULT_PREFETCH,
    seek_pts: int | None = None,
) -> Iterator[Frame]:
    """Decode frames ``[start, end)`` of a video (or the single frame of a still image).

    Frames come in decode order with ``index`` counted from the first frame of the file, the
    stream's own ``pts`` and ``time_base``, and ``luma`` as float32 ``(H, W)`` in [0, 1].

    Decoding runs ahead of the consumer in one background thread, by at most ``prefetch`` frames.
    Closing the generator early (``break``, an exception, or dropping it) stops and joins that
    thread before the container is closed.

    Args:
        path: video or image file.
        start: first frame index to yield.
        end: index one past the last frame to yield; ``None`` for the end of the stream.
        prefetch: queue size, >= 1.
        seek_pts: the pts of frame ``start`` when known (a planning pass, or a constant frame
            rate): decoding then seeks to the keyframe before it instead of decoding every frame
            from the first, so the cost depends on the range's length, not its position. The
            frame with that pts is numbered ``start``. If no frame has exactly that pts, decoding
            falls back to starting at frame 0 and counting.

    Yields:
        :class:`~filmcolor.frames.Frame` objects.

    Raises:
        SourceOpenError: the file cannot be opened (raised on the first ``next()``).
        DecodeError: the stream broke part-way through.
        ValueError: ``start < 0`` or ``prefetch < 1``.
    """
    if start < 0 or prefetch < 1:
        raise ValueError(
            f"need start >= 0 and prefetch >= 1, got start={start} prefetch={prefetch}"
        )
    p = Path(path)
    if is_image_path(p):
        if start == 0 and (end is None or end > 0):
            yield decode_image(p)
        return
    container = open_container(p)
    try:
        stream = pick_video_stream(container, p)
        stream.thread_type = "AUTO"  # frame + slice threads: several frames decode in parallel
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()
        worker = threading.Thread(
            target=_decode_worker,
            args=(container, stream, start, end, q, stop, p, seek_pts),
            name=THREAD_NAME,
            daemon=True,
        )
        worker.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            # The decode thread must never be abandoned: it owns the container, which is closed
            # below, and a thread blocked on a full queue would otherwise live until exit.
            # Setting `stop` makes its puts give up; draining unblocks one already waiting.
            stop.set()
            while worker.is_alive():
                try:
                    q.get(timeout=_POLL_S)
                except queue.Empty:
                    pass
            worker.join()
    finally:
        container.close()
