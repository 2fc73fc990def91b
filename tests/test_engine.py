"""The job engine (#14): its events, resume, other executors, failures, and the CLI's view of it.

Every film run is driven by :func:`filmcolor.jobs.engine.run_job` through an
:class:`~filmcolor.jobs.executor.Executor` and reports typed events. These tests check what a
front end may rely on: the documented order and figures of the events (fresh and resumed runs),
that a chunk is a pure, picklable function of spec + plan + index (a process pool gives the same
frames as the local executor, whatever order its chunks finish in), what a failing executor
leaves behind, the disk check before each submission, and the terminal's bars and log lines.

All runs use the ``tiny`` model on ``clip_ntsc`` (48 frames, cuts at 16 and 32) with 12-frame
chunks: six chunks, ``(0, 12) (12, 16) (16, 28) (28, 32) (32, 44) (44, 48)``.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import av
import numpy as np
import pytest

import filmcolor.jobs.engine as engine_mod
from filmcolor.__main__ import main
from filmcolor.api import run
from filmcolor.config import RunConfig
from filmcolor.errors import EncodeError, JobInterrupted, SourceOpenError
from filmcolor.jobs import events as ev
from filmcolor.jobs import faults, folder
from filmcolor.jobs.chunk import build_job_colorizer, run_chunk
from filmcolor.jobs.executor import ChunkOutcome, ChunkTask, Executor, LocalExecutor
from filmcolor.jobs.manifest import JobManifest
from filmcolor.summary import RunSummary
from filmcolor.terminal import TerminalProgress
from tests.media import Clip, make_image

CHUNK_FRAMES = 12
CHUNKS = 6
"""Chunks of ``clip_ntsc`` at :data:`CHUNK_FRAMES` (see the module docstring)."""


# -- helpers ---------------------------------------------------------------------------------------
def config(clip: Clip, out: Path) -> RunConfig:
    """The settings of every run here (the resumed ones must match, or the job is refused)."""
    return RunConfig(input=clip.path, output=out, model="tiny", chunk_frames=CHUNK_FRAMES,
                     quiet=True)


def decoded(path: Path) -> list[tuple[int, tuple[bytes, ...]]]:
    """``(pts, (Y, U, V))`` of each decoded frame, planes cropped to their size (no padding)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        out = []
        for f in c.decode(stream):
            planes = tuple(
                np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].tobytes()
                for p in f.planes
            )
            out.append((f.pts, planes))
        return out


LETTERS = {
    ev.Planning: "P", ev.PlanningProgress: "p", ev.Planned: "D", ev.ChunkStarted: "S",
    ev.FramesDone: "f", ev.ChunkDone: "C", ev.Finished: "F", ev.Failed: "X",
}


def shape(events: list[ev.Event]) -> str:
    """The event sequence as letters (see :data:`LETTERS`), to match against a grammar."""
    return "".join(LETTERS[type(e)] for e in events)


def of(events: list[ev.Event], kind: type) -> list:
    return [e for e in events if type(e) is kind]


def check_common(events: list[ev.Event], job: Path) -> None:
    """What every run's events share: the job folder, and times that never go back."""
    assert {e.job for e in events} == {str(job)}
    times = [e.time for e in events]
    assert times == sorted(times)


def check_groups(events: list[ev.Event]) -> None:
    """With one chunk in flight, each ChunkStarted..ChunkDone group is about a single chunk."""
    current = None
    for e in events:
        if isinstance(e, ev.ChunkStarted):
            current = e.index
        elif isinstance(e, ev.FramesDone | ev.ChunkDone):
            assert e.index == current, e


@pytest.fixture(scope="module")
def reference(clip_ntsc: Clip, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run with the local executor: ``(output, its frames, its events)``."""
    out = tmp_path_factory.mktemp("engine_ref") / "ref.mp4"
    events: list[ev.Event] = []
    summary = run(config(clip_ntsc, out), on_event=events.append)
    assert summary.frames == clip_ntsc.n_frames
    return out, decoded(out), events


# -- 1. the events of a run ------------------------------------------------------------------------
def test_events_of_a_run(reference, clip_ntsc: Clip) -> None:
    """A fresh run reports Planning, its progress, Planned, one group per chunk and Finished, in
    that order, with figures that add up to the clip's frame count."""
    out, frames, events = reference
    n = clip_ntsc.n_frames
    assert len(frames) == n
    check_common(events, folder.default_job_dir(out))
    # The documented order; the local executor reports frames, so each chunk has some.
    assert re.fullmatch(r"Pp+D(Sf+C)+F", shape(events)), shape(events)
    check_groups(events)

    (planning,) = of(events, ev.Planning)
    assert planning.frames_total == n
    progress = [e.frames_done for e in of(events, ev.PlanningProgress)]
    assert progress == sorted(progress) and progress[-1] == n
    assert {e.frames_total for e in of(events, ev.PlanningProgress)} == {n}

    (planned,) = of(events, ev.Planned)
    done = of(events, ev.ChunkDone)
    assert (planned.frames_total, planned.frames_todo) == (n, n)
    assert planned.chunks == planned.chunks_todo == len(done) == CHUNKS
    assert planned.shots == len(clip_ntsc.cuts) + 1
    assert [e.index for e in done] == list(range(CHUNKS))
    assert [e.index for e in of(events, ev.ChunkStarted)] == list(range(CHUNKS))
    # What each chunk announced is what it wrote, and the chunks cover the film once.
    assert [e.frames for e in of(events, ev.ChunkStarted)] == [e.frames for e in done]
    assert sum(e.frames for e in done) == n
    assert all(e.bytes > 0 and e.seconds > 0 for e in done)

    frames_done = of(events, ev.FramesDone)
    assert sum(e.frames for e in frames_done) == n
    assert [e.frames_done for e in frames_done] == list(
        np.cumsum([e.frames for e in frames_done]))
    assert {e.frames_todo for e in frames_done} == {n}
    assert frames_done[-1].frames_done == frames_done[-1].frames_todo

    finished = events[-1]
    assert isinstance(finished, ev.Finished)
    assert finished.frames == n and finished.output == str(out) and finished.seconds > 0


@pytest.mark.slow
def test_a_lost_sigterm_still_stops_the_job_before_it_finishes(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM whose KeyboardInterrupt is lost (Python ignores exceptions raised in a weakref
    callback or ``__del__`` that the signal interrupted) must not let the job finish: it ends
    interrupted, with its chunks kept and no output, so a restarted studio can resume it."""
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)

    def lost_sigterm(name: str, n: int) -> None:
        if (name, n) == ("done", 0):
            try:
                signal.raise_signal(signal.SIGTERM)  # the engine's handler runs here
            except KeyboardInterrupt:
                pass  # ... and its interrupt is lost, as in a __del__

    monkeypatch.setattr(faults, "kill_point", lost_sigterm)
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: Ray installs its own
    with pytest.raises(JobInterrupted):
        run(config(clip_ntsc, out))
    monkeypatch.undo()
    assert not out.exists()
    manifest = JobManifest.load(job)
    assert manifest.chunks_done == len(manifest.chunks) > 1  # the rest of the work was kept
    # The handler is gone with the job: the rerun finishes from the manifest.
    assert signal.getsignal(signal.SIGTERM) is before
    summary = run(config(clip_ntsc, out))
    assert summary.frames == 0 and out.exists()


# -- 2. resume -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_events_and_output(
    reference, clip_ntsc: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped after its first chunk ends with Failed(kept=True); the rerun reads the plan
    from the manifest (no Planning), colours only the five chunks left, and gives the same
    output as an uninterrupted run."""
    _, ref_frames, ref_events = reference
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)

    def ctrl_c(name: str, n: int) -> None:
        if (name, n) == ("done", 0):
            raise KeyboardInterrupt  # as Ctrl-C right after chunk 0 is recorded

    monkeypatch.setattr(faults, "kill_point", ctrl_c)
    first: list[ev.Event] = []
    with pytest.raises(JobInterrupted):
        run(config(clip_ntsc, out), on_event=first.append)
    monkeypatch.undo()
    check_common(first, job)
    assert re.fullmatch(r"Pp+DSf+X", shape(first)), shape(first)
    failed = first[-1]
    assert failed.kept and "interrupted" in failed.error and str(job) in failed.error
    assert JobManifest.load(job).chunks_done == 1 and not out.exists()

    second: list[ev.Event] = []
    run(config(clip_ntsc, out), on_event=second.append)
    check_common(second, job)
    # No planning pass this time: Planned comes first, straight from the manifest.
    assert re.fullmatch(r"D(Sf+C)+F", shape(second)), shape(second)
    check_groups(second)
    chunk0 = of(ref_events, ev.ChunkDone)[0].frames
    (planned,) = of(second, ev.Planned)
    assert planned.frames_total == clip_ntsc.n_frames and planned.chunks == CHUNKS
    assert planned.chunks_todo == CHUNKS - 1
    assert planned.frames_todo == clip_ntsc.n_frames - chunk0
    assert [e.index for e in of(second, ev.ChunkDone)] == list(range(1, CHUNKS))
    frames_done = of(second, ev.FramesDone)
    assert frames_done[-1].frames_done == frames_done[-1].frames_todo == planned.frames_todo
    # Finished counts this run's frames only.
    assert second[-1].frames == planned.frames_todo
    assert decoded(out) == ref_frames
    assert not job.exists()


# -- 3. another executor ---------------------------------------------------------------------------
class PoolExecutor(Executor):
    """Chunks in two spawned worker processes, each building its own model from the spec (what
    a Ray executor does); answers with the newest finished chunk, so chunks finish out of order
    for certain rather than by a race."""

    slots = 2

    def __init__(self) -> None:
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        self.futures: list[tuple[int, concurrent.futures.Future]] = []

    def submit(self, task: ChunkTask) -> None:
        # Only the picklable task crosses the process boundary; colorizer None: built there.
        self.futures.append(
            (task.index, self.pool.submit(run_chunk, task.spec, task.plan, task.index)))

    def next_done(self) -> ChunkOutcome:
        concurrent.futures.wait([f for _, f in self.futures])
        index, future = self.futures.pop()  # the last submitted: never the oldest first
        try:
            return ChunkOutcome(index, result=future.result())
        except Exception as exc:  # noqa: BLE001 - an outcome, as the interface asks
            return ChunkOutcome(index, error=exc)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.slow
def test_process_pool_gives_the_same_frames(reference, clip_ntsc: Clip, tmp_path: Path) -> None:
    """Chunks coloured in other processes, from spec + plan + index alone, and finished out of
    order, join into exactly the frames the local executor makes."""
    _, ref_frames, _ = reference
    out = tmp_path / "pool.mp4"
    events: list[ev.Event] = []
    run(config(clip_ntsc, out), on_event=events.append, executor=PoolExecutor())
    check_common(events, folder.default_job_dir(out))
    done = [e.index for e in of(events, ev.ChunkDone)]
    assert sorted(done) == list(range(CHUNKS))
    assert done != sorted(done)  # the join followed the manifest, not the order of arrival
    assert events[-1].frames == clip_ntsc.n_frames
    assert decoded(out) == ref_frames


class QuietExecutor(LocalExecutor):
    """Runs chunks like the local one but reports no frames (as a remote executor may not)."""

    def open(self, report) -> None:
        super().open(lambda index, frames: None)


@pytest.mark.slow
def test_progress_counts_whole_chunks_when_the_executor_reports_none(
    reference, clip_ntsc: Clip, tmp_path: Path
) -> None:
    """An executor may report no frames ("the engine counts whole chunks", jobs.executor): the
    FramesDone events a front end draws its bar from must still reach the frames to do."""
    out = tmp_path / "quiet.mp4"
    events: list[ev.Event] = []
    run(config(clip_ntsc, out), on_event=events.append, executor=QuietExecutor())
    assert decoded(out) == reference[1]
    frames_done = of(events, ev.FramesDone)
    assert sum(e.frames for e in frames_done) == clip_ntsc.n_frames, shape(events)
    assert frames_done[-1].frames_done == frames_done[-1].frames_todo


# -- 4. a failing executor -------------------------------------------------------------------------
class FailingExecutor(Executor):
    """One chunk at a time in this process; chunk ``fail`` comes back as an encoder failure."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.queue: deque[ChunkTask] = deque()
        self.colorizer = None
        self.closed = 0

    def submit(self, task: ChunkTask) -> None:
        self.queue.append(task)

    def next_done(self) -> ChunkOutcome:
        task = self.queue.popleft()
        if task.index == self.fail:
            return ChunkOutcome(task.index, error=EncodeError("boom"))
        if self.colorizer is None:
            self.colorizer = build_job_colorizer(task.spec, task.plan)
        result = run_chunk(task.spec, task.plan, task.index, self.colorizer,
                           on_frames=lambda n: self._report(task.index, n))
        return ChunkOutcome(task.index, result=result)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.slow
def test_failing_executor_keeps_the_job_for_resume(
    reference, clip_ntsc: Clip, tmp_path: Path
) -> None:
    """A chunk's failure stops the run with that error, the two finished chunks kept and the
    line saying how to resume; ``filmcolor resume`` then makes the uninterrupted output."""
    _, ref_frames, _ = reference
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)
    executor = FailingExecutor(fail=2)
    events: list[ev.Event] = []
    with pytest.raises(EncodeError) as info:
        run(config(clip_ntsc, out), on_event=events.append, executor=executor)
    msg = str(info.value)
    assert msg.startswith("boom; ") and "(2/6 chunks done)" in msg
    assert msg.endswith(f"resume with: filmcolor resume {job}")
    assert JobManifest.load(job).chunks_done == 2
    assert [c.done for c in JobManifest.load(job).chunks] == [True, True] + [False] * 4
    assert executor.closed == 1  # stopped whatever else was running, once
    check_common(events, job)
    assert re.fullmatch(r"Pp+D(Sf+C){2}SX", shape(events)), shape(events)
    assert events[-1].kept and events[-1].error == msg
    assert not out.exists()

    assert main(["resume", str(job), "-q"]) == 0
    assert decoded(out) == ref_frames
    assert not job.exists()


# -- 5. the disk check -----------------------------------------------------------------------------
class TwoSlots(LocalExecutor):
    """The local executor with two chunks submitted at once (run one after the other)."""

    slots = 2


@pytest.mark.slow
def test_disk_checked_before_each_submission(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk's free-space check comes right before it is handed over, also when two are
    in flight (the second is checked before the first is done)."""
    log: list[tuple[str, object]] = []
    real = engine_mod.check_disk

    def check(path: Path, need: int, what: str) -> None:
        assert need > 0
        log.append(("check", what))
        real(path, need, what)

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.ChunkStarted):
            log.append(("start", e.index))
        elif isinstance(e, ev.ChunkDone):
            log.append(("done", e.index))

    monkeypatch.setattr(engine_mod, "check_disk", check)
    out = tmp_path / "film.mp4"
    run(config(clip_ntsc, out), on_event=on_event, executor=TwoSlots())
    assert out.is_file()
    checks = [i for i, item in enumerate(log) if item[0] == "check"]
    assert [log[i][1] for i in checks] == [f"chunk {k}" for k in range(CHUNKS)]
    assert all(log[i + 1] == ("start", k) for k, i in enumerate(checks))
    assert [item[1] for item in log if item[0] == "start"] == list(range(CHUNKS))
    # Two slots: chunk 1 is checked and started before chunk 0 is done.
    assert log.index(("start", 1)) < log.index(("done", 0))


# -- 6. the terminal -------------------------------------------------------------------------------
def test_terminal_progress_bars() -> None:
    """The planning bar follows the scanned frames; the colouring bar counts the frames to do and
    its clock starts at the first finished frame; Finished closes it; quiet draws nothing."""
    job = "job"
    progress = TerminalProgress(enabled=True)
    progress(ev.Planning(job, 50))
    planning = progress._bar
    assert planning is not None and planning.total == 50 and planning.desc == "finding cuts"
    for n in (10, 30, 50):
        progress(ev.PlanningProgress(job, n, 50))
        assert planning.n == n

    progress(ev.Planned(job, 50, chunks=4, shots=2, frames_todo=40, chunks_todo=3))
    bar = progress._bar
    assert bar is not planning and planning.disable  # the planning bar was closed
    assert bar.total == 40 and bar.desc == "colouring" and bar.n == 0
    created = bar.start_t
    time.sleep(0.05)  # the model's start-up, which the rate must not count
    progress(ev.FramesDone(job, 1, 3, 3, 40))
    assert progress._bar is bar and bar.n == 3 and bar.total == 40
    assert bar.start_t >= created + 0.04
    restarted = bar.start_t
    progress(ev.FramesDone(job, 1, 2, 5, 40))
    assert bar.n == 5 and bar.start_t == restarted  # restarted once, not at every event

    progress(ev.Finished(job, "out.mp4", 40, 1.0))
    assert progress._bar is None and bar.disable

    quiet = TerminalProgress(enabled=False)
    for e in (ev.Planning(job, 50), ev.Planned(job, 50, 4, 2, 40, 3),
              ev.FramesDone(job, 1, 3, 3, 40)):
        quiet(e)
        assert quiet._bar is None


def test_summary_line_singular() -> None:
    """One frame is "1 frame", more are "frames"."""
    assert str(RunSummary(Path("x.mp4"), 1, 2.0)).startswith("1 frame in 2.0 s")
    assert str(RunSummary(Path("x.mp4"), 2, 2.0)).startswith("2 frames in 2.0 s")


# -- 7. warnings with bars on ----------------------------------------------------------------------
@pytest.mark.slow
def test_folder_warning_printed_once(tmp_path: Path) -> None:
    """With progress bars on, a skipped image's warning is printed once (not by both the root
    handler and tqdm's redirect), and the exit code says images were skipped."""
    src = tmp_path / "scans"
    src.mkdir()
    make_image(src / "a.png")
    make_image(src / "c.png", seed=1)
    (src / "bad.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    # Not quiet: the bars and the logging redirect are what is under test.
    cmd = [sys.executable, "-m", "filmcolor", str(src), "-o", str(out), "--model", "tiny"]
    env = {**os.environ, "FILMCOLOR_DEBUG": "0"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == SourceOpenError.exit_code, r.stderr
    assert r.stderr.count("skipped bad.png") == 1, r.stderr
    assert "skipped: bad.png" in r.stderr  # the final error line names it too
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
