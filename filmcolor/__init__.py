"""filmcolor: colourise black-and-white films with their original sound, frame-exact.

Public API::

    import filmcolor
    filmcolor.colorize("movie.mp4")                 # -> movie.colour.mp4
    filmcolor.list_models()
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "colorize", "list_models"]


def colorize(input, output=None, **options):  # noqa: ANN001, ANN201 - documented below
    """Colour a video, image or folder of images.

    Args:
        input: source path.
        output: destination (default ``<stem>.colour.<ext>`` beside the input).
        **options: any :class:`filmcolor.config.RunConfig` field (model, device, smoothing...).

    Returns:
        :class:`filmcolor.pipeline.RunSummary`.

    Raises:
        filmcolor.errors.FilmcolorError: bad input, missing weights, unwritable output...
    """
    from filmcolor.config import RunConfig
    from filmcolor.pipeline import run

    options.setdefault("quiet", True)
    return run(RunConfig(input=input, output=output, **options))


def list_models(include_test: bool = False):  # noqa: ANN201
    """Registered models (:class:`filmcolor.models.ModelCfg` list)."""
    from filmcolor.models import list_models as _list

    return _list(include_test=include_test)
