"""Run settings: one typed dataclass with validated defaults, shared by the CLI and the library."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from filmcolor.errors import ConfigError

StrPath = str | os.PathLike[str]

TEMPORAL_METHODS: tuple[str, ...] = ("flow", "window")
"""``--temporal`` values (first = default); the stages live in :mod:`filmcolor.temporal.chain`."""

UPSAMPLE_METHODS: tuple[str, ...] = ("bilateral", "bilinear")
"""``--upsample`` values (first = default); see :mod:`filmcolor.infer.upsample`."""

def check_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ConfigError: one line naming ``option`` and the accepted values.
    """
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)} (got {value!r})")
    return value


VIDEO_SUFFIX: str = ".mp4"
"""Container of the default output for a video input."""


@dataclass
class RunConfig:
    """Everything a colourisation run needs (the CLI fills it; library users may too).

    Attributes:
        input: video file, image file or folder of images.
        output: output path (default ``<stem>.colour.<ext>`` beside the input; a folder for folders).
        overwrite: replace an existing output.
        model: registry name (``filmcolor models``); None = the default model.
        weights: explicit weights file for the model.
        device: ``auto | cpu | cuda[:N] | mps``.
        batch_size: frames per forward pass.
        render_size: short side the model sees (None = the model's default).
        vividness: chroma gain 0..4 (None = the model's default; 1 = the colours as predicted).
        smoothing: temporal chroma smoothing strength 0..1 (0 = off).
        temporal: ``flow`` (window + flow-guided colour hold, the default) or ``window``.
        upsample: chroma upsampling, ``bilateral`` (edge-aware, the default) or ``bilinear``.
        scene_detect: detect scene cuts (smoothing never crosses one).
        codec, crf, preset: video encoder settings (crf/preset where the codec has them).
        quiet: no progress bar.
        job_dir: job directory of a video run (default ``<output>.filmcolor-job`` beside it).
        chunk_frames: most frames per chunk of a job.
        keep_chunks: keep the job directory and its chunk files after success.
        restart: start a job over when its directory holds one made with other settings.
        references: reference stills, ``IMAGE`` (every shot) or ``IMAGE@T`` (the shot holding T);
            see :mod:`filmcolor.guide.spec`.
        hints: a JSON or TOML file of colour hints.
    """

    input: StrPath
    output: StrPath | None = None
    overwrite: bool = False
    model: str | None = None
    weights: StrPath | None = None
    device: str = "auto"
    batch_size: int = 8
    render_size: int | None = None
    vividness: float | None = None
    smoothing: float = 0.5
    temporal: str = "flow"
    upsample: str = "bilateral"
    scene_detect: bool = True
    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    quiet: bool = False
    job_dir: StrPath | None = None
    chunk_frames: int = 2000
    keep_chunks: bool = False
    restart: bool = False
    references: tuple[str, ...] = ()
    hints: StrPath | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1 (got {self.batch_size})")
        if self.render_size is not None and not 32 <= self.render_size <= 2048:
            raise ConfigError(f"--render-size must be in 32..2048 (got {self.render_size})")
        if self.vividness is not None and not 0.0 <= self.vividness <= 4.0:
            raise ConfigError(f"--vividness must be in 0..4 (got {self.vividness})")
        if not 0.0 <= self.smoothing <= 1.0:
            raise ConfigError(f"--smoothing must be in 0..1 (got {self.smoothing})")
        check_choice("--temporal", self.temporal, TEMPORAL_METHODS)
        check_choice("--upsample", self.upsample, UPSAMPLE_METHODS)
        if self.chunk_frames < 1:
            raise ConfigError(f"--chunk-frames must be >= 1 (got {self.chunk_frames})")
        self.references = tuple(str(r) for r in self.references)
        if not 0 <= self.crf <= 63:
            raise ConfigError(f"--crf must be in 0..63 (got {self.crf})")

    def pixel_settings(self) -> dict:
        """The settings that change output pixels (for job manifests and previews)."""
        keep = ("model", "render_size", "vividness", "smoothing", "temporal", "upsample",
                "scene_detect", "codec", "crf", "preset")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in keep}


def default_output(src: Path, kind: str) -> Path:
    """``movie.mp4 -> movie.colour.mp4``; ``photo.jpg -> photo.colour.jpg``; ``dir -> dir.colour``."""
    if kind == "folder":
        return src.with_name(src.name + ".colour")
    suffix = VIDEO_SUFFIX if kind == "video" else src.suffix
    return src.with_name(f"{src.stem}.colour{suffix}")
