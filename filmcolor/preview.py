"""Frame-range previews (#4): colour a few seconds anywhere in a film, as a full run would.

``preview`` is the same chain as a job (:func:`filmcolor.pipeline.video_stages`) on a
:class:`~filmcolor.frames.FrameRange`; there is no second code path. What makes its frames equal
the same frames of a full run with the same settings:

* **Seeking.** Decoding starts at the keyframe before the range (``decode(..., seek_pts=...)``),
  so the cost grows with the range, not with its position. For a constant-frame-rate source
  (average rate == base rate) frame ``i`` starts at ``start_time + i / rate``; containers store
  that rounded to their time base (MKV: 1 ms, so 23.976 fps is 42, 83, 125... ms), so a pts maps
  to the index ``round((pts - start_time) * rate)``. The mapping is checked on the packets
  around the range before seeking (demuxed, not decoded: cheap): every pts within a quarter of
  a frame of its slot, one frame per slot, no slot missing. Where it does not hold (a
  variable-frame-rate source, average rate != base rate) the preview decodes from the first
  frame and counts: always right, but its cost grows with the position.
* **Warm-up.** The temporal stages' context (the window's radius after the range; the colour
  hold's restart period plus that radius before it, see :mod:`filmcolor.temporal.hold`) is
  decoded and coloured around the range, rounded out to whole model batches, which are aligned
  to absolute frame indices (see ``Colorizer.__call__``). After them, the scene-cut detector's
  ``lookahead`` frames are decoded and scanned (not coloured), so the cuts inside the temporal
  stages' reach are decided on the same frames as in the full run.
  Before the coloured frames, decoding starts at
  :func:`~filmcolor.temporal.scenecut.warmup_start` (at most :data:`LOOKBACK` frames earlier);
  those frames are only shown to the scene-cut detector. Its state is restarted on a fixed grid
  of frame indices, so from there on it decides exactly as in the full run, whatever came
  before (a fade to black of any length included).

Sweeps (``render_sizes``, ``models``) colour the range once per combination and put the frames
in one contact sheet, one row per combination.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from filmcolor.config import RunConfig
from filmcolor.errors import ConfigError, OutputError
from filmcolor.frames import Frame, FrameRange
from filmcolor.temporal.scenecut import SceneCutDetector, SceneCutParams, warmup_start

logger = logging.getLogger("filmcolor")

LOOKBACK: int = SceneCutParams().memory
"""Most frames decoded before the coloured ones for the scene-cut detector alone.

Invariant (proved in :mod:`filmcolor.temporal.scenecut`, "Bounded memory"): a stream that starts
at or before ``warmup_start(i)`` decides every frame ``>= i`` as the whole film does, and
``i - warmup_start(i) < LOOKBACK``. ``tests/test_scenecut.py`` checks it on random footage with
blank stretches; ``tests/test_preview.py`` on previews after a long fade to black.
"""

SEEK_REORDER_MARGIN: int = 16
"""Packets are demuxed this many frames past the range when checking timestamps: B-frame
reordering (at most 16 frames in H.264/HEVC) can store a frame of the range that late."""

SHEET_THUMB_WIDTH: int = 320
"""Width in pixels of one frame in a contact sheet."""

_TIMECODE = re.compile(r"^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d*)?)$")


@dataclass
class PreviewRequest:
    """What to preview and what to write (the CLI fills it).

    Attributes:
        start, end: range as timecodes (``HH:MM:SS.fff``, ``MM:SS``, seconds) or frame numbers
            with an ``f`` suffix (``17280f``); ``end`` is exclusive. ``None``: start / 5 s later.
        frames: ``"A-B"`` frame numbers (end exclusive), instead of ``start``/``end``.
        output: the clip (default ``<stem>.preview-<A>-<B>.mp4`` beside the input).
        side_by_side: original | colour in one frame.
        sheet: frames in the PNG contact sheet (0: no sheet; a sweep defaults to 4).
        render_sizes, models, vividness: sweep values (more than one combination writes only
            the sheet).
    """

    start: str | None = None
    end: str | None = None
    frames: str | None = None
    output: str | None = None
    side_by_side: bool = False
    sheet: int = 0
    render_sizes: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    vividness: list[float] = field(default_factory=list)


@dataclass
class PreviewSummary:
    """What a preview wrote (printed by the CLI as one line)."""

    range: FrameRange
    clip: Path | None
    sheet: Path | None
    seconds: float

    def __str__(self) -> str:
        out = ", ".join(str(p) for p in (self.clip, self.sheet) if p is not None)
        return (
            f"frames {self.range.start}-{self.range.end} ({len(self.range)} frames) in "
            f"{self.seconds:.1f} s -> {out}"
        )


# -- ranges -----------------------------------------------------------------------------------
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


def parse_frames(text: str) -> tuple[int, int]:
    """``"17280-17400"`` -> ``(17280, 17400)`` (end exclusive).

    Raises:
        ConfigError: malformed or empty.
    """
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"--frames {text!r} is not a range: use START-END, e.g. 17280-17400")
    a, b = int(m.group(1)), int(m.group(2))
    if b <= a:
        raise ConfigError(f"--frames {text!r} is empty: END must be greater than START")
    return a, b


def resolve_range(req: PreviewRequest, rate: Fraction, total: int) -> FrameRange:
    """The frames a request names, checked against the film's length.

    Raises:
        ConfigError: malformed, empty, or past the end of the film.
    """
    if req.frames is not None:
        if req.start is not None or req.end is not None:
            raise ConfigError("give either --frames or --start/--end, not both")
        a, b = parse_frames(req.frames)
    else:
        a = parse_position(req.start, rate, "--start") if req.start else 0
        if req.end:
            b = parse_position(req.end, rate, "--end")
        else:
            b = min(a + math.ceil(5 * rate), total)  # default: 5 s, cut at the film's end
    length = f"{total} frames, {_tc(Fraction(total) / rate)}"
    if a >= total:
        raise ConfigError(f"the range starts at frame {a}, past the end of the film ({length})")
    if b <= a:
        raise ConfigError(
            f"the range is empty: it ends at frame {b}, not after its start (frame {a})"
        )
    if b > total:
        raise ConfigError(f"the range ends at frame {b}, past the end of the film ({length})")
    return FrameRange(a, b)


def _tc(seconds: Fraction | float) -> str:
    s = float(seconds)
    return f"{int(s // 3600):02d}:{int(s // 60 % 60):02d}:{s % 60:06.3f}"


# -- frames -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Timing:
    """What seeking needs to know about the video stream."""

    start_pts: int
    rate: Fraction | None  # the constant frame rate; None: variable (no seeking)
    time_base: Fraction | None

    def slot(self, pts: int) -> Fraction:
        """Frame position of ``pts`` (an integer for a frame exactly on the rate's grid)."""
        assert self.rate is not None and self.time_base is not None
        return (pts - self.start_pts) * self.time_base * self.rate


def _timing(src: Path) -> _Timing:
    import av

    with av.open(str(src)) as c:
        st = c.streams.video[0]
        start = st.start_time or 0
        avg, base, tb = st.average_rate, st.base_rate, st.time_base
        cfr = bool(avg and base and tb and Fraction(avg) == Fraction(base))
        return _Timing(start, Fraction(avg) if cfr else None, Fraction(tb) if tb else None)


def _locate(src: Path, timing: _Timing, first: int, end: int) -> int | None:
    """The pts of frame ``first``, if the timestamps around ``[first, end)`` map to indices.

    Seeks (as :func:`filmcolor.io.decode.decode` will) to the keyframe before frame ``first``
    and demuxes packets up to past ``end``. The mapping ``round(slot(pts))`` holds when every
    pts lies within a quarter frame of its slot (rounding to the time base moves it by at most
    half a tick), no slot holds two frames, and no slot from the keyframe on is missing. Then
    the frame with that pts is frame ``first`` of the film, as counting from the start would
    find (a constant-rate source drops no frames). ``None``: decode from the start and count.
    """
    import av

    if timing.rate is None or timing.time_base is None:
        return None
    ticks = 1 / (timing.rate * timing.time_base)  # per frame
    target = timing.start_pts + round(first * ticks)
    pts_of: dict[int, int] = {}
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        try:
            c.seek(target, backward=True, any_frame=False, stream=st)
            for packet in c.demux(st):
                if packet.size == 0:
                    continue  # the demuxer's flush packet
                if packet.pts is None:
                    return None
                slot = timing.slot(packet.pts)
                index = round(slot)
                if abs(slot - index) > Fraction(1, 4) or index in pts_of:
                    logger.debug("pts %d is not on the frame grid: no seek", packet.pts)
                    return None
                pts_of[index] = packet.pts
                if index >= end + SEEK_REORDER_MARGIN:
                    break
        except av.FFmpegError as exc:
            logger.debug("cannot check timestamps after a seek (%s): no seek", exc)
            return None
    lowest = min(pts_of, default=first + 1)
    if lowest > first or any(i not in pts_of for i in range(lowest, end)):
        logger.debug("frames %d-%d: timestamps do not map to indices: no seek", first, end)
        return None
    return pts_of[first]


def preview_frames(
    cfg: RunConfig, src: Path, rng: FrameRange, total: int, colorizer, timing: _Timing | None = None
) -> Iterator[Frame]:
    """The finished frames of ``rng``, equal to the same frames of a full run (see module doc)."""
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import video_stages
    from filmcolor.temporal.chain import build_temporal

    timing = timing or _timing(src)
    chain = build_temporal(cfg.smoothing, cfg.temporal)
    before, after = chain.context_before, chain.context_after
    batch = colorizer.batch_size
    # Coloured: the range, the temporal stages' context either side (the colour hold looks
    # further back than the window looks ahead), out to whole aligned batches.
    colour_from = max(0, (rng.start - before) // batch * batch)
    colour_to = min(total, -(-(rng.end + after) // batch) * batch)
    ds, de = colour_from, colour_to
    if cfg.scene_detect:
        ds = warmup_start(colour_from)
        # The cuts up to colour_to are decided on the same frames as in the full run: the
        # detector's lookahead past it is decoded and scanned, never coloured.
        de = min(total, colour_to + SceneCutDetector().lookahead)
    seek = _locate(src, timing, ds, de) if ds > 0 else None
    frames: Iterator[Frame] = decode(src, ds, de, seek_pts=seek)
    if cfg.scene_detect:
        # The pipeline's own stage (video_stages runs the same one), applied before the end
        # is cut off; the stages then keep the marks it set.
        frames = _until(SceneCutDetector().annotate(frames), colour_to)
        cfg = replace(cfg, scene_detect=False)
    for fr in video_stages(frames, cfg, colorizer, colour_from=colour_from):
        if fr.index in rng:
            yield fr
        elif fr.index >= rng.end:
            break


def _until(frames: Iterator[Frame], end: int) -> Iterator[Frame]:
    for fr in frames:
        if fr.index >= end:
            return
        yield fr


def frame_rgb(frame: Frame) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of a finished frame (BT.601 from its luma and Cb/Cr)."""
    y = frame.luma.astype(np.float32)
    h, w = y.shape
    cbcr = frame.extra.get("cbcr")
    if cbcr is None:
        rgb = np.repeat(y[..., None], 3, axis=2)
    else:
        cb = cv2.resize(cbcr[0], (w, h), interpolation=cv2.INTER_LINEAR)
        cr = cv2.resize(cbcr[1], (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _side_by_side(frames: Iterator[Frame]) -> Iterator[Frame]:
    for fr in frames:
        cbcr = fr.extra["cbcr"]
        fr.extra["cbcr"] = np.concatenate([np.zeros_like(cbcr), cbcr], axis=2)
        fr.luma = np.concatenate([fr.luma, fr.luma], axis=1)
        yield fr


def _thumb(rgb: np.ndarray, label: str | None = None) -> np.ndarray:
    h, w = rgb.shape[:2]
    tw = min(SHEET_THUMB_WIDTH, w)
    th = max(1, round(h * tw / w))
    img = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
    if label:
        cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return img


def write_sheet(rows: Sequence[tuple[str, list[np.ndarray]]], path: Path) -> None:
    """A PNG grid: one row per ``(label, RGB frames)``, the label on the row's first frame."""
    lines = []
    for label, images in rows:
        thumbs = [_thumb(img, label if i == 0 else None) for i, img in enumerate(images)]
        lines.append(np.concatenate(thumbs, axis=1))
    width = max(r.shape[1] for r in lines)
    lines = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in lines]
    sheet = np.concatenate(lines, axis=0)
    from filmcolor.pipeline import atomic_output

    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"cannot write the contact sheet {path}")


def sheet_indices(rng: FrameRange, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``rng`` (first and last included)."""
    n = max(1, min(n, len(rng)))
    if n == 1:
        return [rng.start]
    return sorted({rng.start + round(i * (len(rng) - 1) / (n - 1)) for i in range(n)})


# -- audio ------------------------------------------------------------------------------------
def build_preview_remux_args(
    video: Path, src: Path, out: Path, start_s: float, duration_s: float, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """FFmpeg command: the preview video plus the source's first audio track cut to the range.

    Pure (runs nothing). The audio is re-encoded to AAC: a copy could only be cut at packet
    boundaries, and AAC fits every container a preview is written to.
    """
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-i", str(video),
        "-ss", f"{start_s:.6f}", "-t", f"{duration_s:.6f}", "-i", str(src),
        "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-c:a", "aac",
        "-shortest", str(out),
    ]


# -- the preview ------------------------------------------------------------------------------
def _rebased(frames: Iterator[Frame], base: list[int]) -> Iterator[Frame]:
    """Timestamps from 0, so the short clip starts playing at once."""
    for fr in frames:
        if not base:
            base.append(fr.pts or 0)
        fr.pts = (fr.pts or 0) - base[0]
        yield fr


def _sheet_collector(frames: Iterator[Frame], wanted: set[int], out: dict) -> Iterator[Frame]:
    for fr in frames:
        if fr.index in wanted:
            out[fr.index] = frame_rgb(fr)
        yield fr


def default_output(src: Path, rng: FrameRange) -> Path:
    """``film.mp4`` -> ``film.preview-17280-17400.mp4``."""
    return src.with_name(f"{src.stem}.preview-{rng.start}-{rng.end}.mp4")


def preview(cfg: RunConfig, req: PreviewRequest) -> PreviewSummary:
    """Colour a range of ``cfg.input`` into a short clip and/or a contact sheet.

    Raises:
        ConfigError: a bad range or sweep.
        FilmcolorError: any input, model, encoding or output problem.
    """
    from filmcolor.io.encode import encode
    from filmcolor.io.probe import probe
    from filmcolor.io.remux import ffmpeg_exe, run_remux
    from filmcolor.pipeline import atomic_output, build_colorizer, check_output, temp_path

    src = Path(cfg.input)
    info = probe(src)
    if info.kind != "video":
        raise ConfigError(f"preview needs a video, and {src} is an image")
    rate = info.frame_rate or Fraction(25)
    total = info.frame_count or math.floor((info.duration or 0) * rate)
    rng = resolve_range(req, rate, total)
    timing = _timing(src)
    t0 = time.perf_counter()
    variants = [
        replace(cfg, render_size=rs, model=m, vividness=v)
        for m in (req.models or [cfg.model])
        for rs in (req.render_sizes or [cfg.render_size])
        for v in (req.vividness or [cfg.vividness])
    ]
    sweep = len(variants) > 1
    n_sheet = req.sheet or (4 if sweep else 0)
    wanted = set(sheet_indices(rng, n_sheet)) if n_sheet else set()
    out = Path(req.output) if req.output else default_output(src, rng)
    sheet_path = out.with_suffix(".png") if n_sheet else None
    clip = None if sweep else out
    for p in (clip, sheet_path):
        if p is not None:
            check_output(p, cfg.overwrite)
    rows: list[tuple[str, list[np.ndarray]]] = []
    for variant in variants:
        colorizer = build_colorizer(variant)
        label = f"{variant.model or 'default'} @ {colorizer.render_size}"
        if req.vividness:
            label += f", vividness {colorizer.vividness:g}"
        picked: dict[int, np.ndarray] = {}
        frames = _sheet_collector(
            preview_frames(variant, src, rng, total, colorizer, timing), wanted, picked
        )
        if clip is None:
            for _ in frames:
                pass
        else:
            base: list[int] = []
            frames = _rebased(frames, base)
            enc_info = info
            if req.side_by_side:
                frames = _side_by_side(frames)
                enc_info = replace(info, width=2 * info.width)
            video_tmp = temp_path(clip, "video").with_suffix(".mp4")
            try:
                stats = encode(frames, video_tmp, enc_info, codec=cfg.codec, crf=cfg.crf,
                               preset=cfg.preset)
                first = base[0] if base else timing.start_pts
                start_s = float((first - timing.start_pts) * (info.time_base or 0))
                with atomic_output(clip) as tmp:
                    run_remux(build_preview_remux_args(
                        video_tmp, src, tmp, start_s, stats.duration, ffmpeg=ffmpeg_exe()))
            finally:
                video_tmp.unlink(missing_ok=True)
        rows.append((label, [picked[i] for i in sorted(picked)]))
    if sheet_path is not None:
        write_sheet(rows, sheet_path)
    return PreviewSummary(rng, clip, sheet_path, time.perf_counter() - t0)
