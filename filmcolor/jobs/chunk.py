"""Colouring one chunk: a pure function of the job's spec, its plan and the chunk's index.

    decode [decode_start, decode_end) -> video_stages -> frames [start, end) -> encode
    -> chunk_0007.mp4.tmp -> fsync -> rename to chunk_0007.mp4

A chunk's frames equal those of an uninterrupted run bit for bit, because nothing a frame's
colour depends on is carried across chunks:

* scene cuts come from the planning pass (the plan), never from a detector restarted at the
  chunk's first frame, whose history would differ;
* the temporal stages' output at frame ``t`` depends only on frames ``[t-B, t+R]`` of its shot
  (``R``: the window's radius; ``B``: the colour hold's restart period plus ``R``, see
  :mod:`filmcolor.temporal.hold`), so a chunk that starts or ends inside a shot decodes and
  colours that much warm-up context before and after it (not written); a chunk edge on a cut
  needs none;
* model batches are aligned to absolute frame indices (see ``Colorizer.__call__``), and the
  context is rounded out to whole batches, so every frame shares its forward pass with the same
  frames as in a whole run;
* each chunk is encoded with x264's ``stitchable`` option, so all chunks share one stream
  header and can be joined by copying packets; and the encoder runs with heap memory filled with
  a constant on allocation (:func:`filmcolor.io.encode.repeatable_heap`), because libx264 reads
  some memory it never initialised, which otherwise made two encodes of identical frames differ.

The function writes one file and returns what it measured; recording the chunk as done in the
manifest is the engine's job (:mod:`filmcolor.jobs.engine`), so a chunk may run in another
process or on another machine.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from filmcolor.config import RunConfig
from filmcolor.errors import EncodeError
from filmcolor.frames import Frame
from filmcolor.jobs import faults
from filmcolor.jobs.disk import disk_full_error, is_disk_full
from filmcolor.jobs.folder import CHUNK_SUFFIX
from filmcolor.jobs.manifest import Chunk, commit_file
from filmcolor.jobs.spec import JobSpec, Plan


@dataclass(frozen=True)
class ChunkResult:
    """What colouring a chunk measured (the engine records it in the manifest).

    Attributes:
        index: the chunk.
        frames: frames written.
        seconds: wall time.
        bytes: size of the chunk's file.
        first_pts, last_pts: source timestamps of its first and last frame.
        duration: seconds the chunk lasts (the encoder's exact figure).
    """

    index: int
    frames: int
    seconds: float
    bytes: int
    first_pts: int
    last_pts: int
    duration: float


@dataclass(frozen=True)
class WrittenVideo:
    """A video-only file written by :func:`write_video`.

    Attributes:
        frames: frames encoded.
        duration: seconds, first frame start to last frame end.
        base_pts: the source pts of the first frame (the file's timestamps start at 0).
        last_pts: the source pts of the last frame.
    """

    frames: int
    duration: float
    base_pts: int
    last_pts: int


def chunk_frames(
    src: Path, chunk: Chunk, cuts: list[int], cfg: RunConfig, colorizer
) -> Iterator[Frame]:
    """The finished frames ``[chunk.start, chunk.end)``: the stages run over the decode range."""
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import video_stages

    frames = decode(src, chunk.decode_start, chunk.decode_end, seek_pts=chunk.seek_pts)
    for fr in video_stages(frames, cfg, colorizer, cuts=cuts):
        if chunk.start <= fr.index < chunk.end:
            yield fr


def encoder_options(codec: str) -> dict[str, str]:
    """Extra encoder options for chunk files (x264: headers independent of the content)."""
    # `stitchable` stops x264 from tuning stream headers to each chunk's content, so every chunk
    # has the same SPS/PPS and one header serves the joined stream.
    return {"x264-params": "stitchable=1"} if codec == "libx264" else {}


class _Rebase:
    """Shift pts to start at 0 (the join adds ``base`` back; a preview keeps 0).

    An MP4 track that starts later than 0 gets an empty edit whose length is stored in the
    movie timescale (milliseconds), which moved a VFR chunk's frames by one tick; a track that
    starts at 0 keeps every pts exact.
    """

    def __init__(self) -> None:
        self.base: int | None = None

    def __call__(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for fr in frames:
            if fr.pts is None:
                raise EncodeError(f"frame {fr.index} has no timestamp")
            if self.base is None:
                self.base = fr.pts
            fr.pts -= self.base
            yield fr


_encoded_here = 0
"""Frames encoded by this process (for the ``chunk:N`` kill point)."""


def _count(frames: Iterator[Frame]) -> Iterator[Frame]:
    global _encoded_here
    for fr in frames:
        _encoded_here += 1
        faults.kill_point("chunk", _encoded_here)
        yield fr


def write_video(
    frames: Iterator[Frame],
    path: Path,
    info,
    cfg: RunConfig,
    options: dict[str, str] | None = None,
    expected: int | None = None,
    label: str | None = None,
) -> WrittenVideo:
    """Encode ``frames`` into the video-only file ``path``, atomically: the one encode of every
    front end (job chunks and previews).

    Written as ``<path>.tmp``, synced and renamed, so ``path`` only ever holds a complete file;
    the temporary is removed on any failure. Timestamps start at 0 (see :class:`_Rebase`).

    Args:
        frames: finished frames (``extra["cbcr"]`` set), with the source's pts.
        path: the file (its suffix before ``.tmp`` names the container).
        info: the source's :class:`~filmcolor.io.probe.SourceInfo` (size, time base, depth).
        cfg: the run's encoder settings (``codec``, ``crf``, ``preset``).
        options: extra encoder options (:func:`encoder_options` for chunks).
        expected: frames the file must hold; another count is an error and nothing is kept.
        label: what the file is, for that error (default: its name).

    Raises:
        EncodeError: the encoder failed, or the count differs from ``expected``.
    """
    from filmcolor.io.encode import encode

    tmp = path.with_name(path.name + ".tmp")
    rebase = _Rebase()
    try:
        stats = encode(rebase(_count(frames)), tmp, info, codec=cfg.codec, crf=cfg.crf,
                       preset=cfg.preset, options=options)
        if expected is not None and stats.frames != expected:
            raise EncodeError(
                f"{label or path.name} has {stats.frames} frames, expected {expected}: the source "
                "decodes differently from the planning pass; use --restart"
            )
        commit_file(tmp, path)
    finally:
        # Never leave a partial file: a chunk is redone from its first frame on resume anyway.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    assert rebase.base is not None
    return WrittenVideo(stats.frames, stats.duration, rebase.base, rebase.base + stats.last_pts)


def _reporting(frames: Iterator[Frame], on_frames: Callable[[int], None]) -> Iterator[Frame]:
    for fr in frames:
        yield fr
        on_frames(1)  # after the encoder took the frame: "done" means encoded


def run_chunk(
    spec: JobSpec,
    plan: Plan,
    index: int,
    colorizer=None,
    on_frames: Callable[[int], None] | None = None,
) -> ChunkResult:
    """Colour chunk ``index`` of ``plan`` into its file in ``spec.job_dir``.

    Args:
        spec: the job.
        plan: the job's plan.
        index: the chunk.
        colorizer: the model stage, with the job's guidance attached; ``None`` builds it from
            ``spec`` (a worker that has nothing else).
        on_frames: called with ``1`` for each frame finished.

    Raises:
        OutputError: the disk filled up (the job stays resumable).
        FilmcolorError: any decode, model or encode problem.
    """
    chunk = plan.chunks[index]
    if colorizer is None:
        colorizer = build_job_colorizer(spec, plan)
    final = spec.job_dir / chunk.filename(CHUNK_SUFFIX)
    t0 = time.perf_counter()
    frames = chunk_frames(spec.source, chunk, plan.cuts, spec.config, colorizer)
    if on_frames is not None:
        frames = _reporting(frames, on_frames)
    try:
        written = write_video(frames, final, spec.info, spec.config,
                              options=encoder_options(spec.config.codec), expected=chunk.frames,
                              label=f"chunk {chunk.index}")
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(f"chunk {chunk.index}", spec.job_dir) from exc
        raise
    return ChunkResult(index, written.frames, time.perf_counter() - t0, final.stat().st_size,
                       written.base_pts, written.last_pts, written.duration)


def build_job_colorizer(spec: JobSpec, plan: Plan | None = None):  # -> Colorizer
    """The model stage of a job, with its guidance resolved for the source and the plan's cuts.

    Raises:
        FilmcolorError: a bad model, weights or guidance (before anything is written).
    """
    import math
    from fractions import Fraction

    from filmcolor.pipeline import attach_guide, build_colorizer, load_guidance

    cfg, info = spec.config, spec.info
    colorizer = build_colorizer(cfg)
    rate = info.frame_rate or Fraction(25)
    total = (plan.total_frames if plan is not None else None) or info.frame_count or max(
        1, math.floor((info.duration or 0) * rate))
    attach_guide(colorizer, load_guidance(cfg), spec.source, rate, total,
                 plan.cuts if plan is not None else None)
    return colorizer
