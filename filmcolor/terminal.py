"""The command line's view of a run: job events drawn as tqdm bars on the terminal.

The engine reports events (:mod:`filmcolor.jobs.events`); this is the one place that turns them
into bars. Two bars, one after the other: ``finding cuts`` while the planning pass scans the
film (its total is the frame count the container announces), then ``colouring`` over the
frames still to do. The colouring bar's clock starts at the first finished frame, so its rate
and time left do not count the model's start-up (a first figure of "19:56 left" for a
two-minute job).
"""

from __future__ import annotations

import contextlib
import logging
from types import TracebackType

from filmcolor.jobs import events as ev


class TerminalProgress:
    """An event sink that draws the run's progress (use as a context manager).

    While it is open, log records go through ``tqdm.write`` so they never tear a bar, and each
    is printed once (the root logger's console handler is swapped for tqdm's, rather than one
    added beside it).

    Args:
        enabled: draw bars; ``False`` (``--quiet``) ignores every event.
        label: put before each bar's description (a film's name in a batch).
        position: the bar's line, counted from the top (films of a batch running at once).
        redirect_logging: route log records through tqdm while open (the outermost one only).
    """

    def __init__(self, enabled: bool = True, label: str | None = None,
                 position: int | None = None, redirect_logging: bool = True) -> None:
        self.enabled = enabled
        self.label = label
        self.position = position
        self.redirect_logging = redirect_logging
        self._bar = None
        self._started = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> TerminalProgress:  # noqa: PYI034 - Python 3.10 has no Self
        if self.enabled and self.redirect_logging:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._stack.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger()]))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        self._stack.close()

    def _open(self, total: int | None, desc: str, unit: str = "frame") -> None:
        from tqdm import tqdm

        self.close()
        if self.label:
            desc = f"{self.label}: {desc}"
        self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
                         position=self.position)
        self._started = False

    def for_item(self, item, slot: int) -> TerminalProgress:
        """The sink of one file of a batch: its own bar, on line ``slot``, named after it."""
        return TerminalProgress(self.enabled, label=item.source.name, position=slot,
                                redirect_logging=False)

    def close(self) -> None:
        """Remove the bar now on the screen, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __call__(self, event: ev.Event) -> None:
        if not self.enabled:
            return
        if isinstance(event, ev.Planning):
            self._open(event.frames_total, "finding cuts")
        elif isinstance(event, ev.PlanningProgress) and self._bar is not None:
            self._bar.update(event.frames_done - self._bar.n)
        elif isinstance(event, ev.Planned):
            if event.unit == "image" and event.frames_todo < 2:
                self.close()  # one still: nothing worth a bar
                return
            desc = "images" if event.unit == "image" else "colouring"
            self._open(event.frames_todo, desc, event.unit)
        elif isinstance(event, ev.FramesDone) and self._bar is not None:
            if not self._started:
                # The clock starts at the first finished frame, not at the model's start-up.
                self._bar.reset(total=event.frames_todo)
                self._started = True
            self._bar.update(event.frames)
        elif isinstance(event, ev.Finished | ev.Failed):
            self.close()
