"""The job engine: plan a film, colour its chunks, finish it; the same for every front end.

    spec  = JobSpec.create(cfg, source, output, info)     # what to do (jobs.spec)
    run_job(spec, executor=LocalExecutor(), on_event=print)

or step by step (what an executor on other machines does with each chunk)::

    plan   = plan_job(spec, manifest, batch)              # decode once: cuts -> chunks
    result = run_chunk(spec, plan, k)                     # one chunk file, a pure function
    finish_job(spec, plan)                                # join, remux, verify, rename

Modules, one concern each: :mod:`~filmcolor.jobs.spec` (job and plan as data),
:mod:`~filmcolor.jobs.plan`, :mod:`~filmcolor.jobs.chunk`, :mod:`~filmcolor.jobs.finish`
(join, remux, verify), :mod:`~filmcolor.jobs.executor`, :mod:`~filmcolor.jobs.events`,
:mod:`~filmcolor.jobs.engine` (the loop, resume and failure policy),
:mod:`~filmcolor.jobs.manifest` (the record and its lock), :mod:`~filmcolor.jobs.folder` (what a
job may create and delete), :mod:`~filmcolor.jobs.disk`, :mod:`~filmcolor.jobs.status`.
"""

from filmcolor.jobs.chunk import ChunkResult, run_chunk
from filmcolor.jobs.engine import run_job
from filmcolor.jobs.events import (
    ChunkDone,
    ChunkStarted,
    Event,
    Failed,
    Finished,
    FramesDone,
    Planned,
    Planning,
    PlanningProgress,
)
from filmcolor.jobs.executor import ChunkOutcome, ChunkTask, Executor, LocalExecutor
from filmcolor.jobs.finish import finish_job
from filmcolor.jobs.plan import plan_job
from filmcolor.jobs.spec import JobSpec, Plan

__all__ = [
    "ChunkDone",
    "ChunkOutcome",
    "ChunkResult",
    "ChunkStarted",
    "ChunkTask",
    "Event",
    "Executor",
    "Failed",
    "Finished",
    "FramesDone",
    "JobSpec",
    "LocalExecutor",
    "Plan",
    "Planned",
    "Planning",
    "PlanningProgress",
    "finish_job",
    "plan_job",
    "run_chunk",
    "run_job",
]
