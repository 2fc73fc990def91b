"""The studio's queue: jobs from the store, run at most ``workers`` at a time, each in a child.

:class:`Studio` owns the data folder::

    studio.db         the job store (filmcolor.serve.store)
    incoming/         uploads still arriving (deleted at start: a killed server's leftovers)
    uploads/          accepted uploads, under generated names (<id>.mp4, <id>.ref0.jpg, ...)
    results/          coloured files and side-by-side stills
    jobs/<id>/        a film's job folder (manifest and chunks), so a restart resumes it
    logs/<id>.log     what a job's process wrote to standard error

A dispatcher thread takes the oldest queued job whenever fewer than ``workers`` run, starts
``python -m filmcolor.serve.worker`` for it and reads its events (:mod:`filmcolor.serve.worker`).
Live progress is kept in memory for the event streams and written to the store every few
seconds; every change of state is written at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from filmcolor.serve.store import FINAL_STATES, JobRecord, JobStore

logger = logging.getLogger("filmcolor.serve")

PROGRESS_SAVE_S: float = 2.0
"""Least time between two progress writes of one job to the store."""

PLANNING_SHARE: float = 0.1
"""Part of a film's progress bar given to the planning pass (the rest is colouring)."""

STOP_WAIT_S: float = 20.0
"""How long a job's process is given to stop cleanly (SIGTERM) before it is killed."""

FINISH_TRIES: int = 5
"""Attempts to record a job's end in the store before giving up (it then runs again on restart)."""

DEFAULT_RETRY_S: int = 10
"""``Retry-After`` when no job has finished yet to estimate from."""


@dataclass
class Live:
    """What the store does not keep between two saves: a running job's moment-to-moment state."""

    phase: str = "queued"
    frames_done: int = 0
    frames_total: int | None = None
    progress: float = 0.0
    eta_s: float | None = None
    colour_t0: float | None = None
    base: int = 0  # frames finished by earlier runs of a resumed film
    saved_at: float = 0.0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    error: str | None = None


class Studio:
    """The queue and its data folder (see the module docstring).

    Args:
        data: the data folder (created if missing).
        workers: jobs run at once.
        queue: most jobs waiting; :meth:`submit` refuses more.
        job_settings: extra run settings given to every film (``chunk_frames``).
    """

    def __init__(self, data: Path, workers: int = 1, queue: int = 16,
                 job_settings: dict | None = None) -> None:
        self.data = Path(data).resolve()
        self.workers = workers
        self.queue_size = queue
        self.job_settings = dict(job_settings or {})
        for sub in ("incoming", "uploads", "results", "jobs", "logs"):
            (self.data / sub).mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.data / "studio.db")
        self.live: dict[str, Live] = {}
        self.version = 0  # bumped on every change; event streams wait for it
        self.changed = threading.Condition()
        self._lock = threading.RLock()  # claim/cancel/finish of one job never interleave
        self._cancelling: set[str] = set()
        self._stopping = False
        self._dispatcher: threading.Thread | None = None
        self._readers: list[threading.Thread] = []

    # -- paths ----------------------------------------------------------------------------------
    def path(self, rel: str | None) -> Path | None:
        """An absolute path for a data-folder path from the store (None stays None)."""
        return None if rel is None else self.data / rel

    def rel(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.data))

    def still_path(self, job_id: str) -> Path:
        return self.data / "results" / f"{job_id}.still.png"

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Recover what a stopped server left, then start taking jobs."""
        shutil.rmtree(self.data / "incoming", ignore_errors=True)
        (self.data / "incoming").mkdir(exist_ok=True)
        # No job runs yet, so every hidden temporary beside the results is a killed run's
        # (a photo's or a preview's atomic write); a film's job cleans its own on resume.
        for tmp in (self.data / "results").glob(".*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        n = self.store.recover()
        if n:
            logger.warning("resuming %d job(s) a stopped server was running", n)
        self._stopping = False
        self._dispatcher = threading.Thread(target=self._dispatch, name="studio-dispatch",
                                            daemon=True)
        self._dispatcher.start()

    def stop(self) -> None:
        """Stop taking jobs; stop the running ones so that the next start resumes them.

        Their processes get SIGTERM, which the job engine turns into a clean stop that keeps
        every finished chunk; their jobs stay ``running`` in the store and go back to the head
        of the queue on the next :meth:`start`.
        """
        self._stopping = True
        self._notify()
        with self._lock:
            procs = [lv.proc for lv in self.live.values() if lv.proc is not None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        for t in self._readers:
            t.join(timeout=5)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)

    def _notify(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    # -- queue ----------------------------------------------------------------------------------
    def submit(self, job: JobRecord) -> int | None:
        """Queue ``job`` (its files already in the data folder); its position, or None if full."""
        position = self.store.add(job, max_queued=self.queue_size)
        if position is not None:
            self._notify()
        return position

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely to be free (for HTTP 429)."""
        times = self.store.recent_durations()
        if not times:
            return DEFAULT_RETRY_S
        mean = sum(times) / len(times)
        return max(1, min(3600, round(mean / max(1, self.workers))))

    def running(self) -> int:
        with self._lock:
            return sum(1 for lv in self.live.values() if lv.proc is not None)

    def _dispatch(self) -> None:
        while not self._stopping:
            job = None
            with self._lock:
                if self.running() < self.workers:
                    job = self.store.claim_next()
                    if job is not None:
                        try:
                            self._spawn(job)
                        except Exception as exc:  # noqa: BLE001 (e.g. no memory for a process: fail the job)
                            self._finish(job.id, "failed", f"could not start the job: {exc}")
            if job is not None:
                self._notify()
                continue
            with self.changed:
                self.changed.wait(timeout=1.0)
        # The jobs' processes die with the thread that started them (PR_SET_PDEATHSIG is per
        # thread, see worker.py): outlive them, or stop()'s SIGTERM becomes a SIGKILL that loses
        # the chunk in progress.
        while self.running():
            time.sleep(0.05)

    def _task(self, job: JobRecord) -> dict:
        settings = dict(job.settings)
        refs = settings.pop("reference_files", [])
        if refs:
            settings["references"] = [
                str(self.data / r["path"]) + (f"@{r['at']}" if r.get("at") else "") for r in refs
            ]
        if settings.get("hints"):
            settings["hints"] = str(self.data / settings["hints"])
        task = {
            "kind": job.kind,
            "input": str(self.path(job.upload)),
            "output": str(self.path(job.result)),
            "still": str(self.still_path(job.id)),
            "settings": settings,
            "preview": job.preview or {},
        }
        if job.kind == "film":
            task["job_dir"] = str(self.data / "jobs" / job.id)
            task["settings"] = {**self.job_settings, **settings}
        return task

    def _spawn(self, job: JobRecord) -> None:
        log = open(self.data / "logs" / f"{job.id}.log", "ab")  # noqa: SIM115 (the child owns it)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "filmcolor.serve.worker", json.dumps(self._task(job))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                # Its own session: a Ctrl-C meant for the server must not reach the job first
                # (the server stops its jobs itself, so that they resume).
                start_new_session=True,
            )
        finally:
            log.close()
        live = self.live.setdefault(job.id, Live())
        live.phase, live.proc = "starting", proc
        reader = threading.Thread(target=self._read, args=(job, proc), daemon=True,
                                  name=f"studio-job-{job.id}")
        self._readers = [t for t in self._readers if t.is_alive()] + [reader]
        reader.start()

    def _read(self, job: JobRecord, proc: subprocess.Popen) -> None:
        live = self.live[job.id]
        error: str | None = None
        ok = False
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "Error":
                error = event.get("message") or "failed"
            elif kind == "Result":
                ok = True
            else:
                self._progress(job, live, kind, event)
        code = proc.wait()
        with contextlib.suppress(Exception):
            proc.stdin.close()  # type: ignore[union-attr]
        with self._lock:
            live.proc = None
            if job.id in self._cancelling:
                return  # cancel() records the state and removes the files
            if self._stopping:
                return  # still "running" in the store: the next start resumes it
            if ok and code == 0:
                self._finish(job.id, "done", None)
            else:
                self._finish(job.id, "failed", error or f"the job's process ended with code {code}")

    def _progress(self, job: JobRecord, live: Live, kind: str, event: dict) -> None:
        now = time.time()
        film = job.kind == "film"
        if kind == "Planning":
            live.phase = "planning"
            live.frames_total = event.get("frames_total")
        elif kind == "PlanningProgress":
            total = event.get("frames_total")
            if total:
                live.progress = PLANNING_SHARE * min(1.0, event["frames_done"] / total)
        elif kind == "Planned":
            live.phase = "colouring"
            live.frames_total = event["frames_total"]
            live.base = event["frames_total"] - event["frames_todo"]
            live.frames_done = live.base
            live.colour_t0 = now
            if film and live.frames_total:  # a resumed film starts where it stopped
                share = PLANNING_SHARE + (1 - PLANNING_SHARE) * live.base / live.frames_total
                live.progress = min(0.99, share)
        elif kind == "FramesDone":
            live.phase = "colouring"
            live.frames_done = live.base + event["frames_done"]
            todo = event["frames_todo"]
            if live.frames_total is None:
                live.frames_total = todo
            share = PLANNING_SHARE if film else 0.0
            total = max(1, live.frames_total or 1)
            live.progress = min(0.99, share + (1 - share) * live.frames_done / total)
            if live.colour_t0 is not None and event["frames_done"] > 0:
                rate = event["frames_done"] / max(1e-3, now - live.colour_t0)
                live.eta_s = round((todo - event["frames_done"]) / rate, 1)
            if event["frames_done"] >= todo:
                live.phase = "finishing"
        if now - live.saved_at >= PROGRESS_SAVE_S:
            live.saved_at = now
            with contextlib.suppress(sqlite3.Error):  # progress is a nicety; state is not
                self.store.update(job.id, frames_done=live.frames_done,
                                  frames_total=live.frames_total)
        self._notify()

    def _finish(self, job_id: str, state: str, error: str | None) -> None:
        current = self.store.get(job_id)
        if current is None or current.state != "running":
            return  # cancelled (or forgotten) meanwhile: that decision stands
        live = self.live.get(job_id) or Live()
        changes: dict = {"state": state, "finished": time.time(), "error": error}
        if live.frames_total is not None:
            done = live.frames_total if state == "done" else live.frames_done
            changes.update(frames_done=done, frames_total=live.frames_total)
        for attempt in range(FINISH_TRIES):
            try:
                self.store.update(job_id, **changes)
                break
            except sqlite3.Error as exc:  # e.g. a full disk: retry, it may be freed
                if attempt == FINISH_TRIES - 1:
                    # Left "running" in the store: the next start runs the job again.
                    logger.error("cannot record the end of job %s: %s", job_id, exc)
                    return
                time.sleep(1.0)
        if state == "done":
            job = self.store.get(job_id)
            if job is not None and job.kind == "film":
                # The engine removed the chunks; the emptied job folder goes too.
                shutil.rmtree(self.data / "jobs" / job_id, ignore_errors=True)
        self.live.pop(job_id, None)
        self._notify()

    # -- cancel / delete ------------------------------------------------------------------------
    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job, or forget a finished one; remove its files.

        A running job's process is stopped first (SIGTERM, then SIGKILL after
        :data:`STOP_WAIT_S`). Returns False when there is no such job.
        """
        with self._lock:
            job = self.store.get(job_id)
            if job is None:
                return False
            live = self.live.get(job_id)
            proc = live.proc if live is not None else None
            if job.state in FINAL_STATES:
                self.store.delete(job_id)
            else:
                self._cancelling.add(job_id)
                self.store.update(job_id, state="cancelled", finished=time.time())
        try:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.remove_files(job)
        finally:
            with self._lock:
                self._cancelling.discard(job_id)
                self.live.pop(job_id, None)
            self._notify()
        return True

    def remove_files(self, job: JobRecord) -> None:
        """Delete every file of ``job`` in the data folder (upload, guidance, result, still,
        log, job folder, a killed run's temporaries)."""
        paths = [self.path(job.upload), self.path(job.result), self.still_path(job.id),
                 self.data / "logs" / f"{job.id}.log"]
        for ref in job.settings.get("reference_files", []):
            paths.append(self.data / ref["path"])
        if job.settings.get("hints"):
            paths.append(self.data / job.settings["hints"])
        for p in paths:
            if p is not None:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        shutil.rmtree(self.data / "jobs" / job.id, ignore_errors=True)
        # A killed photo/preview run may leave its hidden temporary beside the result.
        for tmp in (self.data / "results").glob(f".{job.id}.*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    # -- views ----------------------------------------------------------------------------------
    def view(self, job: JobRecord, positions: dict[str, int] | None = None) -> dict:
        """The job as the API shows it."""
        positions = self.store.positions() if positions is None else positions
        live = self.live.get(job.id)
        frames_done, frames_total = job.frames_done, job.frames_total
        progress, eta, phase = 0.0, None, job.state
        if job.state == "done":
            progress, phase = 1.0, "done"
        elif live is not None and job.state == "running":
            frames_done = live.frames_done or frames_done
            frames_total = live.frames_total or frames_total
            progress, eta, phase = live.progress, live.eta_s, live.phase
        elif frames_total:
            progress = min(0.99, frames_done / frames_total)
        return {
            "id": job.id,
            "kind": job.kind,
            "name": job.name,
            "state": job.state,
            "phase": phase,
            "position": positions.get(job.id, 0 if job.state == "running" else None),
            "progress": round(progress, 4),
            "frames_done": frames_done,
            "frames_total": frames_total,
            "eta_s": eta,
            "error": job.error,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "settings": {k: v for k, v in job.settings.items() if k not in ("reference_files",)},
            "preview": job.preview,
        }
