"""Disk policy of a job: the free-space check before each step, and what a full disk means.

A job runs for hours; the disk filling up half-way must cost nothing but a rerun. So each chunk,
the join and the final output are checked against an estimate of what they will write before
they start, and a write that fills the disk anyway becomes one line saying what to free (the
job stays resumable).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from filmcolor.errors import OutputError, RemuxError
from filmcolor.jobs.manifest import Chunk, JobManifest

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


def chunk_estimate(manifest: JobManifest, chunk: Chunk, info, cfg) -> int:
    """Bytes the chunk's file will probably take, for the free-space check before it.

    From the measured size of the chunks already done (times :data:`DISK_FACTOR`, as scenes
    differ in bitrate); before the first one, from the frame size and
    :func:`bits_per_pixel_bound`, so even the first chunk is checked against a real figure.

    Args:
        manifest: the job (its finished chunks' sizes).
        chunk: the chunk about to run.
        info: the source's :class:`~filmcolor.io.probe.SourceInfo` (frame size, bit depth).
        cfg: the run's :class:`~filmcolor.config.RunConfig` (codec and CRF).
    """
    done = [c for c in manifest.chunks if c.done and c.bytes]
    if done:
        per_frame = sum(c.bytes for c in done) / sum(c.frames for c in done)
        return int(per_frame * chunk.frames * DISK_FACTOR)
    bpp = bits_per_pixel_bound(cfg.codec, cfg.crf, getattr(info, "bit_depth", 8) or 8)
    return int(info.width * info.height * chunk.frames * bpp / 8)


def is_disk_full(exc: BaseException) -> bool:
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
