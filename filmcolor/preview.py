"""Frame-range previews (#4): colour a few seconds anywhere in a film, as a full run would.

``preview`` is the same chain as a job (:func:`filmcolor.pipeline.video_stages`) on a
:class:`~filmcolor.frames.FrameRange`, encoded and published by the job engine's own
:func:`~filmcolor.jobs.chunk.write_video` and :func:`~filmcolor.jobs.finish.publish_video`;
there is no second code path. What makes its frames equal
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
from filmcolor.io.seek import SEEK_REORDER_MARGIN, _locate, _Timing, _timing  # noqa: F401
from filmcolor.temporal.scenecut import SceneCutDetector, SceneCutParams, warmup_start
from filmcolor.timecode import parse_position

logger = logging.getLogger("filmcolor")

LOOKBACK: int = SceneCutParams().memory
"""Most frames decoded before the coloured ones for the scene-cut detector alone.

Invariant (proved in :mod:`filmcolor.temporal.scenecut`, "Bounded memory"): a stream that starts
at or before ``warmup_start(i)`` decides every frame ``>= i`` as the whole film does, and
``i - warmup_start(i) < LOOKBACK``. ``tests/test_scenecut.py`` checks it on random footage with
blank stretches; ``tests/test_preview.py`` on previews after a long fade to black.
"""

SHEET_THUMB_WIDTH: int = 320
"""Width in pixels of one frame in a contact sheet."""

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
        guidance: sweep of guidance, each ``(references, hints file)`` replacing the run's.
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
    guidance: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)


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
def preview_frames(
    cfg: RunConfig, src: Path, rng: FrameRange, total: int, colorizer, timing: _Timing | None = None,
    lost: list[int] | None = None,
) -> Iterator[Frame]:
    """The finished frames of ``rng``, equal to the same frames of a full run (see module doc).

    Frames of the range that could not be decoded (concealed by the last good picture) are
    appended to ``lost``; with ``cfg.strict`` the first one raises instead.

    Raises:
        DecodeError: ``cfg.strict`` and a frame of the range cannot be decoded.
    """
    from filmcolor.errors import DecodeError
    from filmcolor.io.decode import CONCEALED, decode
    from filmcolor.jobs.plan import decode_range, temporal_context
    from filmcolor.pipeline import video_stages

    timing = timing or _timing(src)
    before, after = temporal_context(cfg)
    batch = colorizer.batch_size
    # Coloured: the range, the temporal stages' context either side (the colour hold looks
    # further back than the window looks ahead), out to whole aligned batches.
    colour_from, colour_to = decode_range(rng.start, rng.end, (before, after), batch, total)
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
            if fr.extra.get(CONCEALED):
                if cfg.strict:
                    raise DecodeError(f"'{src.name}' is damaged: frame {fr.index} cannot be "
                                      "decoded (refused: --strict)")
                if lost is not None:
                    lost.append(fr.index)
            yield fr
        elif fr.index >= rng.end:
            break


def guide_span(spec, rng: FrameRange, rate: Fraction, total: int, batch: int) -> tuple[int, int]:
    """The frames whose cuts decide which shots a preview's timed guidance reaches: from the
    earliest to the latest of the coloured frames (the range with its temporal look-back, which
    is shorter than the detector's, rounded to a batch) and the guidance positions."""
    lo, hi = max(0, rng.start - LOOKBACK - batch), rng.end + LOOKBACK + batch
    ats = [r.at for r in spec.references if r.at] + [h.at for h in spec.hints if h.at]
    for at in ats:
        i = min(total - 1, parse_position(at, rate, "--reference"))
        lo, hi = min(lo, i), max(hi, i + 1)
    return lo, min(hi, total)


def scan_cuts(src: Path, timing: _Timing, span: tuple[int, int], total: int) -> list[int]:
    """Shot starts within ``span``, decided as the full run decides them (the detector starts at
    its warm-up point before the span and looks past its end)."""
    from filmcolor.io.decode import decode

    a, b = span
    ds, de = warmup_start(a), min(total, b + SceneCutDetector().lookahead)
    seek = _locate(src, timing, ds, de) if ds > 0 else None
    cuts = [fr.index for fr in SceneCutDetector().annotate(decode(src, ds, de, seek_pts=seek))
            if fr.scene_start and a <= fr.index < b]
    # Frames before the span are another shot as far as the guidance of the span is concerned.
    return sorted({a, *cuts}) if a > 0 else cuts


def guidance_sweep(
    references: Sequence[str], hints: Sequence[str]
) -> list[tuple[tuple[str, ...], str | None]]:
    """Guidance alternatives from preview options: a ``--reference`` written as a comma list
    (``a.jpg,b.jpg``) or several ``--hints`` files compare; everything else holds in each. An
    alternative written ``none`` is the run without it (``--reference none,still.jpg`` gives a
    before/after sheet).

    Raises:
        ConfigError: more than one option is a comma list.
    """
    lists = [i for i, r in enumerate(references) if "," in r]
    if len(lists) > 1 or (lists and len(hints) > 1):
        raise ConfigError("compare one thing at a time: one --reference comma list or several --hints files")
    if lists:
        k = lists[0]
        alts = [v.strip() for v in references[k].split(",") if v.strip()]
        h = hints[0] if hints else None
        rest = (*references[:k], *references[k + 1 :])
        return [((*references[:k], a, *references[k + 1 :]) if a != "none" else rest, h) for a in alts]
    if len(hints) > 1:
        return [(tuple(references), None if h == "none" else h) for h in hints]
    return [(tuple(references), hints[0] if hints else None)]


def guidance_label(spec) -> str:
    """A sweep sheet's row label for one guidance alternative."""
    parts = [f"ref {r.path.name}" + (f"@{r.at}" if r.at else "") for r in spec.references]
    if spec.hints_file is not None:
        parts.append(f"hints {spec.hints_file.name}")
    return " + ".join(parts) or "no guidance"


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
    from filmcolor.io.output import atomic_output

    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"cannot write the contact sheet {path}")


def sheet_indices(rng: FrameRange, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``rng`` (first and last included)."""
    n = max(1, min(n, len(rng)))
    if n == 1:
        return [rng.start]
    return sorted({rng.start + round(i * (len(rng) - 1) / (n - 1)) for i in range(n)})


# -- the preview ------------------------------------------------------------------------------
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
    from filmcolor.io.output import check_output, temp_path
    from filmcolor.io.probe import probe
    from filmcolor.jobs.chunk import write_video
    from filmcolor.jobs.finish import publish_video
    from filmcolor.pipeline import attach_guide, build_colorizer, load_guidance

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
        replace(cfg, render_size=rs, model=m, vividness=v, references=refs, hints=hints)
        for m in (req.models or [cfg.model])
        for rs in (req.render_sizes or [cfg.render_size])
        for v in (req.vividness or [cfg.vividness])
        for refs, hints in (req.guidance or [(cfg.references, cfg.hints)])
    ]
    specs = [load_guidance(v) for v in variants]  # bad guidance: refused before any work
    sweep = len(variants) > 1
    n_sheet = req.sheet or (4 if sweep else 0)
    wanted = set(sheet_indices(rng, n_sheet)) if n_sheet else set()
    out = Path(req.output) if req.output else default_output(src, rng)
    sheet_path = out.with_suffix(".png") if n_sheet else None
    clip = None if sweep else out
    for p in (clip, sheet_path):
        if p is not None:
            check_output(p, cfg.overwrite)
    if clip is not None:
        from filmcolor.io.containers import muxer_for

        try:
            muxer_for(clip)  # a container filmcolor refuses is refused before any colouring
        except ValueError as exc:
            raise OutputError(str(exc)) from None
    rows: list[tuple[str, list[np.ndarray]]] = []
    cuts = None
    for variant, spec in zip(variants, specs, strict=True):
        colorizer = build_colorizer(variant)
        if spec.timed and cuts is None:
            cuts = scan_cuts(src, timing, guide_span(spec, rng, rate, total, colorizer.batch_size), total)
        attach_guide(colorizer, spec, src, rate, total, cuts)
        label = f"{variant.model or 'default'} @ {colorizer.render_size}"
        if req.vividness:
            label += f", vividness {colorizer.vividness:g}"
        if req.guidance:
            label += ", " + guidance_label(spec)
        picked: dict[int, np.ndarray] = {}
        lost: list[int] = []
        frames = _sheet_collector(
            preview_frames(variant, src, rng, total, colorizer, timing, lost), wanted, picked
        )
        if clip is None:
            for _ in frames:
                pass
        else:
            enc_info = info
            if req.side_by_side:
                frames = _side_by_side(frames)
                enc_info = replace(info, width=2 * info.width)
            video_tmp = temp_path(clip, "video").with_suffix(".mp4")
            try:
                # The engine's encode and publish: timestamps from 0, so the clip starts playing
                # at once; the sound cut to the same range.
                video = write_video(frames, video_tmp, enc_info, cfg)
                start_s = float((video.base_pts - timing.start_pts) * (info.time_base or 0))
                publish_video(video_tmp, src, clip, info, video.frames, video.duration,
                              audio_range=(start_s, video.duration))
            finally:
                video_tmp.unlink(missing_ok=True)
        if lost and variant is variants[0]:  # one warning, not one per compared variant
            logger.warning("'%s' is damaged: %d frame(s) of the range cannot be decoded (from "
                           "frame %d): each shows the last good one (--strict refuses such films)",
                           src.name, len(lost), lost[0])
        rows.append((label, [picked[i] for i in sorted(picked)]))
    if sheet_path is not None:
        write_sheet(rows, sheet_path)
    return PreviewSummary(rng, clip, sheet_path, time.perf_counter() - t0)
