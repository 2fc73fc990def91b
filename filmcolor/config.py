"""Run settings: one typed dataclass with validated defaults, shared by the CLI and the library.

Each :class:`RunConfig` field that a user can set carries a :class:`Setting` in its metadata
(:func:`setting`): its flag, help text and bounds are written there once. ``__post_init__``
validates from it and :mod:`filmcolor.cli` builds the ``run`` and ``preview`` options from it, so
the CLI and ``RunConfig(...)`` cannot disagree on a default or a bound.

This module stays light (no numpy, av or torch): ``filmcolor --help`` and ``import filmcolor``
load it. That is also why the encoder and smoothing defaults are written here rather than imported
from :mod:`filmcolor.io.encode` (which loads av and cv2) or :mod:`filmcolor.temporal.smoothing`
(whose package imports :mod:`filmcolor.temporal.chain`, which imports this module: a cycle).
``tests/test_settings.py`` checks that those modules' own defaults agree with the ones here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from filmcolor.errors import ConfigError

StrPath = str | os.PathLike[str]

TEMPORAL_METHODS: tuple[str, ...] = ("flow", "window")
"""``--temporal`` values (first = default); the stages live in :mod:`filmcolor.temporal.chain`."""

UPSAMPLE_METHODS: tuple[str, ...] = ("bilateral", "bilinear")
"""``--upsample`` values (first = default); see :mod:`filmcolor.infer.upsample`."""

RAY_STORAGE: tuple[str, ...] = ("shared", "object-store")
"""``--ray-storage`` values (first = default); see :mod:`filmcolor.jobs.cluster`."""

SETTING_KEY = "filmcolor.setting"
"""Key of the :class:`Setting` in a :class:`RunConfig` field's ``metadata``."""


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ConfigError: one line naming ``option`` and the accepted values.
    """
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)} (got {value!r})")
    return value


@dataclass(frozen=True)
class Setting:
    """How one :class:`RunConfig` field is offered on the command line and checked.

    The default is the dataclass field's own; everything else about the setting is here.

    Attributes:
        help: the option's help text (``filmcolor run --help``).
        flag: the long option, e.g. ``--batch-size``.
        short: a short alias such as ``-o``, or None.
        lo, hi: inclusive bounds of a number (either may be None: unbounded that side).
        choices: the accepted values of a string setting.
        type: ``int``, ``float``, ``str``, ``bool`` or ``"path"`` (the value type on the CLI).
        negate: ``flag`` turns off a setting that defaults to True (``--no-scene-detect``);
            ``help`` then describes that flag.
        multiple: the option may be given several times (a tuple of values).
        metavar: the value's name in the help, where the type's own is unclear.
        show_default: show the default in the help (None: where there is one to show).
        sweep: ``preview`` takes several values to compare (a comma list or a repeated option)
            rather than this plain option.
        preview: ``preview`` offers the setting (False for job settings and the output path).
    """

    help: str
    flag: str
    short: str | None = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    type: Any = str
    negate: bool = False
    multiple: bool = False
    metavar: str | None = None
    show_default: bool | None = None
    sweep: bool = False
    preview: bool = True

    def bounds_text(self) -> str:
        """``"32..2048"``, ``">= 1"`` or ``"<= 4"``: the bounds as the error messages word them."""
        if self.lo is not None and self.hi is not None:
            return f"in {self.lo:g}..{self.hi:g}"
        return f">= {self.lo:g}" if self.lo is not None else f"<= {self.hi:g}"

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigError` (one line, naming the flag) if ``value`` is out of bounds.

        None passes: it means "the default" (the model's own render size, for example).
        """
        if value is None:
            return
        if self.choices is not None:
            check_choice(self.flag, value, self.choices)
        if self.lo is None and self.hi is None:
            return
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ConfigError(f"{self.flag} must be {self.bounds_text()} (got {value})")


def setting(help: str, *, flag: str, **options: Any) -> dict[str, Setting]:
    """Field metadata declaring a run setting: ``field(default=..., metadata=setting(...))``.

    Args:
        help: the option's help text.
        flag: the long option.
        **options: any other :class:`Setting` attribute (``lo``, ``hi``, ``choices``...).
    """
    return {SETTING_KEY: Setting(help=help, flag=flag, **options)}


VIDEO_SUFFIX: str = ".mp4"
"""Container of the default output for a video input."""


@dataclass
class RunConfig:
    """Everything a colourisation run needs (the CLI fills it; library users may too).

    Each field's help and bounds are in its metadata (see :func:`settings`); invalid values raise
    :class:`filmcolor.errors.ConfigError` on construction.

    Attributes:
        input: video file, image file or folder of images.
        output: output path (default ``<stem>.colour.<ext>`` beside the input; a folder for
            folders).
        overwrite: replace an existing output.
        model: registry name (``filmcolor models``); None = the default model.
        weights: explicit weights file for the model.
        device: ``auto | cpu | cuda[:N] | mps``.
        batch_size: frames per forward pass, 1..1024.
        render_size: short side the model sees, 32..2048 (None = the model's default).
        vividness: chroma gain 0..4 (None = the model's default; 1 = the colours as predicted).
        fade_unsure: fade of the colour the model is unsure of, 0..64 (None = the model's
            default for the input kind: films fade, photos do not; 0 = no fade).
        smoothing: temporal chroma smoothing strength 0..1 (0 = off).
        temporal: ``flow`` (window + flow-guided colour hold, the default) or ``window``.
        upsample: chroma upsampling, ``bilateral`` (edge-aware, the default) or ``bilinear``.
        scene_detect: detect scene cuts (smoothing never crosses one).
        codec, crf, preset: video encoder settings (crf/preset where the codec has them).
        quiet: no progress bar.
        strict: refuse a damaged film (exit 3) instead of concealing its lost frames.
        job_dir: job directory of a video run (default ``<output>.filmcolor-job`` beside it).
        chunk_frames: most frames per chunk of a job.
        keep_chunks: keep the job directory and its chunk files after success.
        restart: start a job over when its directory holds one made with other settings.
        references: reference stills, ``IMAGE`` (every shot) or ``IMAGE@T`` (the shot holding T);
            see :mod:`filmcolor.guide.spec`.
        hints: a JSON or TOML file of colour hints.
        ray: run a film's chunks on this Ray cluster (``local``, ``auto``, an address); None:
            in this process. Not a pixel setting: a job may be resumed with or without Ray.
        ray_storage: ``shared`` or ``object-store`` (how Ray workers reach the files).
    """

    input: StrPath
    output: StrPath | None = field(default=None, metadata=setting(
        "Output file (folder for a folder input). Default: <stem>.colour.<ext> beside the input.",
        flag="--output", short="-o", type="path", preview=False))
    overwrite: bool = field(default=False, metadata=setting(
        "Replace an existing output.", flag="--overwrite", type=bool))
    model: str | None = field(default=None, metadata=setting(
        "Model name (see `filmcolor models`). Default: filmcolor-lite0.",
        flag="--model", sweep=True))
    weights: StrPath | None = field(default=None, metadata=setting(
        "Weights file for the model.", flag="--weights", type="path"))
    device: str = field(default="auto", metadata=setting(
        "auto, cpu, cuda, cuda:N or mps.", flag="--device"))
    batch_size: int = field(default=8, metadata=setting(
        "Frames per forward pass (halved automatically if the GPU runs out of memory).",
        flag="--batch-size", type=int, lo=1, hi=1024))
    render_size: int | None = field(default=None, metadata=setting(
        "Short side (px) the model sees; chroma only, the luminance stays full-res. "
        "Default: the model's own (256 for filmcolor-lite0).",
        flag="--render-size", type=int, lo=32, hi=2048, sweep=True))
    vividness: float | None = field(default=None, metadata=setting(
        "Colour strength: 1 = the colours as the model predicts them; above 1 more vivid "
        "(boosted only where the model is sure of the hue); below 1 paler. "
        "Default: the model's own.",
        flag="--vividness", type=float, lo=0.0, hi=4.0, sweep=True))
    fade_unsure: float | None = field(default=None, metadata=setting(
        "How much colour fades where the model is unsure of the hue: 0 = none; larger = only "
        "colour it is sure of stays. Default: the model's own for films (8 for "
        "filmcolor-lite0), none for photos.",
        flag="--fade-unsure", type=float, lo=0.0, hi=64.0))
    # 0.5 is also filmcolor.temporal.smoothing.DEFAULT_STRENGTH (kept equal by a test).
    smoothing: float = field(default=0.5, metadata=setting(
        "Temporal colour smoothing strength (never crosses a scene cut).",
        flag="--smoothing", type=float, lo=0.0, hi=1.0))
    temporal: str = field(default=TEMPORAL_METHODS[0], metadata=setting(
        "flow: the window plus a colour hold that follows the motion (steady colour in still "
        "regions); window: the 9-frame window alone.",
        flag="--temporal", choices=TEMPORAL_METHODS))
    upsample: str = field(default=UPSAMPLE_METHODS[0], metadata=setting(
        "How the model's low-resolution colour is brought to full size: bilateral stops it at "
        "the film's edges; bilinear is plain interpolation.",
        flag="--upsample", choices=UPSAMPLE_METHODS))
    scene_detect: bool = field(default=True, metadata=setting(
        "Do not detect scene cuts.", flag="--no-scene-detect", type=bool, negate=True))
    # The encoder defaults are also filmcolor.io.encode.DEFAULT_CODEC/_CRF/_PRESET (for library
    # callers of the encoder); a test keeps them equal.
    codec: str = field(default="libx264", metadata=setting(
        "Video encoder (FFmpeg name).", flag="--codec"))
    crf: int = field(default=18, metadata=setting(
        "Quality for x264/x265 (lower = better, bigger).", flag="--crf", type=int, lo=0, hi=63))
    preset: str = field(default="medium", metadata=setting(
        "Encoder speed preset.", flag="--preset"))
    quiet: bool = field(default=False, metadata=setting(
        "No progress bar or summary.", flag="--quiet", short="-q", type=bool))
    strict: bool = field(default=False, metadata=setting(
        "Refuse a damaged film (frames that cannot be decoded, or fewer frames than its header "
        "announces) with exit 3 before any output, instead of concealing the lost frames with "
        "a warning.", flag="--strict", type=bool))
    job_dir: StrPath | None = field(default=None, metadata=setting(
        "Job directory of a video run (resumable). Default: <output>.filmcolor-job beside the "
        "output.", flag="--job-dir", type="path", preview=False))
    chunk_frames: int = field(default=2000, metadata=setting(
        "Most frames per chunk of a job (a kill loses at most one chunk).",
        flag="--chunk-frames", type=int, lo=1, preview=False))
    keep_chunks: bool = field(default=False, metadata=setting(
        "Keep the job directory and its chunk files after success.",
        flag="--keep-chunks", type=bool, preview=False))
    restart: bool = field(default=False, metadata=setting(
        "Start the job over if its directory holds one with other settings.",
        flag="--restart", type=bool, preview=False))
    references: tuple[str, ...] = field(default=(), metadata=setting(
        "A colour still to take colours from: for every shot, or with @T (00:12:03.5, 723.5, "
        "17280f) for the shot holding T. Repeatable.",
        flag="--reference", multiple=True, metavar="IMAGE[@T]", sweep=True))
    hints: StrPath | None = field(default=None, metadata=setting(
        'Colour hints (JSON or TOML): {"hints": [{"x": 0.4, "y": 0.6, "color": "#a03020", '
        '"frame": 1200}]}; see README, "Guiding the colours".',
        flag="--hints", type="path", metavar="FILE", sweep=True))
    ray: str | None = field(default=None, metadata=setting(
        "Run the chunks on a Ray cluster: local (start a runtime here), auto, ray://HOST:10001 "
        'or HOST:6379 (pip install "filmcolor[ray]"); see README, "Large collections and '
        'clusters".', flag="--ray", metavar="ADDRESS", preview=False))
    ray_storage: str = field(default=RAY_STORAGE[0], metadata=setting(
        "How Ray workers reach the film: shared (the same paths on every node) or "
        "object-store (shipped through Ray, for nodes without a shared file system).",
        flag="--ray-storage", choices=RAY_STORAGE, preview=False))

    def __post_init__(self) -> None:
        for f, s in settings():
            s.check(getattr(self, f.name))
        self.references = tuple(str(r) for r in self.references)

    def pixel_settings(self) -> dict:
        """The settings that change output pixels (for job manifests and previews)."""
        keep = ("model", "render_size", "vividness", "fade_unsure", "smoothing", "temporal",
                "upsample", "scene_detect", "codec", "crf", "preset")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in keep}


def settings() -> Iterator[tuple[Field, Setting]]:
    """Each :class:`RunConfig` field that is a user setting, with its :class:`Setting`, in order."""
    for f in fields(RunConfig):
        s = f.metadata.get(SETTING_KEY)
        if s is not None:
            yield f, s


OWN_OUTPUT_STEM = re.compile(r"\.(colour|preview-\d+-\d+)$")
"""Matches the stem of a file filmcolor names by default: ``x.colour.mp4``, ``x.preview-0-120.mp4``
(and the preview's contact sheet ``x.preview-0-120.png``)."""


def is_own_output(path: Path) -> bool:
    """True for a file named as filmcolor names its outputs (a folder run leaves them alone)."""
    return bool(OWN_OUTPUT_STEM.search(Path(path).stem))


def default_output(src: Path, kind: str) -> Path:
    """The default output path of ``src``.

    ``movie.mp4 -> movie.colour.mp4``; ``photo.jpg -> photo.colour.jpg``; ``dir -> dir.colour``.
    """
    if kind == "folder":
        return src.with_name(src.name + ".colour")
    suffix = VIDEO_SUFFIX if kind == "video" else src.suffix
    return src.with_name(f"{src.stem}.colour{suffix}")
