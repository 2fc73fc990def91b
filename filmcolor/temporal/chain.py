"""The temporal stages of a video run, built from the run settings, and the look-back they need.

    frames = build_temporal(smoothing=0.5, method="flow")(frames)

``method="flow"`` (the default, #13): the luma-guided window (:class:`ChromaSmoother`, short-term
flicker, no lag) and then the flow-guided hold (:class:`ColourHold`, colour that stays put in
still regions and travels with moving ones). ``"window"``: the window alone (filmcolor 0.1's
behaviour). ``smoothing=0`` turns both off.

Chunks and previews ask :attr:`TemporalChain.context_before` / ``context_after`` how many frames
to decode around their range so that their frames equal those of an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from filmcolor.config import TEMPORAL_METHODS, check_choice
from filmcolor.frames import Frame
from filmcolor.temporal.hold import ColourHold
from filmcolor.temporal.smoothing import ChromaSmoother

DEFAULT_TEMPORAL: str = TEMPORAL_METHODS[0]


class TemporalChain:
    """Stage: the window smoother, then (for ``"flow"``) the colour hold.

    Args:
        smoother: the window stage, or None for none.
        hold: the hold stage, or None for none.
    """

    def __init__(self, smoother: ChromaSmoother | None, hold: ColourHold | None) -> None:
        self.smoother = smoother
        self.hold = hold

    @property
    def context_before(self) -> int:
        """Frames a range needs before its first frame: the hold's look-back plus the window's
        (the hold's first frame of look-back needs a smoothed a/b)."""
        window = self.smoother.context if self.smoother else 0
        return window + (self.hold.context if self.hold else 0)

    @property
    def context_after(self) -> int:
        """Frames a range needs after its last frame (the window's future half)."""
        return self.smoother.context if self.smoother else 0

    def __call__(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        it: Iterator[Frame] = iter(frames)
        if self.smoother is not None:
            it = self.smoother(it)
        if self.hold is not None:
            it = self.hold(it)
        return it

    def __repr__(self) -> str:
        return f"TemporalChain({self.smoother!r}, {self.hold!r})"


def build_temporal(smoothing: float, method: str = DEFAULT_TEMPORAL) -> TemporalChain:
    """The temporal stages for a ``--smoothing`` strength and a ``--temporal`` method.

    Raises:
        ConfigError: strength outside [0, 1] or an unknown method.
    """
    check_choice("--temporal", method, TEMPORAL_METHODS)
    if smoothing == 0:
        return TemporalChain(None, None)
    smoother = ChromaSmoother.from_strength(smoothing)
    return TemporalChain(smoother, ColourHold() if method == "flow" else None)
