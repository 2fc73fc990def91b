"""The job engine: every film run is a resumable job (#4), driven the same way by every front end.

    plan      decode the luma once: frame count, pts, scene cuts -> chunks   (jobs.plan)
    chunks    each chunk not done goes to an executor, which colours it into
              chunk_0007.mp4 (jobs.chunk); the engine marks it done          (jobs.executor)
    finish    packet-level join of the chunks, remux with the source's sound,
              verify, rename                                                 (jobs.finish)

Progress is reported as typed events (:mod:`filmcolor.jobs.events`), never drawn here.

A chunk is done only once its file has been renamed into place *and* the manifest says so;
SIGKILL at any moment therefore loses at most the chunks in progress. The join and the remux
write temporaries named with the writer's pid (a killed run's FFmpeg must never share a file
with the resumed run), and a run starts by deleting the temporaries killed runs left.

What a job may delete: only the files it makes (:mod:`filmcolor.jobs.folder`). After success the
job's files go (unless ``--keep-chunks``); after an error a rerun would meet again (decode,
model, encode, remux) they go too if no chunk was finished, and are kept otherwise, the error
line saying how to resume.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from filmcolor.errors import FilmcolorError, JobInterrupted, JobStateError, OutputError
from filmcolor.io.output import check_output
from filmcolor.jobs import events as ev
from filmcolor.jobs import faults
from filmcolor.jobs.chunk import ChunkResult, build_job_colorizer
from filmcolor.jobs.disk import check_disk, chunk_estimate, disk_full_error, is_disk_full
from filmcolor.jobs.executor import ChunkTask, Executor, LocalExecutor
from filmcolor.jobs.finish import finish_job
from filmcolor.jobs.folder import (
    check_job_dir,
    remove_dir_if_empty,
    remove_job_files,
    remove_stale_temps,
)
from filmcolor.jobs.manifest import MANIFEST_NAME, JobManifest, job_lock, source_identity
from filmcolor.jobs.plan import plan_job
from filmcolor.jobs.spec import JobSpec, Plan, job_settings
from filmcolor.summary import RunSummary


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[threading.Event]:
    """Treat SIGTERM like Ctrl-C while a job runs (only the main thread may set handlers).

    Yields an event that the handler sets as well. The KeyboardInterrupt it raises can be lost:
    when the signal lands while a weakref callback or a ``__del__`` runs, Python prints
    "Exception ignored" and carries on. A stopped studio's film then went on to finish its output,
    and the restarted studio, resuming the job, found the output there and failed it. So the job
    checks the event before it finishes, too.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, old)


def open_manifest(spec: JobSpec, settings: dict, restart: bool = False) -> JobManifest:
    """The job's manifest: the one in ``spec.job_dir`` if it matches, else a new one (saved).

    Raises:
        JobStateError: the folder holds a job with another source or other settings (and not
            ``restart``), or an unreadable manifest.
    """
    job_dir = spec.job_dir
    source = source_identity(spec.source)
    if (job_dir / MANIFEST_NAME).exists():
        manifest = JobManifest.load(job_dir) if not restart else None
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
    manifest = JobManifest(source=source, settings=settings, config=spec.stored_config())
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


def record_chunk(manifest: JobManifest, result: ChunkResult, job_dir: Path) -> None:
    """Mark a chunk done in the manifest (saved) with what it measured.

    Called after the chunk's file was renamed into place: a kill in between only redoes it.
    """
    chunk = manifest.chunks[result.index]
    chunk.done = True
    chunk.seconds = result.seconds
    chunk.bytes = result.bytes
    chunk.first_pts = result.first_pts
    chunk.last_pts = result.last_pts
    chunk.duration = result.duration
    manifest.save(job_dir)
    faults.kill_point("done", chunk.index)


def run_chunks(
    spec: JobSpec, manifest: JobManifest, executor: Executor, emit: ev.EventSink
) -> int:
    """Colour every chunk not done yet through ``executor``; returns the frames coloured.

    At most ``executor.slots`` chunks are in flight; the disk is checked before each one (the
    estimate improves as chunks finish), and each finished chunk is recorded at once.

    Raises:
        OutputError: too little disk space for the next chunk.
        FilmcolorError: a chunk failed (the first failure; the others are stopped).
    """
    job = str(spec.job_dir)
    plan = Plan.of(manifest)
    todo = [c for c in plan.chunks if not c.done]
    frames_todo = sum(c.frames for c in todo)
    done = 0
    reported: dict[int, int] = {}

    def report(index: int, frames: int) -> None:
        nonlocal done
        done += frames
        reported[index] = reported.get(index, 0) + frames
        emit(ev.FramesDone(job, index, frames, done, frames_todo))

    executor.open(report)
    pending = iter(todo)
    in_flight = 0
    counted = 0
    try:
        while True:
            while in_flight < max(1, executor.slots):
                chunk = next(pending, None)
                if chunk is None:
                    break
                need = chunk_estimate(manifest, chunk, spec.info, spec.config)
                check_disk(spec.job_dir, need, f"chunk {chunk.index}")
                emit(ev.ChunkStarted(job, chunk.index, chunk.frames))
                executor.submit(ChunkTask(spec, plan, chunk.index))
                in_flight += 1
            if in_flight == 0:
                return counted
            outcome = executor.next_done()
            in_flight -= 1
            if outcome.error is not None:
                raise outcome.error
            assert outcome.result is not None
            unreported = outcome.result.frames - reported.get(outcome.index, 0)
            if unreported > 0:
                # An executor that cannot report frames (a pool, a cluster): whole chunks count.
                report(outcome.index, unreported)
            record_chunk(manifest, outcome.result, spec.job_dir)
            counted += outcome.result.frames
            emit(ev.ChunkDone(job, outcome.index, outcome.result.frames,
                              outcome.result.seconds, outcome.result.bytes))
    finally:
        executor.close()


def run_job(
    spec: JobSpec,
    executor: Executor | None = None,
    on_event: ev.EventSink = ev.ignore,
) -> RunSummary:
    """Colour a film as a resumable job (see the module docstring).

    The job directory is refused unless it is new, empty, or a job's (``check_job_dir``).
    After success the job's own files are deleted (unless ``keep_chunks``), and the folder
    too if nothing else is left in it. A failure that a rerun cannot get past by itself (a
    decode, model, encode or remux error) deletes them as well when no chunk was finished, so
    nothing is left behind; with finished chunks the job is kept and the error line says so.
    Interruptions and a full disk always keep the job.

    Args:
        spec: the job (:meth:`JobSpec.create`).
        executor: runs the chunks; default :class:`LocalExecutor` with a model built here.
        on_event: called with each :mod:`~filmcolor.jobs.events` event.

    Raises:
        JobStateError: the job directory is refused or locked, or holds a job with other
            settings/source.
        JobInterrupted: Ctrl-C or SIGTERM; the job can be resumed.
        OutputError: the disk is too full for the next step.
        FilmcolorError: any decode, model, encode or remux problem.
    """
    try:
        return _run_job(spec, executor, on_event)
    except Exception as exc:
        kept = (spec.job_dir / MANIFEST_NAME).is_file()
        on_event(ev.Failed(str(spec.job_dir), str(exc), kept=kept))
        raise


def _run_job(spec: JobSpec, executor: Executor | None, on_event: ev.EventSink) -> RunSummary:
    cfg, job_dir = spec.config, spec.job_dir
    job = str(job_dir)
    # Front ends check this too; a library caller gets the same promise: nothing the user had
    # is replaced without `overwrite`.
    if spec.output.resolve() == spec.source.resolve():
        raise OutputError(f"output would overwrite the input {spec.source}")
    check_output(spec.output, cfg.overwrite)
    check_job_dir(job_dir, spec.source, spec.output)  # before anything is written
    # Bad model, weights or guidance (exemplars, positions) fail before any job file exists.
    colorizer = build_job_colorizer(spec)
    executor = executor or LocalExecutor(colorizer)
    settings = job_settings(cfg, colorizer)
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
                with _sigterm_as_interrupt() as stop:
                    manifest = open_manifest(spec, settings, cfg.restart)
                    remove_stale_temps(job_dir, spec.output)
                    if not manifest.planned:
                        total = spec.info.frame_count
                        on_event(ev.Planning(job, total))
                        plan_job(spec, manifest, colorizer.batch_size,
                                 lambda n: on_event(ev.PlanningProgress(job, n, total)))
                    if colorizer.guide is not None:
                        # Guidance follows shots: the plan's cuts, as every chunk sees them.
                        colorizer.guide.set_cuts(manifest.cuts or [])
                    todo = [c for c in manifest.chunks if not c.done]
                    on_event(ev.Planned(job, manifest.total_frames or 0, len(manifest.chunks),
                                        len(manifest.cuts or []) or 1,
                                        sum(c.frames for c in todo), len(todo)))
                    done_here = run_chunks(spec, manifest, executor, on_event)
                    if stop.is_set():
                        raise KeyboardInterrupt  # a SIGTERM whose interrupt was lost
                    finish_job(spec, Plan.of(manifest))
                if not cfg.keep_chunks:
                    # Under the lock, so no other process can be starting this job meanwhile.
                    remove_job_files(job_dir)
                    removed = True
            except KeyboardInterrupt:
                raise JobInterrupted(str(job_dir)) from None
            except Exception as exc:
                if manifest is None and own_dir and not (job_dir / MANIFEST_NAME).exists():
                    # A new job's first manifest write failed (a full disk): nothing to keep.
                    remove_job_files(job_dir)
                    removed = True
                if is_disk_full(exc) and not isinstance(exc, OutputError):
                    # E.g. the manifest's own write (a new job's first one too): the old
                    # manifest, if any, is still in force.
                    raise disk_full_error("the job's manifest", job_dir) from exc
                if manifest is None:
                    raise  # refused before the job was this run's (settings changed...)
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
            remove_dir_if_empty(job_dir)
    seconds = time.perf_counter() - t0
    on_event(ev.Finished(job, str(spec.output), done_here, seconds))
    return RunSummary(spec.output, done_here, seconds)
