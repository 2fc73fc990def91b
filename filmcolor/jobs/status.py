"""``filmcolor status``: what a job folder says about its progress, as lines of text."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from filmcolor.jobs.manifest import LOCK_NAME, JobManifest


def is_running(job_dir: Path) -> bool:
    """Whether a process holds the job's lock right now (a killed one never does)."""
    lock = job_dir / LOCK_NAME
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def status_lines(job_dir: Path) -> list[str]:
    """What ``filmcolor status`` prints: progress, estimated time left, and whether it runs.

    Raises:
        JobStateError: no readable manifest in ``job_dir``.
    """
    manifest = JobManifest.load(job_dir)
    lines = [f"job: {job_dir}", f"source: {manifest.config.get('input')}",
             f"output: {manifest.config.get('output')}"]
    running = is_running(job_dir)
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
            lines.append(f"time left: about {hms(left)}")
        else:
            lines.append("time left: unknown until the first chunk is done")
    lines.append("state: running" if running else
                 f"state: stopped; resume with: filmcolor resume {job_dir}")
    return lines


def hms(seconds: float) -> str:
    """``3725.4`` -> ``"1:02:05"``."""
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
