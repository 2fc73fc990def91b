"""Resumable chunked jobs: every film run is one (#4).

    plan      decode the luma once: frame count, pts, scene cuts -> chunks by frame index
    chunks    for each chunk not done: decode [context) -> video_stages -> encode its frames
              to chunk_0007.mp4.tmp -> rename to chunk_0007.mp4 -> mark done in the manifest
    join      packet-level copy of the chunks into one video-only file (no re-encoding)
    remux     the source's audio and subtitles, as a single pass does; verify; rename

Identical results. A chunk's frames equal those of an uninterrupted run bit for bit, because
nothing a frame's colour depends on is carried across chunks:

* scene cuts come from the planning pass (stored in the manifest), never from a detector
  restarted at the chunk's first frame, whose history would differ;
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

A chunk is done only once its file has been renamed into place *and* the manifest says so;
SIGKILL at any moment therefore loses at most the chunk in progress. The join and the remux
write temporaries named with the writer's pid (a killed run's FFmpeg must never share a file
with the resumed run), and a run starts by deleting the temporaries killed runs left.

What a job may delete. Only the files it makes (:func:`is_job_file`): a ``--job-dir`` that holds
anything else and no manifest is refused before anything is written, the folder of the source or
the output is refused, and the folder itself is removed only when nothing else is left in it
(:func:`check_job_dir`, :func:`remove_job_files`). After success the job's files go (unless
``--keep-chunks``); after an error a rerun would meet again (decode, model, encode, remux) they
go too if no chunk was finished, and are kept otherwise, the error line saying how to resume.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from filmcolor._progress import Progress, logging_redirect
from filmcolor.config import RunConfig
from filmcolor.errors import (
    EncodeError,
    FilmcolorError,
    JobInterrupted,
    JobStateError,
    OutputError,
    RemuxError,
)
from filmcolor.frames import Frame

if TYPE_CHECKING:
    from filmcolor.pipeline import RunSummary
from filmcolor.jobs.manifest import (
    LOCK_NAME,
    MANIFEST_NAME,
    Chunk,
    JobManifest,
    fsync_dir,
    job_lock,
    source_identity,
)

logger = logging.getLogger("filmcolor")

DEFAULT_CHUNK_FRAMES: int = 2000
"""Most frames per chunk: about 83 s of film at 24 fps, minutes of work lost at worst."""

JOB_DIR_SUFFIX: str = ".filmcolor-job"
"""``film.colour.mp4`` -> ``film.colour.mp4.filmcolor-job/`` (the default job directory)."""

CHUNK_SUFFIX: str = ".mp4"
"""Container of the chunk files: MP4 keeps the source time base exactly (MKV rounds to 1 ms)."""

DISK_MARGIN: int = 16 << 20
"""Bytes kept free beyond the estimate, so the disk is never filled to the last byte."""

DISK_FACTOR: float = 1.5
"""Safety factor on the estimated size of the next chunk (scenes differ in bitrate)."""

LOSSY_BITS_PER_PIXEL: float = 1.0
"""Bits per pixel assumed for a lossy chunk at CRF 18 before any chunk has been measured; each
6 CRF steps halve or double it (x264's scale). Meant as an upper bound (x264 at CRF 18 usually
needs a fraction of a bit per pixel), so the first disk check errs on the safe side."""

LOSSLESS_CODECS: frozenset[str] = frozenset(
    {"ffv1", "ffvhuff", "huffyuv", "utvideo", "rawvideo", "png", "qtrle"}
)
"""Encoders whose size is bounded by the raw frame size, not by a quality setting."""

CRF_CODECS: frozenset[str] = frozenset(
    {"libx264", "libx265", "libsvtav1", "libvpx-vp9", "libaom-av1", "libvvenc"}
)
"""Encoders that take ``--crf`` (the others get :data:`OTHER_BITS_PER_PIXEL`)."""

OTHER_BITS_PER_PIXEL: float = 4.0
"""Bits per pixel assumed for an encoder with neither CRF nor lossless coding (e.g. mpeg4)."""

FINAL_TMP_TAG: str = "filmcolor-join"
"""``.film.filmcolor-join-<pid>.mp4``: the final output while FFmpeg remuxes it, beside it."""

_JOB_FILE = re.compile(
    r"^(?:manifest\.json(?:\.tmp)?|lock|chunk_\d{4,}\.mp4(?:\.tmp)?|joined(?:-\d+)?\.mp4\.tmp)$"
)
"""Names of the files a job creates in its directory (chunks: :data:`CHUNK_SUFFIX`); nothing
else there is ever deleted."""

_JOB_TEMP = re.compile(
    r"^(?:manifest\.json\.tmp|chunk_\d{4,}\.mp4\.tmp|joined(?:-\d+)?\.mp4\.tmp)$"
)
"""The job's temporary files: a process killed while writing one leaves it behind."""

KILL_ENV: str = "FILMCOLOR_KILL_AT"
"""Test hook: ``planning:N``, ``chunk:N``, ``done:N`` or ``join:N`` makes the process SIGKILL
itself at that point (planning frame N, N-th frame encoded by this process, after chunk N is
marked done, N-th packet joined), so kill-and-resume tests are deterministic; a ``/TERM`` suffix
sends SIGTERM instead."""


def _kill_point(point: str, n: int) -> None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    where, _, sig = spec.partition("/")
    if where == f"{point}:{n}":
        os.kill(os.getpid(), signal.SIGTERM if sig == "TERM" else signal.SIGKILL)


def default_job_dir(out: Path) -> Path:
    """The job directory used when ``--job-dir`` is not given."""
    return out.with_name(out.name + JOB_DIR_SUFFIX)


def job_settings(cfg: RunConfig, colorizer=None) -> dict:
    """Settings a resumed job must share with its start to give the same pixels.

    ``RunConfig.pixel_settings()`` plus the resolved model name, the sha256 of its weights file,
    the batch size (batches shift a/b by a few ulp on the CPU), the chunk size (chunks start
    new GOPs, so the encoded frames depend on the plan), and the device type the model runs on
    with its precision: CUDA runs in float16 and the CPU in float32, so the same frame gets
    slightly different colours, and a job resumed elsewhere would change at a chunk seam.

    Args:
        cfg: the run's settings.
        colorizer: the built :class:`~filmcolor.infer.colorize.Colorizer` (its resolved
            ``device`` and ``half``); ``None`` resolves ``cfg.device`` here.
    """
    from filmcolor.models.registry import DEFAULT_MODEL, get_model_cfg
    from filmcolor.models.weights import find_weights, sha256sum

    settings = dict(cfg.pixel_settings())
    name = cfg.model or DEFAULT_MODEL
    settings["model"] = name
    mcfg = get_model_cfg(name)
    weights = None
    if cfg.weights is not None:
        weights = Path(cfg.weights)
    elif mcfg.weights is not None:
        weights = find_weights(str(mcfg.weights))
    # Third-party weights were hashed when they loaded (see load_into); others are small.
    known = getattr(getattr(colorizer, "model", None), "weights_sha256", None)
    settings["weights_sha256"] = known or (sha256sum(weights) if weights is not None else None)
    settings["batch_size"] = cfg.batch_size
    settings["chunk_frames"] = cfg.chunk_frames
    if colorizer is not None:
        device, half = colorizer.device.type, colorizer.half
    else:
        from filmcolor.infer.device import resolve_device

        device = resolve_device(cfg.device).type
        half = device == "cuda"  # Colorizer's default
    # The type only ("cuda", not "cuda:1"): an index names a slot, not a kind of chip. Two GPU
    # models may still differ in the last bits of float16; that is not detected.
    settings["device"] = device
    settings["dtype"] = "float16" if half else "float32"
    if cfg.references or cfg.hints:
        from filmcolor.guide.spec import load_guidance

        # Files by name, position and content: other guidance is other pixels.
        settings["guidance"] = load_guidance(cfg.references, cfg.hints).settings()
    return settings


def stored_config(cfg: RunConfig, src: Path, out: Path, job_dir: Path) -> dict:
    """The run's settings as JSON values, with absolute paths, for ``filmcolor resume``."""
    data = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in vars(cfg).items()}
    data.update(input=str(src.resolve()), output=str(out.resolve()), job_dir=str(job_dir.resolve()))
    if cfg.weights is not None:
        data["weights"] = str(Path(cfg.weights).resolve())
    if cfg.references:
        from filmcolor.guide.spec import ReferenceSpec, parse_reference

        refs = [parse_reference(r) for r in cfg.references]
        data["references"] = [str(ReferenceSpec(r.path.resolve(), r.at)) for r in refs]
    if cfg.hints is not None:
        data["hints"] = str(Path(cfg.hints).resolve())
    # Not --restart: `resume` must never throw finished chunks away. --overwrite is kept, so a
    # job started to replace an old output can be resumed while that output is still there.
    data.pop("restart", None)
    return data


def load_config(job_dir: Path, quiet: bool = False) -> RunConfig:
    """The :class:`RunConfig` a job was started with (what ``filmcolor resume`` runs).

    Raises:
        JobStateError: no readable manifest in ``job_dir``.
    """
    manifest = JobManifest.load(job_dir)
    return RunConfig(**{**manifest.config, "quiet": quiet})


# -- planning ---------------------------------------------------------------------------------
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
    rounded out to multiples of ``batch`` (see the module docstring).

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
        ds = max(0, (a - (0 if a in edges else before)) // batch * batch)
        de = min(total, -(-(b + (0 if b in edges else after)) // batch) * batch)
        chunks.append(Chunk(index=i, start=a, end=b, decode_start=ds, decode_end=de))
    return chunks


def planning_pass(src: Path, cfg: RunConfig, quiet: bool) -> tuple[list[int], list[int]]:
    """Decode the film once: ``(pts of every frame, shot starts)``.

    Only luma thumbnails are kept by the detector, so memory stays small; the pts list is one
    integer per frame and is not stored in the manifest (only each chunk's seek point is).
    """
    from filmcolor.io.decode import decode
    from filmcolor.temporal.scenecut import SceneCutDetector

    det = SceneCutDetector() if cfg.scene_detect else None
    pts: list[int] = []
    cuts: list[int] = []
    progress = Progress(None, enabled=not quiet, desc="finding cuts")
    try:
        for fr in progress(decode(src)):
            _kill_point("planning", fr.index)
            pts.append(fr.pts if fr.pts is not None else -1)
            if det is not None:
                cuts += det.process_frame(fr.index, fr.luma)
        if det is not None:
            cuts += det.flush()
    finally:
        progress.close()
    return pts, cuts


def temporal_context(cfg: RunConfig) -> tuple[int, int]:
    """Frames ``(before, after)`` a range inside a shot needs for frames identical to a whole run."""
    from filmcolor.temporal.chain import build_temporal

    chain = build_temporal(cfg.smoothing, cfg.temporal)
    return chain.context_before, chain.context_after


def _plan(manifest: JobManifest, src: Path, cfg: RunConfig, colorizer, job_dir: Path) -> None:
    pts, cuts = planning_pass(src, cfg, cfg.quiet)
    if not pts:
        raise JobStateError(f"no frames could be decoded from {src}")
    chunks = plan_chunks(
        len(pts), cuts, cfg.chunk_frames, temporal_context(cfg), colorizer.batch_size
    )
    # Seeking needs real, increasing timestamps; otherwise chunks decode from the first frame.
    seekable = all(p >= 0 for p in pts) and all(b > a for a, b in itertools.pairwise(pts))
    for c in chunks:
        c.seek_pts = pts[c.decode_start] if seekable and c.decode_start > 0 else None
    manifest.total_frames = len(pts)
    manifest.cuts = cuts
    manifest.chunks = chunks
    manifest.save(job_dir)
    logger.debug("planned %d chunks over %d frames, %d shots", len(chunks), len(pts), len(cuts))


# -- chunks -----------------------------------------------------------------------------------
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


def check_disk(folder: Path, need: int, what: str) -> None:
    """Refuse to start ``what`` when ``folder``'s file system has less than ``need`` bytes free.

    Raises:
        OutputError: one line with both figures and what to do.
    """
    free = shutil.disk_usage(folder).free
    if free < need + DISK_MARGIN:
        raise OutputError(
            f"low disk space: {free >> 20} MiB free in {folder}, {what} needs about "
            f"{(need + DISK_MARGIN) >> 20} MiB; free some space and run the same command "
            "again (finished chunks are kept)"
        )


def bits_per_pixel_bound(codec: str, crf: int | None, bit_depth: int = 8) -> float:
    """A generous bound on the bits per pixel of a chunk, before any chunk has been measured.

    Lossless codecs (and x264/x265 at CRF 0) are bounded by raw 4:4:4 at the source's bit depth;
    CRF codecs get :data:`LOSSY_BITS_PER_PIXEL` at CRF 18, doubled every 6 steps down.
    """
    raw = 3.0 * bit_depth
    if codec in LOSSLESS_CODECS or (crf == 0 and codec in ("libx264", "libx265")):
        return raw
    if codec in CRF_CODECS and crf is not None:
        return min(raw, LOSSY_BITS_PER_PIXEL * 2.0 ** ((18 - crf) / 6))
    return min(raw, OTHER_BITS_PER_PIXEL)


def chunk_estimate(manifest: JobManifest, chunk: Chunk, info, cfg: RunConfig) -> int:
    """Bytes the chunk's file will probably take, for the free-space check before it.

    From the measured size of the chunks already done (times :data:`DISK_FACTOR`, as scenes
    differ in bitrate); before the first one, from the frame size and
    :func:`bits_per_pixel_bound`, so even the first chunk is checked against a real figure.
    """
    done = [c for c in manifest.chunks if c.done and c.bytes]
    if done:
        per_frame = sum(c.bytes for c in done) / sum(c.frames for c in done)
        return int(per_frame * chunk.frames * DISK_FACTOR)
    bpp = bits_per_pixel_bound(cfg.codec, cfg.crf, getattr(info, "bit_depth", 8) or 8)
    return int(info.width * info.height * chunk.frames * bpp / 8)


def _is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) means the disk or the quota is full.

    The encoder and the join wrap PyAV's ``OSError`` in :class:`EncodeError` (``from exc``), and
    FFmpeg's remux reports it in its stderr, so the whole chain is searched.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, RemuxError) and "No space left on device" in (e.stderr or str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def disk_full_error(what: str, folder: Path) -> OutputError:
    """The one line for a write that filled the disk (the job stays resumable)."""
    return OutputError(
        f"disk full: writing {what} in {folder} failed (no space left on the device); free "
        "some space and run the same command again (finished chunks are kept)"
    )


class _Rebase:
    """Shift a chunk's pts to start at 0 (:func:`join_chunks` adds ``base`` back).

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


class _Counter:
    """Counts frames encoded by this process (for the ``chunk:N`` kill point)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for fr in frames:
            self.n += 1
            _kill_point("chunk", self.n)
            yield fr


def _run_chunk(
    manifest: JobManifest,
    chunk: Chunk,
    src: Path,
    info,
    cfg: RunConfig,
    colorizer,
    job_dir: Path,
    progress: Progress,
    counter: _Counter,
) -> None:
    from filmcolor.io.encode import encode

    final = job_dir / chunk.filename(CHUNK_SUFFIX)
    tmp = final.with_name(final.name + ".tmp")
    t0 = time.perf_counter()
    try:
        frames = counter(progress(chunk_frames(src, chunk, manifest.cuts or [], cfg, colorizer)))
        rebase = _Rebase()
        stats = encode(
            rebase(frames), tmp, info, codec=cfg.codec, crf=cfg.crf, preset=cfg.preset,
            options=encoder_options(cfg.codec),
        )
        if stats.frames != chunk.frames:
            raise EncodeError(
                f"chunk {chunk.index} has {stats.frames} frames, expected {chunk.frames}: the "
                "source decodes differently from the planning pass; use --restart"
            )
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(job_dir)
    except Exception as exc:
        if _is_disk_full(exc):
            raise disk_full_error(f"chunk {chunk.index}", job_dir) from exc
        raise
    finally:
        # Never leave a partial chunk: it is redone from its first frame on resume anyway.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    # Renamed first, marked done second: a kill in between only redoes this chunk.
    chunk.done = True
    chunk.seconds = time.perf_counter() - t0
    chunk.bytes = final.stat().st_size
    assert rebase.base is not None
    chunk.first_pts = rebase.base
    chunk.last_pts = rebase.base + stats.last_pts
    chunk.duration = stats.duration
    manifest.save(job_dir)
    _kill_point("done", chunk.index)


# -- join -------------------------------------------------------------------------------------
def join_chunks(paths: list[Path], offsets: list[Fraction], out: Path) -> int:
    """Copy the chunks' video packets, in order, into one video-only file; returns packets.

    Args:
        paths: the chunk files, in order.
        offsets: each chunk's start time in seconds (its first frame's source pts), added back
            to its 0-based timestamps.
        out: the video-only MP4 to write.

    Why a PyAV packet copy and not FFmpeg's concat demuxer: every chunk already carries the
    source's own pts (the encoder copies them), so copying packets keeps every timestamp exactly,
    VFR included. The concat demuxer instead re-bases each file on the summed *durations* of the
    files before it, which for MP4 include a guessed last-frame duration, and can shift a VFR
    film by a frame at every seam. Only decode timestamps may need care: a chunk's first DTS is
    its first PTS minus the B-frame reorder delay, which x264 estimates from the chunk's first
    frame durations; with VFR that can land at or before the previous chunk's last DTS (seen:
    13012 after 13013 in 1/24000 units). Such a DTS is raised to one tick after the previous
    one, which changes the decode order of nothing (the packets are already in decode order)
    and never any PTS; a DTS that would then pass its own PTS is an error, not patched.

    Raises:
        EncodeError: a chunk cannot be read, or a seam's timestamps cannot be reconciled.
    """
    import av

    count = 0
    last_dts: int | None = None
    try:
        with av.open(str(out), "w", format="mp4") as oc:
            ostream = None
            for path, offset_s in zip(paths, offsets, strict=True):
                with av.open(str(path)) as ic:
                    ist = ic.streams.video[0]
                    if ostream is None:
                        ostream = oc.add_stream_from_template(ist)
                        ostream.time_base = ist.time_base
                    ticks = offset_s / Fraction(ist.time_base)
                    if ticks.denominator != 1:
                        raise EncodeError(
                            f"{path.name}: start {offset_s} s is not on its time base"
                        )
                    offset = int(ticks)
                    for packet in ic.demux(ist):
                        if packet.size == 0:  # the demuxer's flush packet
                            continue
                        if packet.pts is not None:
                            packet.pts += offset
                        if packet.dts is not None:
                            packet.dts += offset
                        if packet.dts is not None:
                            if last_dts is not None and packet.dts <= last_dts:
                                # A seam: nudge the DTS past the previous chunk's (see above).
                                if packet.pts is not None and last_dts + 1 > packet.pts:
                                    raise EncodeError(
                                        f"cannot join {path.name}: its decode timestamps overlap "
                                        f"the previous chunk's ({packet.dts} after {last_dts})"
                                    )
                                packet.dts = last_dts + 1
                            last_dts = packet.dts
                        packet.stream = ostream
                        oc.mux(packet)
                        count += 1
                        _kill_point("join", count)
    except av.FFmpegError as exc:
        raise EncodeError(f"joining the chunks into {out} failed: {exc}") from exc
    return count


def _finish(manifest: JobManifest, src: Path, out: Path, info, job_dir: Path) -> None:
    from filmcolor.io.remux import build_remux_args, ffmpeg_exe, run_remux, verify_output

    chunks = manifest.chunks
    paths = [job_dir / c.filename(CHUNK_SUFFIX) for c in chunks]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise JobStateError(
            f"chunk file {missing[0]} of the job in {job_dir} is missing; run again with --restart"
        )
    total_bytes = sum(c.bytes for c in chunks)
    if _same_device(job_dir, out.parent):
        # The joined file and the final output exist side by side until the rename.
        check_disk(job_dir, 2 * total_bytes, "joining the chunks and the final output")
    else:
        check_disk(job_dir, total_bytes, "joining the chunks")
        check_disk(out.parent, total_bytes, "the final output")
    # Names unique to this process: after a SIGKILL during the remux, FFmpeg may still be
    # writing the killed run's temporary (where the kernel cannot stop it, see
    # run_remux); a resumed run must never share that file. _remove_stale_temps deletes it.
    joined = job_dir / f"joined-{os.getpid()}{CHUNK_SUFFIX}.tmp"
    final_tmp = final_temp_path(out)
    try:
        tb = Fraction(info.time_base) if info.time_base else Fraction(1, 25)
        try:
            join_chunks(paths, [(c.first_pts or 0) * tb for c in chunks], joined)
        except Exception as exc:
            if _is_disk_full(exc):
                raise disk_full_error("the joined chunks", job_dir) from exc
            raise
        try:
            run_remux(build_remux_args(joined, src, final_tmp, info, ffmpeg=ffmpeg_exe()))
        except Exception as exc:
            if _is_disk_full(exc):
                raise disk_full_error("the final output", out.parent) from exc
            raise
        first, last = chunks[0], chunks[-1]
        duration = None
        if first.first_pts is not None and last.first_pts is not None and last.duration is not None:
            duration = float((last.first_pts - first.first_pts) * tb) + last.duration
        verify_output(final_tmp, manifest.total_frames or 0, duration)
        os.replace(final_tmp, out)
    finally:
        for p in (joined, final_tmp):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def final_temp_path(out: Path, pid: int | None = None) -> Path:
    """``.film.filmcolor-join-<pid>.mp4``: where the remux writes before the rename to ``out``.

    Hidden, beside ``out`` (same file system, so the rename is atomic), with ``out``'s suffix so
    FFmpeg picks the same container.
    """
    return out.with_name(f".{out.stem}.{FINAL_TMP_TAG}-{pid or os.getpid()}{out.suffix}")


def _same_device(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _remove_stale_temps(job_dir: Path, out: Path) -> None:
    """Delete what killed runs of this job left: partial chunks, joins, remuxed outputs.

    Called under the job lock, so no live process of this job owns a file in the job directory.
    A remux temporary beside the output carries its writer's pid: it is removed only when that
    process is gone (another job could be writing the same output name; it is then left alone).
    """
    for p in job_dir.iterdir():
        if _JOB_TEMP.match(p.name):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    # The name an older filmcolor used (fixed, no pid) and the per-process names.
    pattern = re.compile(
        rf"^\.{re.escape(out.stem)}\.{FINAL_TMP_TAG}(?:-(\d+))?{re.escape(out.suffix)}$"
    )
    with contextlib.suppress(OSError):
        for p in out.parent.iterdir():
            m = pattern.match(p.name)
            if m and (m.group(1) is None or not _pid_alive(int(m.group(1)))):
                logger.debug("removing %s, left by a stopped run", p)
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def is_job_file(name: str) -> bool:
    """Whether a file of this name in a job directory is one the job made (and may delete)."""
    return bool(_JOB_FILE.match(name))


def check_job_dir(job_dir: Path, src: Path, out: Path) -> None:
    """Refuse a job directory whose files a job could delete or mix with its own.

    A job directory holds only the job's own files, and the job deletes them when it is done. So
    the folder of the source or of the output is refused, and so is an existing folder that
    holds anything else but no job manifest (a mistyped ``--job-dir`` must never cost the user a
    file). A folder with a manifest is a job: other files the user put there are kept.

    Raises:
        JobStateError: one line naming the folder and what to do.
    """
    if job_dir.exists() and not job_dir.is_dir():
        raise JobStateError(
            f"the job directory {job_dir} is a file; give --job-dir a new or empty folder"
        )
    resolved = job_dir.resolve()
    for what, path in (("source", src), ("output", out)):
        if resolved == path.resolve().parent:
            raise JobStateError(
                f"the job directory {job_dir} is the folder of the {what}; give --job-dir a "
                "new or empty folder of its own (the job deletes its files when done)"
            )
    if not job_dir.is_dir() or (job_dir / MANIFEST_NAME).is_file():
        return
    foreign = sorted(p.name for p in job_dir.iterdir() if not is_job_file(p.name))
    if foreign:
        raise JobStateError(
            f"{job_dir} is not a filmcolor job directory (it holds {foreign[0]!r} and no "
            f"{MANIFEST_NAME}); give --job-dir a new or empty folder"
        )


def remove_job_files(job_dir: Path, keep_lock: bool = False) -> None:
    """Delete the files the job made (:func:`is_job_file`), and nothing else.

    The folder itself is left to the caller, which removes it only if it is then empty.
    """
    with contextlib.suppress(FileNotFoundError):
        for p in job_dir.iterdir():
            if not is_job_file(p.name) or (keep_lock and p.name == LOCK_NAME):
                continue
            if p.is_symlink() or p.is_file():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def _remove_dir_if_empty(job_dir: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (a file of the user's), or already gone
        job_dir.rmdir()


# -- the job ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a job runs (only the main thread may set handlers)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _open_manifest(
    job_dir: Path, cfg: RunConfig, source: dict, settings: dict, config: dict
) -> JobManifest:
    if (job_dir / MANIFEST_NAME).exists():
        manifest = JobManifest.load(job_dir) if not cfg.restart else None
        if manifest is not None:
            change = manifest.mismatch(source, settings)
            if change is None:
                return manifest
            hint = ""
            old_device = manifest.settings.get("device")
            if old_device and old_device != settings.get("device"):
                hint = f" (or run the same command with --device {old_device} to finish it there)"
            raise JobStateError(
                f"{change}: use --restart to start the job in {job_dir} over{hint}"
            )
        # --restart: only the job's own files go (the lock stays: this process holds it).
        remove_job_files(job_dir, keep_lock=True)
    manifest = JobManifest(source=source, settings=settings, config=config)
    manifest.save(job_dir)
    return manifest


def _kept_note(exc: FilmcolorError, manifest: JobManifest, job_dir: Path) -> None:
    """Append to a failure's one line that the job was kept and how to go on with it."""
    done = f"{manifest.chunks_done}/{len(manifest.chunks)}"
    note = (
        f"the job in {job_dir} was kept ({done} chunks done): once the cause is fixed, "
        f"resume with: filmcolor resume {job_dir}"
    )
    exc.args = (f"{exc}; {note}", *exc.args[1:])


def run_job(cfg: RunConfig, src: Path, out: Path, info) -> RunSummary:
    """Colour a video as a resumable job (see the module docstring).

    The job directory is refused unless it is new, empty, or a job's (:func:`check_job_dir`).
    After success the job's own files are deleted (unless ``cfg.keep_chunks``), and the folder
    too if nothing else is left in it. A failure that a rerun cannot get past by itself (a
    decode, model, encode or remux error) deletes them as well when no chunk was finished, so
    nothing is left behind; with finished chunks the job is kept and the error line says so.
    Interruptions and a full disk always keep the job.

    Raises:
        JobStateError: the job directory is refused or locked, or holds a job with other
            settings/source.
        JobInterrupted: Ctrl-C or SIGTERM; the job can be resumed.
        OutputError: the disk is too full for the next step.
        FilmcolorError: any decode, model, encode or remux problem.
    """
    from filmcolor.pipeline import RunSummary, attach_guide, build_colorizer, load_guidance

    job_dir = Path(cfg.job_dir) if cfg.job_dir else default_job_dir(out)
    check_job_dir(job_dir, src, out)  # before anything is written
    colorizer = build_colorizer(cfg)  # bad model or weights fail before anything is written
    spec = load_guidance(cfg)
    rate = info.frame_rate or Fraction(25)
    estimate = info.frame_count or max(1, math.floor((info.duration or 0) * rate))
    # Exemplars and positions before any job file exists: bad guidance leaves nothing behind.
    attach_guide(colorizer, spec, src, rate, estimate)
    settings = job_settings(cfg, colorizer)
    source = source_identity(src)
    if not job_dir.parent.is_dir():
        raise OutputError(f"the folder of the job directory does not exist: {job_dir.parent}")
    # The folder goes when the job is over only if a job made it (this run or an earlier one):
    # an empty folder the user made for --job-dir stays.
    own_dir = not job_dir.exists() or (job_dir / MANIFEST_NAME).is_file()
    try:
        job_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the job directory {job_dir}: {exc.strerror}") from exc
    t0 = time.perf_counter()
    done_here = 0
    removed = False
    manifest: JobManifest | None = None
    try:
        with job_lock(job_dir):
            try:
                with _sigterm_as_interrupt():
                    manifest = _open_manifest(
                        job_dir, cfg, source, settings, stored_config(cfg, src, out, job_dir)
                    )
                    _remove_stale_temps(job_dir, out)
                    if not manifest.planned:
                        _plan(manifest, src, cfg, colorizer, job_dir)
                    if colorizer.guide is not None:
                        # Guidance follows shots: the plan's cuts, as every chunk sees them.
                        colorizer.guide.set_cuts(manifest.cuts or [])
                    todo = [c for c in manifest.chunks if not c.done]
                    progress = Progress(sum(c.frames for c in todo), enabled=not cfg.quiet)
                    counter = _Counter()
                    try:
                        with logging_redirect(not cfg.quiet):
                            for chunk in todo:
                                need = chunk_estimate(manifest, chunk, info, cfg)
                                check_disk(job_dir, need, f"chunk {chunk.index}")
                                _run_chunk(
                                    manifest, chunk, src, info, cfg, colorizer, job_dir,
                                    progress, counter,
                                )
                    finally:
                        progress.close()
                    done_here = progress.count
                    _finish(manifest, src, out, info, job_dir)
                if not cfg.keep_chunks:
                    # Under the lock, so no other process can be starting this job meanwhile.
                    remove_job_files(job_dir)
                    removed = True
            except KeyboardInterrupt:
                raise JobInterrupted(str(job_dir)) from None
            except Exception as exc:
                if manifest is None:
                    raise  # refused before the job was this run's (settings changed...)
                if _is_disk_full(exc) and not isinstance(exc, OutputError):
                    # E.g. the manifest's own write: the old manifest is still in force.
                    raise disk_full_error("the job's manifest", job_dir) from exc
                if isinstance(exc, OutputError):
                    raise  # low or full disk: the user frees space and runs it again
                if manifest.chunks_done == 0:
                    # Nothing worth resuming (the planning pass is quick to redo): leave no
                    # half-made job behind for an error that a rerun would meet again.
                    remove_job_files(job_dir)
                    removed = True
                elif (
                    isinstance(exc, FilmcolorError)
                    and not isinstance(exc, JobStateError)
                    and "--restart" not in str(exc)  # resuming would not help: no note
                ):
                    _kept_note(exc, manifest, job_dir)
                raise
    finally:
        if removed and own_dir:
            _remove_dir_if_empty(job_dir)
    return RunSummary(out, done_here, time.perf_counter() - t0)


def status_lines(job_dir: Path) -> list[str]:
    """What ``filmcolor status`` prints: progress, estimated time left, and whether it runs.

    Raises:
        JobStateError: no readable manifest in ``job_dir``.
    """
    import fcntl

    manifest = JobManifest.load(job_dir)
    lines = [f"job: {job_dir}", f"source: {manifest.config.get('input')}",
             f"output: {manifest.config.get('output')}"]
    running = False
    lock = job_dir / LOCK_NAME
    if lock.exists():
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running = True
        finally:
            os.close(fd)
    if not manifest.planned:
        lines.append("state: planning not finished (finding scene cuts)")
    else:
        total = manifest.total_frames or 0
        lines.append(f"chunks: {manifest.chunks_done}/{len(manifest.chunks)} done")
        pct = 100 * manifest.frames_done / total
        lines.append(f"frames: {manifest.frames_done}/{total} ({pct:.1f} %)")
        left = manifest.seconds_left()
        if manifest.chunks_done == len(manifest.chunks):
            lines.append("time left: joining only")
        elif left is not None:
            lines.append(f"time left: about {_hms(left)}")
        else:
            lines.append("time left: unknown until the first chunk is done")
    lines.append("state: running" if running else
                 f"state: stopped; resume with: filmcolor resume {job_dir}")
    return lines


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
