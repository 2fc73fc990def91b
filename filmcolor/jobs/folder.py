"""The job folder: its names, and what a job may create and delete there.

A job directory holds only the job's own files (:func:`is_job_file`), and the job deletes them
when it is done; nothing else is ever deleted. So a ``--job-dir`` that holds anything else and
no manifest is refused before anything is written, the folder of the source or the output is
refused, and the folder itself is removed only when nothing else is left in it
(:func:`check_job_dir`, :func:`remove_job_files`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from filmcolor.errors import JobStateError
from filmcolor.jobs.manifest import LOCK_NAME, MANIFEST_NAME

logger = logging.getLogger("filmcolor")

JOB_DIR_SUFFIX: str = ".filmcolor-job"
"""``film.colour.mp4`` -> ``film.colour.mp4.filmcolor-job/`` (the default job directory)."""

CHUNK_SUFFIX: str = ".mp4"
"""Container of the chunk files: MP4 keeps the source time base exactly (MKV rounds to 1 ms)."""

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


def default_job_dir(out: Path) -> Path:
    """The job directory used when ``--job-dir`` is not given."""
    return out.with_name(out.name + JOB_DIR_SUFFIX)


def final_temp_path(out: Path, pid: int | None = None) -> Path:
    """``.film.filmcolor-join-<pid>.mp4``: where the remux writes before the rename to ``out``.

    Hidden, beside ``out`` (same file system, so the rename is atomic), with ``out``'s suffix so
    FFmpeg picks the same container.
    """
    return out.with_name(f".{out.stem}.{FINAL_TMP_TAG}-{pid or os.getpid()}{out.suffix}")


def joined_temp_path(job_dir: Path) -> Path:
    """``joined-<pid>.mp4.tmp``: the chunks joined into one video-only file, in the job folder.

    Unique to this process: after a SIGKILL during the remux, FFmpeg may still be writing the
    killed run's temporary (where the kernel cannot stop it, see ``run_remux``); a resumed run
    must never share that file. :func:`remove_stale_temps` deletes it.
    """
    return job_dir / f"joined-{os.getpid()}{CHUNK_SUFFIX}.tmp"


def same_device(a: Path, b: Path) -> bool:
    """Whether two existing paths live on one file system (``False`` when either is missing)."""
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


def remove_stale_temps(job_dir: Path, out: Path) -> None:
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


def remove_dir_if_empty(job_dir: Path) -> None:
    """Remove the job folder if nothing is left in it (a file of the user's keeps it)."""
    with contextlib.suppress(OSError):  # not empty, or already gone
        job_dir.rmdir()
