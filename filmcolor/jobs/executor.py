"""Executors: who runs a job's chunks, and where.

The engine (:mod:`filmcolor.jobs.engine`) decides which chunks to run and records what they
did; an executor only runs them. Its interface is small on purpose, so that one that sends
chunks to other machines (Ray tasks) needs nothing from the engine but this:

* :meth:`Executor.submit` a :class:`ChunkTask` (the job's spec, its plan and a chunk index:
  everything :func:`~filmcolor.jobs.chunk.run_chunk` needs, all picklable);
* :meth:`Executor.next_done` blocks until one submitted chunk is done or failed, and returns
  its :class:`ChunkOutcome`;
* progress goes to the ``report(index, frames)`` callable given to :meth:`Executor.open`
  (an executor that cannot report frames may report nothing: the engine counts whole chunks);
* :meth:`Executor.close` stops whatever is still running.

The engine keeps at most :attr:`Executor.slots` chunks in flight and checks the disk before
each submission; a chunk's file is written once (atomic rename), so an executor may retry a
chunk that failed or whose worker was lost.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from filmcolor.jobs.chunk import ChunkResult, build_job_colorizer, run_chunk
from filmcolor.jobs.spec import JobSpec, Plan

Report = Callable[[int, int], None]
"""``report(chunk index, frames finished since the last call)``."""


@dataclass(frozen=True)
class ChunkTask:
    """One chunk to colour: a pure function of these three (see :func:`run_chunk`)."""

    spec: JobSpec
    plan: Plan
    index: int


@dataclass(frozen=True)
class ChunkOutcome:
    """A submitted chunk that is over: ``result`` when done, ``error`` when it failed."""

    index: int
    result: ChunkResult | None = None
    error: BaseException | None = None


class Executor(abc.ABC):
    """Runs chunks of a job (see the module docstring)."""

    slots: int = 1
    """Chunks the engine keeps submitted at once."""

    def open(self, report: Report) -> None:
        """Called once before the first :meth:`submit`, with the progress callback."""
        self._report = report

    @abc.abstractmethod
    def submit(self, task: ChunkTask) -> None:
        """Start (or queue) one chunk."""

    @abc.abstractmethod
    def next_done(self) -> ChunkOutcome:
        """Block until one submitted chunk is done or failed; return it."""

    def close(self) -> None:
        """Stop whatever is still running (called once, also after a failure)."""


class LocalExecutor(Executor):
    """Today's behaviour: chunks one after another, in this process, with one model.

    Args:
        colorizer: the model stage with the job's guidance attached (the engine builds it
            first, so a bad model fails before anything is written); ``None`` builds one from
            the first task's spec.
    """

    slots = 1

    def __init__(self, colorizer=None) -> None:
        self.colorizer = colorizer
        self._queue: deque[ChunkTask] = deque()
        self._report: Report = lambda index, frames: None

    def submit(self, task: ChunkTask) -> None:
        self._queue.append(task)

    def next_done(self) -> ChunkOutcome:
        task = self._queue.popleft()
        if self.colorizer is None:
            self.colorizer = build_job_colorizer(task.spec, task.plan)
        try:
            result = run_chunk(task.spec, task.plan, task.index, self.colorizer,
                               on_frames=lambda n: self._report(task.index, n))
        except Exception as exc:  # noqa: BLE001 - an outcome; Ctrl-C is not one: it stops the run
            return ChunkOutcome(task.index, error=exc)
        return ChunkOutcome(task.index, result=result)

    def close(self) -> None:
        self._queue.clear()
