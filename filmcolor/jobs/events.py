"""What a job reports while it runs: typed events, as data.

The engine never draws a progress bar. It calls the ``on_event`` callable it is given with one
of the events below; the command line turns them into tqdm bars and the summary line
(:mod:`filmcolor.terminal`), a service streams them, a test collects them in a list. Every event
carries the job folder (``job``) and the wall-clock time it happened (``time``, Unix seconds).

Order for one run::

    Planning, PlanningProgress*, Planned        (Planned alone when resuming a planned job)
    (ChunkStarted, FramesDone*, ChunkDone)*      one group per chunk still to do
    Finished | Failed
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """Base of every job event."""

    job: str
    time: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class Planning(Event):
    """The planning pass (decode once, find the cuts) starts.

    Attributes:
        frames_total: frames the container announces (``None`` when it does not say).
    """

    frames_total: int | None


@dataclass(frozen=True)
class PlanningProgress(Event):
    """Frames the planning pass has scanned so far (sent every few dozen frames)."""

    frames_done: int
    frames_total: int | None


@dataclass(frozen=True)
class Planned(Event):
    """The job's plan is known (made now or read from the manifest).

    Attributes:
        frames_total: frames in the film.
        chunks: chunks in the plan.
        shots: shots found.
        frames_todo: frames in the chunks still to colour.
        chunks_todo: chunks still to colour.
        unit: what is counted (``"frame"``; ``"image"`` for a folder of stills).
    """

    frames_total: int
    chunks: int
    shots: int
    frames_todo: int
    chunks_todo: int
    unit: str = "frame"


@dataclass(frozen=True)
class ChunkStarted(Event):
    """A chunk was handed to the executor (``index`` in the plan, ``frames`` it writes)."""

    index: int
    frames: int


@dataclass(frozen=True)
class FramesDone(Event):
    """Frames finished (coloured and encoded) since the last event of this chunk.

    Attributes:
        index: the chunk.
        frames: frames finished since the previous ``FramesDone`` of this chunk.
        frames_done: frames finished by this run so far, all chunks together.
        frames_todo: frames this run has to colour in all (:attr:`Planned.frames_todo`).
    """

    index: int
    frames: int
    frames_done: int
    frames_todo: int


@dataclass(frozen=True)
class ChunkDone(Event):
    """A chunk's file is in place and the manifest says so."""

    index: int
    frames: int
    seconds: float
    bytes: int


@dataclass(frozen=True)
class Finished(Event):
    """The output is joined, remuxed, verified and renamed into place.

    Attributes:
        output: the final file.
        frames: frames coloured by this run (a resumed run does not count earlier chunks).
        seconds: wall time of this run.
    """

    output: str
    frames: int
    seconds: float


@dataclass(frozen=True)
class Failed(Event):
    """The run stopped with an error or an interruption.

    Attributes:
        error: the one-line message.
        kept: the job folder was kept and can be resumed.
    """

    error: str
    kept: bool


EventSink = Callable[[Event], None]
"""What the engine calls with each event."""


def ignore(event: Event) -> None:
    """The sink of a run nobody watches."""
