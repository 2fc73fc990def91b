"""Progress reporting that the caller controls: a tqdm bar, or nothing in quiet mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from filmcolor.frames import Frame


class Progress:
    """Counts frames through a stage; shows a tqdm bar (frames, fps, ETA) unless disabled."""

    def __init__(self, total: int | None, enabled: bool = True, desc: str = "colouring") -> None:
        self.count = 0
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="frame", dynamic_ncols=True, leave=False)

    def __call__(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for fr in frames:
            yield fr
            self.count += 1
            if self._bar is not None:
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextlib.contextmanager
def logging_redirect(enabled: bool) -> Iterator[None]:
    """Route log records through tqdm.write so they never tear the bar."""
    if not enabled:
        yield
        return
    import logging

    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger("filmcolor")]):
        yield
