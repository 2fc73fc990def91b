"""Frame-range previews (#4): colour a few seconds anywhere in a film, as a full run would.

``preview`` is the same chain as a job (:func:`filmcolor.pipeline.video_stages`) on a
:class:`~filmcolor.frames.FrameRange`; there is no second code path. What makes its frames equal
the same frames of a full run with the same settings:

* **Seeking.** Decoding starts at the keyframe before the range (``decode(..., seek_pts=...)``),
  so the cost grows with the range, not with its position. For a constant-frame-rate source the
  pts of frame ``i`` is ``start_time + i * step`` and the frame found there is numbered ``i``.
  For a variable-frame-rate source (average rate != base rate) frame indices cannot be derived
  from timestamps, so the preview decodes from the first frame and counts: always right, but its
  cost grows with the position.
* **Warm-up.** ``R`` frames (the smoother's radius) before and after the range are decoded and
  coloured, rounded out to whole model batches, which are aligned to absolute frame indices
  (see ``Colorizer.__call__``). Before that, a look-back of :data:`LOOKBACK` frames is decoded
  and only shown to the scene-cut detector (not coloured), so it has settled by the time the
  range starts (it only needs the last shot's few frames; a cut in the look-back is found as
  in the full run).

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

logger = logging.getLogger("filmcolor")

LOOKBACK: int = 48
"""Frames decoded before the range (besides the smoother's radius) to settle the cut detector."""

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
    step: int | None  # ticks per frame for a CFR source; None: variable or not integral


def _timing(src: Path) -> _Timing:
    import av

    with av.open(str(src)) as c:
        st = c.streams.video[0]
        start = st.start_time or 0
        avg, base, tb = st.average_rate, st.base_rate, st.time_base
        step = None
        if avg and base and tb and Fraction(avg) == Fraction(base):
            ticks = 1 / (Fraction(avg) * Fraction(tb))
            step = int(ticks) if ticks.denominator == 1 else None
        return _Timing(start, step)


def preview_frames(
    cfg: RunConfig, src: Path, rng: FrameRange, total: int, colorizer, timing: _Timing | None = None
) -> Iterator[Frame]:
    """The finished frames of ``rng``, equal to the same frames of a full run (see module doc)."""
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import video_stages
    from filmcolor.temporal.smoothing import ChromaSmoother

    timing = timing or _timing(src)
    radius = ChromaSmoother.from_strength(cfg.smoothing).context if cfg.smoothing > 0 else 0
    look = LOOKBACK if cfg.scene_detect else 0
    batch = colorizer.batch_size
    colour_from = max(0, (rng.start - radius) // batch * batch)
    ds = max(0, colour_from - look)
    de = min(total, -(-(rng.end + radius) // batch) * batch)
    seek = timing.start_pts + ds * timing.step if timing.step and ds > 0 else None
    frames = decode(src, ds, de, seek_pts=seek)
    for fr in video_stages(frames, cfg, colorizer, colour_from=colour_from):
        if fr.index in rng:
            yield fr
        elif fr.index >= rng.end:
            break


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
