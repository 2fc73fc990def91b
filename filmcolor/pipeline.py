"""The one place the stages are wired together: every front end colours through this chain.

    frames = decode(src)                     # bounded background thread
    frames = scenecut.annotate(frames)       # marks frame.scene_start (or the plan's cuts)
    frames = colorizer(frames)               # batched model -> frame.ab
    frames = temporal(frames)                # a/b over time (window + flow hold), never across a cut
    frames = VideoMerger(upsample)(frames)   # Cb/Cr for the source's own luma plane (edge-aware)

:func:`video_stages` is that chain after the decoder; the job engine
(:mod:`filmcolor.jobs.chunk`) runs it on each chunk's frames and encodes them, previews
(:mod:`filmcolor.preview`) on a range; :func:`colour_image` is the same model stage for stills.
What happens to the frames afterwards (encode, join, remux, verify) belongs to the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path

from filmcolor.config import RunConfig
from filmcolor.frames import Frame

logger = logging.getLogger("filmcolor")


def build_colorizer(cfg: RunConfig, footage: bool = True):  # -> Colorizer (lazy torch import)
    """Model + device + batching from the run settings.

    Args:
        cfg: the run settings.
        footage: colouring a film (its default vividness and fade; see :class:`Colorizer`),
            not stills.
    """
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models import create_model
    from filmcolor.models.registry import DEFAULT_MODEL

    model = create_model(cfg.model or DEFAULT_MODEL, weights=cfg.weights)
    return Colorizer(model, cfg.device, cfg.batch_size, cfg.render_size, vividness=cfg.vividness,
                     footage=footage, fade=cfg.fade_unsure)


def load_guidance(cfg: RunConfig):  # -> GuidanceSpec
    """The run's references and hints, parsed and checked (before anything is coloured).

    Raises:
        ConfigError: a missing or unreadable image, or a bad hints file (one line).
    """
    from filmcolor.guide.spec import load_guidance as _load

    return _load(cfg.references, cfg.hints)


def attach_guide(colorizer, spec, src: Path | None = None, rate=None, total: int | None = None,
                 cuts: list[int] | None = None) -> None:
    """Resolve ``spec`` for one source and hand it to the model stage (nothing when empty).

    Raises:
        ConfigError: the model takes no guidance, or a position lies outside the source.
    """
    from filmcolor.guide.guider import prepare_guide

    guide = prepare_guide(spec, colorizer, src, rate, total)
    if guide is not None and cuts is not None:
        guide.set_cuts(cuts)
    colorizer.set_guide(guide)


def mark_cuts(frames: Iterator[Frame], cuts: Collection[int]) -> Iterator[Frame]:
    """Stage: set ``frame.scene_start`` from a cut list made by a planning pass."""
    starts = frozenset(cuts)
    for fr in frames:
        fr.scene_start = fr.index in starts
        yield fr


def _from_index(frames: Iterator[Frame], first: int) -> Iterator[Frame]:
    for fr in frames:
        if fr.index >= first:
            yield fr


def video_stages(
    frames: Iterator[Frame],
    cfg: RunConfig,
    colorizer,
    cuts: Collection[int] | None = None,
    colour_from: int = 0,
) -> Iterator[Frame]:
    """decode output -> scene cuts -> model -> temporal -> merge (shared by jobs and previews).

    Args:
        frames: decoded frames (a whole film, a chunk with its context, or a preview range).
        cfg: run settings.
        colorizer: the model stage (:func:`build_colorizer`).
        cuts: shot starts from a planning pass. Chunks must use these rather than run the
            detector again: its history at a chunk's first frame would differ from that of an
            uninterrupted run. ``None`` runs the detector on ``frames`` (if ``cfg.scene_detect``).
        colour_from: frames before this index only go through the scene-cut stage (a preview's
            look-back warms the detector up; colouring it would be wasted work).
    """
    from filmcolor.infer.merge import VideoMerger
    from filmcolor.temporal.chain import build_temporal
    from filmcolor.temporal.scenecut import SceneCutDetector

    if cuts is not None:
        frames = mark_cuts(frames, cuts)
    elif cfg.scene_detect:
        frames = SceneCutDetector().annotate(frames)
    if colour_from > 0:
        frames = _from_index(frames, colour_from)
    frames = colorizer(frames)
    frames = build_temporal(cfg.smoothing, cfg.temporal)(frames)
    return VideoMerger(cfg.upsample)(frames)


def colour_image(colorizer, image, upsample: str):
    """One still through the model stage and the merge: uint8 RGB ``(H, W, 3)``.

    Args:
        colorizer: the model stage (:func:`build_colorizer` with ``footage=False``).
        image: the decoded still (:func:`~filmcolor.io.decode.decode_image`).
        upsample: the chroma upsampling (``RunConfig.upsample``).
    """
    from filmcolor.infer.merge import merge_rgb

    # Stills differ in size, so each goes through the model on its own.
    frame = colorizer.colorize_batch([image])[0]
    return merge_rgb(frame, upsample)
