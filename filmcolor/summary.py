"""What a run did, as the one line the command line prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def plural(n: int, word: str) -> str:
    """``"1 frame"``, ``"2 frames"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class RunSummary:
    """What a run did (printed by the CLI as one line).

    Attributes:
        output: the file (or folder) written.
        frames: frames (or images) coloured by this run.
        seconds: wall time.
        skipped: images of a folder that could not be read and were left out (the rest were
            coloured).
    """

    output: Path
    frames: int
    seconds: float
    skipped: tuple[Path, ...] = field(default=())

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{plural(self.frames, 'frame')} in {self.seconds:.1f} s ({self.fps:.2f} fps) "
                f"-> {self.output}")
