"""filmcolor: colourise black-and-white films with their original sound, frame-exact.

Public API::

    import filmcolor
    filmcolor.colorize("movie.mp4")                 # -> movie.colour.mp4 (a resumable job)
    filmcolor.preview("movie.mp4", start="12:03.5", end="12:08", sheet=6)
    filmcolor.list_models()

Settings and errors::

    cfg = filmcolor.RunConfig(input="movie.mp4", smoothing=0.8)   # validated on construction
    try:
        filmcolor.colorize("movie.mp4", crf=70)
    except filmcolor.ConfigError as e:                           # "--crf must be in 0..63 (got 70)"
        ...

``RunConfig`` (:mod:`filmcolor.config`) holds every run setting, with its default, bounds and
help; ``FilmcolorError`` is the base of every error filmcolor raises on purpose, and each subclass
(:mod:`filmcolor.errors`: ``ConfigError``, ``SourceOpenError``, ``WeightsError``...) carries the
exit code the command line uses. They are imported on first use, so ``import filmcolor`` stays
light (no torch, av or numpy).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers and IDEs see the lazy exports; at run time __getattr__ loads them
    from filmcolor.config import RunConfig
    from filmcolor.errors import (
        ConfigError,
        DecodeError,
        EncodeError,
        FilmcolorError,
        JobInterrupted,
        JobStateError,
        ModelNotFoundError,
        OutputError,
        RemuxError,
        SourceOpenError,
        WeightsError,
    )

__version__ = "0.1.0"

# Lazily exported names -> the module defining them (see __getattr__).
_LAZY: dict[str, str] = {
    "RunConfig": "filmcolor.config",
    **{name: "filmcolor.errors" for name in (
        "FilmcolorError", "ConfigError", "SourceOpenError", "DecodeError", "WeightsError",
        "ModelNotFoundError", "OutputError", "EncodeError", "RemuxError", "JobStateError",
        "JobInterrupted",
    )},
}

__all__ = [
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "FilmcolorError",
    "JobInterrupted",
    "JobStateError",
    "ModelNotFoundError",
    "OutputError",
    "RemuxError",
    "RunConfig",
    "SourceOpenError",
    "WeightsError",
    "__version__",
    "colorize",
    "list_models",
    "preview",
]


def __getattr__(name: str) -> object:
    """Import :class:`RunConfig` and the error types on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def colorize(input, output=None, **options):
    """Colour a video, image or folder of images.

    Args:
        input: source path.
        output: destination (default ``<stem>.colour.<ext>`` beside the input).
        **options: any :class:`filmcolor.config.RunConfig` field (model, device, smoothing...),
            including guidance: ``references=["still.jpg", "card.png@00:12:03"]`` and
            ``hints="hints.json"`` (README, "Guiding the colours").

    Returns:
        :class:`filmcolor.summary.RunSummary`.

    Raises:
        filmcolor.errors.FilmcolorError: bad input, missing weights, unwritable output...
    """
    from filmcolor.api import run
    from filmcolor.config import RunConfig

    options.setdefault("quiet", True)
    return run(RunConfig(input=input, output=output, **options))


def preview(  # -> filmcolor.preview.PreviewSummary (lazy import keeps `import filmcolor` light)
    input: str | os.PathLike[str],
    start: str | None = None,
    end: str | None = None,
    frames: str | None = None,
    output: str | os.PathLike[str] | None = None,
    side_by_side: bool = False,
    sheet: int = 0,
    render_sizes: list[int] | None = None,
    models: list[str] | None = None,
    vividness: list[float] | None = None,
    guidance: list[tuple[list[str], str | None]] | None = None,
    **options: object,
):
    """Colour a few seconds of a film, as a full run with the same options would.

    Args:
        input: source video.
        start, end: ``HH:MM:SS.fff``, ``MM:SS``, seconds or ``"17280f"`` (end exclusive).
        frames: ``"A-B"`` frame numbers instead of ``start``/``end``.
        output: the clip (default ``<stem>.preview-<A>-<B>.mp4``).
        side_by_side: original | colour.
        sheet: frames in a PNG contact sheet (0: none).
        render_sizes, models, vividness: compare several (one sheet, no clip); a single
            vividness goes in ``options`` like any other run setting.
        guidance: compare guidance alternatives, each ``(references, hints file)`` (one sheet,
            no clip); a single one goes in ``options`` (``references=[...]``, ``hints=...``).
        **options: any :class:`filmcolor.config.RunConfig` field.

    Returns:
        :class:`filmcolor.preview.PreviewSummary`.

    Raises:
        filmcolor.errors.FilmcolorError: bad range, input, model or output.
    """
    from filmcolor.config import RunConfig
    from filmcolor.preview import PreviewRequest
    from filmcolor.preview import preview as _preview

    options.setdefault("quiet", True)
    req = PreviewRequest(
        start=start, end=end, frames=frames, output=None if output is None else str(output),
        side_by_side=side_by_side, sheet=sheet, render_sizes=list(render_sizes or []),
        models=list(models or []), vividness=list(vividness or []),
        guidance=[(tuple(r), h) for r, h in (guidance or [])],
    )
    return _preview(RunConfig(input=input, **options), req)


def list_models(include_test: bool = False):
    """Registered models (:class:`filmcolor.models.ModelCfg` list)."""
    from filmcolor.models import list_models as _list

    return _list(include_test=include_test)
