"""Planning a job: decode the film once (frame count, timestamps, scene cuts), then cut it into
chunks at shot boundaries where possible.

Cuts come from this pass and are stored in the manifest; chunks never run the detector again,
since its history at a chunk's first frame would differ from that of an uninterrupted run.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path

from filmcolor.config import RunConfig
from filmcolor.errors import DecodeError, JobStateError
from filmcolor.jobs import faults
from filmcolor.jobs.manifest import Chunk, JobManifest
from filmcolor.jobs.spec import JobSpec, Plan

logger = logging.getLogger("filmcolor")

PROGRESS_EVERY: int = 25
"""Frames between two planning progress reports (a bar needs no more; a service wants fewer)."""


def decode_range(
    start: int, end: int, context: tuple[int, int], batch: int, total: int
) -> tuple[int, int]:
    """Frames to decode and colour so that ``[start, end)`` comes out as in a whole run.

    ``context`` frames ``(before, after)`` of warm-up on each side (zero on a side that lies on
    a cut or the film's end), rounded out to whole model batches: batches are aligned to
    absolute frame indices, so every frame shares its forward pass with the same frames as in
    a whole run. Used by chunks and previews alike.
    """
    before, after = context
    return (max(0, (start - before) // batch * batch),
            min(total, -(-(end + after) // batch) * batch))


def plan_chunks(
    total: int,
    cuts: list[int],
    chunk_frames: int,
    context: int | tuple[int, int],
    batch: int,
) -> list[Chunk]:
    """Split ``total`` frames into chunks at cuts where possible, none longer than ``chunk_frames``.

    Whole shots are packed into a chunk while they fit; a shot longer than ``chunk_frames`` is
    split into pieces. A chunk edge inside a shot adds the temporal context on that side (none
    is needed at a cut or the film's ends: nothing crosses a cut); the decode range is then
    rounded out to multiples of ``batch`` (:func:`decode_range`).

    Args:
        total: frames in the film.
        cuts: shot starts (``0`` may be missing; it is implied).
        chunk_frames: most frames written per chunk.
        context: warm-up frames needed ``(before, after)`` a chunk edge inside a shot (see
            :class:`~filmcolor.temporal.chain.TemporalChain`); an int is used on both sides.
        batch: model batch size.

    Returns:
        Chunks covering ``[0, total)`` in order (``seek_pts`` still unset).
    """
    starts = sorted({c for c in cuts if 0 < c < total})
    shots = list(zip([0, *starts], [*starts, total], strict=True))
    ranges: list[tuple[int, int]] = []
    cur = 0
    for a, b in shots:
        if a > cur and b - cur > chunk_frames:
            ranges.append((cur, a))  # close the chunk at the cut rather than mid-shot
            cur = a
        while b - cur > chunk_frames:
            ranges.append((cur, cur + chunk_frames))
            cur += chunk_frames
    if cur < total:
        ranges.append((cur, total))
    before, after = context if isinstance(context, tuple) else (context, context)
    edges = {0, total, *starts}
    chunks = []
    for i, (a, b) in enumerate(ranges):
        warm = (0 if a in edges else before, 0 if b in edges else after)
        ds, de = decode_range(a, b, warm, batch, total)
        chunks.append(Chunk(index=i, start=a, end=b, decode_start=ds, decode_end=de))
    return chunks


def planning_pass(
    src: Path,
    cfg: RunConfig,
    on_progress: Callable[[int], None] | None = None,
    concealed: list[int] | None = None,
) -> tuple[list[int], list[int]]:
    """Decode the film once: ``(pts of every frame, shot starts)``.

    Frames that cannot be decoded are counted as frames (they show the last good picture, see
    :func:`filmcolor.io.decode.decode`); their indices are appended to ``concealed`` if given.

    Only luma thumbnails are kept by the detector, so memory stays small; the pts list is one
    integer per frame and is not stored in the manifest (only each chunk's seek point is).

    Args:
        src: the film.
        cfg: the run's settings (``scene_detect``).
        on_progress: called with the frames scanned so far, every :data:`PROGRESS_EVERY`.
    """
    from filmcolor.io.decode import CONCEALED, decode
    from filmcolor.temporal.scenecut import SceneCutDetector

    det = SceneCutDetector() if cfg.scene_detect else None
    pts: list[int] = []
    cuts: list[int] = []
    for fr in decode(src):
        faults.kill_point("planning", fr.index)
        pts.append(fr.pts if fr.pts is not None else -1)
        if concealed is not None and fr.extra.get(CONCEALED):
            concealed.append(fr.index)
        if det is not None:
            cuts += det.process_frame(fr.index, fr.luma)
        if on_progress is not None and len(pts) % PROGRESS_EVERY == 0:
            on_progress(len(pts))
    if det is not None:
        cuts += det.flush()
    if on_progress is not None:
        on_progress(len(pts))
    return pts, cuts


def temporal_context(cfg: RunConfig) -> tuple[int, int]:
    """Frames ``(before, after)`` a range inside a shot needs for frames identical to a whole run."""
    from filmcolor.temporal.chain import build_temporal

    chain = build_temporal(cfg.smoothing, cfg.temporal)
    return chain.context_before, chain.context_after


def _spans(indices: list[int]) -> list[tuple[int, int]]:
    """``[3, 4, 5, 9]`` -> ``[(3, 5), (9, 9)]``."""
    spans: list[tuple[int, int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    return spans


def describe_frames(indices: list[int], pts: list[int], time_base, most: int = 4) -> str:
    """``frames 40-42 (00:00:01.668), 77 (00:00:03.211) and 2 more spans`` for a warning."""
    from filmcolor.timecode import format_timecode

    parts: list[str] = []
    spans = _spans(indices)
    for a, b in spans[:most]:
        when = ""
        if time_base is not None and 0 <= a < len(pts) and pts[a] >= 0:
            when = f" ({format_timecode(float(pts[a] * time_base))})"
        parts.append((f"{a}" if a == b else f"{a}-{b}") + when)
    more = f" and {len(spans) - most} more span(s)" if len(spans) > most else ""
    return "frame" + ("s " if len(indices) > 1 else " ") + ", ".join(parts) + more


GAP_FACTOR: int = 4
"""A step between two frames this many times the usual one (and :data:`GAP_MIN_S` long) is a
gap in the file, not a variable frame rate."""

GAP_MIN_S: float = 0.5

SHORT_MIN_S: float = 1.0
"""A film that ends this much (and 5 %) before its header's duration was cut off."""


def _missing_frames(info, pts: list[int]) -> list[str]:
    """Frames the file lost without a trace: the end cut off, or a stretch missing in the middle.

    A container that counts its frames (MP4, MOV) is taken at its word. Otherwise times are
    compared, not counts: the header's duration may include sound or subtitles that outlast the
    picture, and a variable-frame-rate film's nominal rate says nothing about its count.
    """
    if info.frame_count:
        if len(pts) < info.frame_count:
            return [(f"the film ends after {len(pts)} frames, and its header announces "
                     f"{info.frame_count} (a truncated or cut-off file?)")]
        return []
    tb = info.time_base
    if tb is None or len(pts) < 2 or any(p < 0 for p in pts):
        return []
    steps = sorted(b - a for a, b in itertools.pairwise(pts))
    usual = steps[len(steps) // 2]
    out = []
    gaps = [
        (i, b - a) for i, (a, b) in enumerate(itertools.pairwise(pts))
        if b - a > GAP_FACTOR * usual and (b - a) * tb > GAP_MIN_S
    ]
    if gaps:
        i, step = gaps[0]
        more = f" and {len(gaps) - 1} more" if len(gaps) > 1 else ""
        out.append(f"{float((step - usual) * tb):.2f} s of picture are missing after frame {i}"
                   f"{more} (a damaged file?)")
    if info.duration:
        covered = float((pts[-1] - pts[0] + usual) * tb)
        if info.duration - covered > max(SHORT_MIN_S, 0.05 * info.duration):
            out.append(f"the film ends after {covered:.2f} s, and its header says it lasts "
                       f"{info.duration:.2f} s (a truncated or cut-off file?)")
    return out


def check_damage(spec: JobSpec, pts: list[int], concealed: list[int]) -> None:
    """Say what the planning pass found wrong with the film, once: frames that could not be
    decoded (shown as the last good picture) and a film that ends before its header says.

    With ``strict`` either is an error instead, raised before any output exists.

    Raises:
        DecodeError: ``strict`` and the film is damaged.
    """
    info, problems = spec.info, []
    if concealed:
        problems.append(
            f"{len(concealed)} of {len(pts)} frames cannot be decoded ("
            f"{describe_frames(concealed, pts, info.time_base)})"
        )
    problems += _missing_frames(info, pts)
    if not problems:
        return
    message = f"'{spec.source.name}' is damaged: " + "; ".join(problems)
    if spec.config.strict:
        raise DecodeError(message + " (refused: --strict)")
    done = ("coloured anyway, each lost frame showing the last good one" if concealed
            else "coloured what there is")
    logger.warning("%s: %s (--strict refuses such films)", message, done)


def plan_job(
    spec: JobSpec,
    manifest: JobManifest,
    batch: int,
    on_progress: Callable[[int], None] | None = None,
) -> Plan:
    """Run the planning pass, record the plan in the manifest (saved), and return it.

    Args:
        spec: the job.
        manifest: the job's manifest, not planned yet.
        batch: the model's batch size (chunk decode ranges are whole batches).
        on_progress: see :func:`planning_pass`.

    Raises:
        JobStateError: no frame could be decoded.
    """
    cfg = spec.config
    concealed: list[int] = []
    pts, cuts = planning_pass(spec.source, cfg, on_progress, concealed)
    if not pts:
        raise JobStateError(f"no frames could be decoded from {spec.source}")
    check_damage(spec, pts, concealed)
    chunks = plan_chunks(len(pts), cuts, cfg.chunk_frames, temporal_context(cfg), batch)
    # Seeking needs real, increasing timestamps; otherwise chunks decode from the first frame.
    seekable = all(p >= 0 for p in pts) and all(b > a for a, b in itertools.pairwise(pts))
    for c in chunks:
        c.seek_pts = pts[c.decode_start] if seekable and c.decode_start > 0 else None
    manifest.total_frames = len(pts)
    manifest.cuts = cuts
    manifest.chunks = chunks
    manifest.save(spec.job_dir)
    logger.debug("planned %d chunks over %d frames, %d shots", len(chunks), len(pts), len(cuts))
    return Plan.of(manifest)
