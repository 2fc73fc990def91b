"""Fault injection, end to end through the CLI (#4): whatever stops a film run, the next run
finishes it with the frames of an uninterrupted run, and nothing is left behind.

1. SIGKILL at points spread over every phase (planning, colouring, recording a chunk, the
   join, the remux), then the same command again.
2. A full disk in every phase, on a real (small) tmpfs: exit 5 with one line, the job kept,
   no partial output; then space is freed and the job finishes.
3. Two runs on one job folder at once: the second is refused by the lock, the first finishes.
4. A manifest truncated, edited by hand or overwritten with garbage: refused with one line, and
   nothing is written at the output path.

Every run is a subprocess (``python -m filmcolor``), as a user would start it, on one 120-frame
clip (cuts at 40 and 80, 6 chunks of at most 24 frames) with the ``tiny`` model and the default
encoder (libx264); decoded frames are compared as rgb24 arrays. ``OMP_NUM_THREADS=1`` only
makes the runs faster on a busy machine (torch's thread pool spins otherwise); the output is the
same byte for byte with any thread count.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from filmcolor.jobs import faults, folder
from filmcolor.jobs.manifest import LOCK_NAME, MANIFEST_NAME, JobManifest
from tests.media import Clip, Film, decode_film, make_clip

pytestmark = pytest.mark.slow

N_FRAMES = 120
CUTS = (40, 80)
CHUNK_FRAMES = 24
N_CHUNKS = 6  # (0, 24) (24, 40) (40, 64) (64, 80) (80, 104) (104, 120)
ARGS = ("--model", "tiny", "--chunk-frames", str(CHUNK_FRAMES), "-q")
TIMEOUT = 300


# -- helpers ------------------------------------------------------------------------------------
def cli_env(kill: str | None = None, debug: bool = False) -> dict[str, str]:
    """The environment of a CLI subprocess: no inherited kill point; one-line errors unless
    ``debug`` (then an unexpected error prints its traceback, for the test's report)."""
    env = {k: v for k, v in os.environ.items()
           if k not in (faults.KILL_ENV, faults.KILL_ONCE_ENV)}
    env["FILMCOLOR_DEBUG"] = "1" if debug else "0"
    env["OMP_NUM_THREADS"] = "1"
    if kill is not None:
        env[faults.KILL_ENV] = kill
    return env


def film_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "filmcolor", str(src), "-o", str(out), *ARGS, *extra]


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("filmcolor: error: "), lines[0]
    return lines[0]


def hidden_files(where: Path) -> list[str]:
    return sorted(p.name for p in where.iterdir() if p.name.startswith("."))


def assert_finished(out: Path, ref: Film, n_frames: int = N_FRAMES) -> None:
    """``out`` holds the reference's frames and sound; no temporaries, no job folder left."""
    got = decode_film(out)
    assert len(got.frames) == n_frames == len(ref.frames)
    assert got.pts == ref.pts
    differ = [i for i, (a, b) in enumerate(zip(got.frames, ref.frames, strict=True))
              if not np.array_equal(a, b)]
    assert not differ, f"frames {differ[:10]} differ from the uninterrupted run"
    assert got.audio, "the sound track is missing"
    assert hidden_files(out.parent) == []
    assert not folder.default_job_dir(out).exists()


def chunks_done(job: Path) -> int:
    return JobManifest.load(job).chunks_done


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """120 frames, cuts at 40 and 80, with sound: long enough for every kill point below."""
    return make_clip(tmp_path_factory.mktemp("faults") / "film.mp4", n_frames=N_FRAMES,
                     cuts=CUTS)


@pytest.fixture(scope="module")
def reference(film: Clip, tmp_path_factory: pytest.TempPathFactory) -> Film:
    """The frames of one uninterrupted run, with the settings of every run here."""
    out = tmp_path_factory.mktemp("reference") / "ref.mp4"
    r = run(film_cmd(film.path, out), cli_env(debug=True))
    assert r.returncode == 0, r.stderr
    ref = decode_film(out)
    assert len(ref.frames) == N_FRAMES and ref.audio
    return ref


# -- 1. SIGKILL in every phase ------------------------------------------------------------------
KILLS: dict[str, int | None] = {
    # point: chunks recorded done when it fires (None: not planned yet)
    "planning:5": None,
    "planning:110": None,
    "chunk:3": 0,
    "chunk:30": 1,  # frame 6 of chunk 1 (chunk 0 holds 24 frames)
    "chunk:100": 4,  # inside chunk 4 (frames 80-104)
    "done:0": 1,
    "done:2": 3,
    "done:5": 6,  # the last chunk recorded, nothing joined yet
    "join:1": 6,
    "join:60": 6,
    "join:120": 6,  # the last packet
    "remux:0": 6,  # before FFmpeg starts
    "remux:1": 6,  # FFmpeg wrote the remuxed temporary
    "remux:2": 6,  # verified, not renamed yet
}


@pytest.mark.parametrize("point", list(KILLS))
def test_sigkill_anywhere_then_same_command_finishes(
    point: str, film: Clip, reference: Film, tmp_path: Path
) -> None:
    out = tmp_path / "film.colour.mp4"
    job = folder.default_job_dir(out)
    cmd = film_cmd(film.path, out)
    r = run(cmd, cli_env(kill=point, debug=True))
    assert r.returncode == -signal.SIGKILL, f"{point} did not fire: exit {r.returncode}\n{r.stderr}"
    assert not out.exists()
    manifest = JobManifest.load(job)
    if KILLS[point] is None:
        assert not manifest.planned
    else:
        assert manifest.chunks_done == KILLS[point] and len(manifest.chunks) == N_CHUNKS
    # The remux writes a hidden temporary beside the output; killed after FFmpeg, it stays
    # until the next run removes it.
    assert len(hidden_files(tmp_path)) == (1 if point in ("remux:1", "remux:2") else 0)

    r = run(cmd, cli_env(debug=True))
    assert r.returncode == 0, r.stderr
    assert_finished(out, reference)


# -- 2. a full disk in every phase ----------------------------------------------------------------
TMPFS_SIZE = 24 << 20
"""Room for a job (which keeps 16 MiB free beyond its estimates) before the filler goes in."""

PAGE = 4096


@dataclass
class SmallDisk:
    """A tmpfs mounted for one test, and a filler file that leaves an exact amount free."""

    root: Path

    @property
    def filler(self) -> Path:
        return self.root / "filler"

    def free(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> None:
        """Leave ``leave`` bytes (whole pages) free."""
        size = self.free() - leave
        assert size > 0
        with open(self.filler, "wb") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        assert self.free() == leave

    def make_room(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if not sys.platform.startswith("linux"):
        pytest.skip("needs a Linux tmpfs")
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs to fill needs root and mount(8)")
    root = tmp_path / "disk"
    root.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(root)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)


# The job checks the free space before every chunk and before the join, keeping 16 MiB beyond
# its estimate, so on a real disk an ENOSPC inside a chunk, the join or FFmpeg's remux happens
# only when something else fills the disk meanwhile. To let the tmpfs's own ENOSPC reach those
# writes (no faked exception), this wrapper turns the check off in the subprocess.
NO_DISK_CHECK = (
    "import sys\n"
    "import filmcolor.jobs.engine as engine, filmcolor.jobs.finish as finish\n"
    "engine.check_disk = finish.check_disk = lambda *args, **kwargs: None\n"
    "from filmcolor.__main__ import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@dataclass(frozen=True)
class DiskCase:
    kill: str | None  # brings the job to the phase (None: a new job)
    leave: int  # bytes left free by the filler
    check: bool  # the job's own free-space check on (else ENOSPC from the file system)
    line: str  # the error line after "filmcolor: error: " ({job}, {disk} filled in)
    done: int | None  # chunks recorded after the failure (None: no plan / no manifest)
    resume: bool  # finish with `filmcolor resume JOB` (else the same command)


DISK_CASES = {
    # A new job on a full disk: its very first manifest write fails.
    "new-job": DiskCase(None, 0, True, "disk full: writing the job's manifest in {job} failed",
                        None, False),
    # The planning pass's manifest (the plan) cannot be written.
    "planning": DiskCase("planning:5", 0, True,
                         "disk full: writing the job's manifest in {job} failed", None, True),
    # The check before chunk 1 (the estimate now comes from chunk 0's size).
    "chunk-check": DiskCase("done:0", 1 << 20, True, "low disk space: 1 MiB free in {job}, "
                            "chunk 1 needs about", 1, False),
    "chunk-enospc": DiskCase("done:0", 2 * PAGE, False,
                             "disk full: writing chunk 1 in {job} failed", 1, True),
    # The check before the join (chunks joined and final output side by side).
    "join-check": DiskCase("done:5", 1 << 20, True, "low disk space: 1 MiB free in {job}, "
                           "joining the chunks and the final output needs about", 6, True),
    "join-enospc": DiskCase("done:5", 2 * PAGE, False,
                            "disk full: writing the joined chunks in {job} failed", 6, False),
    # Killed before FFmpeg: the rerun drops the stale join and joins again (the same size),
    # leaving 2 pages for FFmpeg's remuxed output.
    "remux-enospc": DiskCase("remux:0", 2 * PAGE, False,
                             "disk full: writing the final output in {disk} failed", 6, True),
}


@pytest.mark.parametrize("case", list(DISK_CASES))
def test_full_disk_in_every_phase(
    case: str, film: Clip, reference: Film, small_disk: SmallDisk
) -> None:
    c = DISK_CASES[case]
    out = small_disk.root / "film.colour.mp4"
    job = folder.default_job_dir(out)
    cmd = film_cmd(film.path, out)
    if c.kill is not None:
        r = run(cmd, cli_env(kill=c.kill))
        assert r.returncode == -signal.SIGKILL, r.stderr
    small_disk.fill(c.leave)

    failing = cmd if c.check else [sys.executable, "-c", NO_DISK_CHECK, *cmd[3:]]
    r = run(failing, cli_env())
    assert r.returncode == 5, r.stderr
    line = one_error_line(r)
    want = "filmcolor: error: " + c.line.format(job=job, disk=small_disk.root)
    assert line.startswith(want), line
    assert "disk" in line and line.endswith("(finished chunks are kept)"), line
    assert not out.exists()
    assert hidden_files(small_disk.root) == []
    assert not list(job.glob("*.tmp"))  # no partial chunk, join or manifest
    if c.done is not None:
        assert chunks_done(job) == c.done
    elif c.kill is not None:
        assert not JobManifest.load(job).planned
    else:  # a new job that could not write its first manifest leaves no folder behind
        assert not job.exists()

    small_disk.make_room()
    again = ([sys.executable, "-m", "filmcolor", "resume", str(job), "-q"] if c.resume
             else cmd)
    r = run(again, cli_env(debug=True))
    assert r.returncode == 0, r.stderr
    assert_finished(out, reference)
    assert sorted(p.name for p in small_disk.root.iterdir()) == [out.name]


# -- 3. two runs on one job folder at once ------------------------------------------------------
def test_second_run_on_a_running_job_is_refused(
    film: Clip, reference: Film, tmp_path: Path
) -> None:
    """The first run is frozen (SIGSTOP) as soon as it holds the lock, so the second one meets a
    running job however fast either is; then it goes on and finishes as if alone."""
    out = tmp_path / "film.colour.mp4"
    job = folder.default_job_dir(out)
    cmd = film_cmd(film.path, out)
    first = subprocess.Popen(cmd, env=cli_env(debug=True), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        lock = job / LOCK_NAME
        while time.monotonic() < deadline and first.poll() is None:
            with contextlib.suppress(OSError):
                if lock.read_text().strip() == str(first.pid):
                    break
            time.sleep(0.01)
        else:
            pytest.fail(f"the first run never held the lock (exit {first.poll()})")
        os.kill(first.pid, signal.SIGSTOP)
        try:
            before = sorted(p.name for p in job.iterdir())
            r = run(cmd, cli_env())
            assert first.poll() is None
            assert sorted(p.name for p in job.iterdir()) == before  # nothing touched
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert r.returncode == 7, r.stderr
        line = one_error_line(r)
        assert "in use" in line and f"(pid {first.pid})" in line and str(job) in line
        assert not out.exists()
        _, err = first.communicate(timeout=TIMEOUT)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert_finished(out, reference)


# -- 4. a damaged or hand-edited manifest -------------------------------------------------------
@pytest.fixture(scope="module")
def stopped_job(film: Clip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A job killed after chunk 1 was recorded (2 of 6 chunks done), to copy."""
    out = tmp_path_factory.mktemp("stopped") / "film.colour.mp4"
    r = run(film_cmd(film.path, out), cli_env(kill="done:1"))
    assert r.returncode == -signal.SIGKILL, r.stderr
    job = folder.default_job_dir(out)
    assert chunks_done(job) == 2
    return job


def _edit(change: Callable[[dict], None], unseal: bool = False) -> Callable[[bytes], bytes]:
    """An edit by hand of the manifest's JSON; ``unseal`` also drops its digest, as in a
    manifest written before the seal existed (only the plan's own checks can catch the edit)."""

    def edit(raw: bytes) -> bytes:
        data = json.loads(raw)
        change(data)
        if unseal:
            del data["digest"]
        return json.dumps(data, indent=1).encode()

    return edit


def _set_chunk(i: int, **values: object) -> Callable[[dict], None]:
    return lambda data: data["chunks"][i].update(values)


UNREADABLE = "the job manifest {manifest} is unreadable"
SEAL_BROKEN = ("the job manifest {manifest} is unreadable or was edited (its content does not "
               "match its digest")
EDITED = "the job manifest {manifest} is damaged or was edited"
_HAND_EDITS: dict[str, tuple[Callable[[dict], None], str]] = {
    # A setting that changes pixels: the job is not this command's any more.
    "setting": (lambda d: d["settings"].update(smoothing=1.0),
                "settings changed since the job started: smoothing 1.0 -> 0.5"),
    # Frame counts: a finished chunk's (its file still holds 24 frames) and one still to do.
    "done-chunk-frames": (_set_chunk(0, end=20), EDITED),
    "todo-chunk-frames": (_set_chunk(2, end=60), EDITED),
    "chunk-dropped": (lambda d: d["chunks"].pop(), EDITED),
    "wrong-type": (_set_chunk(3, start="64"), EDITED),
}
MANIFEST_EDITS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda raw: raw[: len(raw) // 2], UNREADABLE),
    "garbage": (lambda raw: random.Random(7).randbytes(len(raw)), UNREADABLE),
    "json-null": (lambda raw: b"null", UNREADABLE),
    # Any edit of a sealed manifest breaks its seal...
    **{name: (_edit(change), SEAL_BROKEN) for name, (change, _) in _HAND_EDITS.items()},
    # ...and one without a seal (an older filmcolor's) is still checked field by field.
    **{f"{name}-unsealed": (_edit(change, unseal=True), expected)
       for name, (change, expected) in _HAND_EDITS.items()},
}


@pytest.mark.parametrize("case", list(MANIFEST_EDITS))
def test_damaged_or_edited_manifest_is_refused(
    case: str, film: Clip, stopped_job: Path, tmp_path: Path
) -> None:
    change, expected = MANIFEST_EDITS[case]
    out = tmp_path / "film.colour.mp4"
    job = folder.default_job_dir(out)
    shutil.copytree(stopped_job, job)
    manifest = job / MANIFEST_NAME
    edited = change(manifest.read_bytes())
    manifest.write_bytes(edited)
    before = sorted(p.name for p in job.iterdir())

    r = run(film_cmd(film.path, out), cli_env())
    assert r.returncode == 7, f"exit {r.returncode}: {r.stderr}"
    line = one_error_line(r)
    assert line.startswith("filmcolor: error: " + expected.format(manifest=manifest)), line
    assert "--restart" in line
    assert not out.exists() and hidden_files(tmp_path) == []
    # Refused before anything was touched: the finished chunks are still there.
    assert sorted(p.name for p in job.iterdir()) == before
    assert manifest.read_bytes() == edited


def test_edited_timestamp_of_a_finished_chunk_is_refused(
    film: Clip, stopped_job: Path, reference: Film, tmp_path: Path
) -> None:
    out = tmp_path / "film.colour.mp4"
    job = folder.default_job_dir(out)
    shutil.copytree(stopped_job, job)
    manifest = job / MANIFEST_NAME
    manifest.write_bytes(_edit(_set_chunk(0, first_pts=1001))(manifest.read_bytes()))
    r = run(film_cmd(film.path, out), cli_env())
    if r.returncode == 0:  # never exit 0 with a wrong film
        assert decode_film(out).pts == reference.pts
    else:
        assert r.returncode == 7 and not out.exists()
        one_error_line(r)
