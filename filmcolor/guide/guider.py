"""Guidance at run time: which references and hints apply to a frame, as planes for the model.

A :class:`Guide` is made once per run (:func:`prepare_guide`): each reference still is reduced to
an :class:`~filmcolor.guide.planes.Exemplar` by the model's own encoder, positions are turned
into frame indices, and a hint tied to one frame keeps the descriptor of the spot it marks in
that frame. The model stage then asks :meth:`Guide.planes` for each batch.

A timed reference or hint guides exactly the shot that contains its position: the shot is found
from the film's cut list (:meth:`Guide.set_cuts`; a job's plan or a preview's scan), so guidance
never crosses a cut and every chunk of a job resolves it alike. Within the shot, the reference is
matched to every frame by the encoder's features (its colours follow the content wherever it
moves), and a hint is carried to the cell whose descriptor best matches the spot it marked, or
dropped for a frame where nothing matches well (the object has left the picture).
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from filmcolor.color.space import rgb_to_lab
from filmcolor.errors import ConfigError
from filmcolor.guide.planes import (
    HINT_SPREAD,
    Exemplar,
    match_features,
    paint_hints,
    spread_hints,
    to_planes,
    transfer,
)
from filmcolor.guide.spec import GuidanceSpec, HintSpec, ReferenceSpec
from filmcolor.timecode import parse_position

logger = logging.getLogger("filmcolor")

TRACK_MIN: float = 0.75
"""Least cosine similarity at which a timed hint is carried to another frame of its shot."""


def rgb_to_ab(rgb: tuple[int, int, int]) -> tuple[float, float]:
    """Lab a/b of an sRGB colour given as 0..255 integers."""
    t = torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
    lab = rgb_to_lab(t)[0, :, 0, 0]
    return float(lab[1]), float(lab[2])


def supports_guidance(model: torch.nn.Module) -> bool:
    """Whether a model has a guidance head (filmcolor's own models do; third-party ones do not)."""
    return hasattr(model, "guide_head") and hasattr(model, "encode") and hasattr(model, "decode")


@dataclass
class ResolvedHint:
    """A hint ready for the planes: position and radius relative to the picture, colour in Lab
    a/b, the frame it marks (None: every shot) and that spot's descriptor for tracking."""

    x: float
    y: float
    a: float
    b: float
    radius: float
    frame: int | None = None
    anchor: torch.Tensor | None = None  # (C,) descriptor of the marked spot in ``frame``


@dataclass
class Guide:
    """Resolved guidance of one run.

    Attributes:
        film_exemplar: the references without a position (every shot), joined; or None.
        shot_exemplars: frame index of a timed reference -> its exemplar.
        hints: every hint, with its frame (None: every shot).
        cuts: the film's shot starts (:meth:`set_cuts`); empty: one shot.
        hint_spread: reach of a hint's region search (:func:`spread_hints`); 0: discs only.
    """

    film_exemplar: Exemplar | None = None
    shot_exemplars: dict[int, Exemplar] = field(default_factory=dict)
    hints: list[ResolvedHint] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    hint_spread: float = HINT_SPREAD

    def set_cuts(self, cuts: list[int]) -> None:
        """The film's shot starts (0 implied) from a planning pass or a preview's scan."""
        self.cuts = sorted(c for c in set(cuts) if c > 0)

    def shot_of(self, index: int) -> int:
        """Start of the shot that holds frame ``index``."""
        k = bisect.bisect_right(self.cuts, index)
        return self.cuts[k - 1] if k else 0

    def applies(self, index: int) -> bool:
        """Whether any guidance reaches frame ``index`` (if not, the model runs unguided)."""
        if self.film_exemplar is not None or any(h.frame is None for h in self.hints):
            return True
        shot = self.shot_of(index)
        return any(self.shot_of(f) == shot for f in self.shot_exemplars) or any(
            h.frame is not None and self.shot_of(h.frame) == shot for h in self.hints
        )

    def exemplar_for(self, index: int) -> Exemplar | None:
        """The exemplar guiding frame ``index``: its shot's own references, else the film's."""
        shot = self.shot_of(index)
        own = [e for f, e in self.shot_exemplars.items() if self.shot_of(f) == shot]
        if own:
            return join_exemplars(own)
        return self.film_exemplar

    def planes(
        self, indices: list[int], desc: torch.Tensor, size: tuple[int, int], frac: tuple[float, float]
    ) -> list[torch.Tensor | None]:
        """Guidance planes for frames ``indices`` of one batch, or None for an unguided frame.

        Args:
            indices: the frames' indices in the film.
            desc: their matching descriptors ``(N, C, h8, w8)`` (:func:`match_features`).
            size: ``(h, w)`` of the model's a/b grid (padded).
            frac: the unpadded share ``(rh / ph, rw / pw)`` of the padded input, which relative
                hint positions refer to.
        """
        out: list[torch.Tensor | None] = []
        fh, fw = frac
        for i, index in enumerate(indices):
            if not self.applies(index):
                out.append(None)
                continue
            ex = self.exemplar_for(index)
            if ex is not None:
                ab, conf = transfer(desc[i : i + 1], ex)
                plane = to_planes(ab, conf, size)[0]
            else:
                plane = torch.zeros(3, *size)
            shot = self.shot_of(index)
            points = []
            for h in self.hints:
                if h.frame is None or h.frame == index:
                    points.append((h.x * fw, h.y * fh, h.a, h.b, h.radius * fw))
                elif self.shot_of(h.frame) == shot and h.anchor is not None:
                    pos = _track(desc[i], h.anchor)
                    if pos is not None:
                        points.append((pos[0], pos[1], h.a, h.b, h.radius * fw))
            if self.hint_spread > 0:
                spread_hints(plane, desc[i], points, self.hint_spread)
            out.append(paint_hints(plane, points))
        return out


def join_exemplars(exemplars: list[Exemplar]) -> Exemplar:
    """One exemplar from several (their cells pooled)."""
    if len(exemplars) == 1:
        return exemplars[0]
    return Exemplar(torch.cat([e.keys for e in exemplars], 1), torch.cat([e.ab for e in exemplars], 0))


def _track(desc: torch.Tensor, anchor: torch.Tensor) -> tuple[float, float] | None:
    """Relative (x, y) of the cell of ``desc (C, h, w)`` most like ``anchor``, if like enough."""
    c, h, w = desc.shape
    sims = anchor.to(desc.dtype) @ desc.reshape(c, h * w)
    best = int(sims.argmax())
    if float(sims[best]) < TRACK_MIN:
        return None
    return ((best % w) + 0.5) / w, ((best // w) + 0.5) / h


def _anchor(desc: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Descriptor of ``desc (C, h, w)`` at relative ``(x, y)`` (bilinear, renormalised)."""
    grid = torch.tensor([[[[2 * x - 1, 2 * y - 1]]]], dtype=desc.dtype)
    v = F.grid_sample(desc[None], grid, mode="bilinear", align_corners=False)[0, :, 0, 0]
    return F.normalize(v, dim=0)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB float32 ``(H, W, 3)`` in [0, 1] (8 or 16 bit)."""
    from filmcolor.io.probe import read_image

    img = read_image(path)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    rgb = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / np.float32(scale)
    return np.clip(rgb, 0.0, 1.0)


class Describer:
    """Matching descriptors of pictures, by the model's encoder at the run's render size."""

    def __init__(self, colorizer) -> None:
        self.colorizer = colorizer

    @torch.inference_mode()
    def __call__(self, luma: np.ndarray) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
        """Descriptors ``(C, h8, w8)`` of a luma plane, its render size and padded size."""
        from filmcolor.frames import Frame

        col = self.colorizer
        geo = col.geometry(luma.shape)
        x = col._prepare([Frame(0, luma)], geo)
        feats = col.model.encode(col._to_device(x))
        return match_features(feats)[0].cpu(), geo.size, geo.padded

    def exemplar(self, rgb: np.ndarray) -> Exemplar:
        """An exemplar of an RGB image ``(H, W, 3)`` in [0, 1]."""
        t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
        lab = rgb_to_lab(t)[0]
        luma = rgb @ np.float32([0.299, 0.587, 0.114])
        desc, (rh, rw), (ph, pw) = self(luma.astype(np.float32))
        _c, h, w = desc.shape
        # The a/b of each descriptor cell: the image's a/b resized to the render size, padded as
        # the input was (edge), pooled to the descriptor grid; padded cells are left out.
        ab = F.interpolate(lab[None, 1:], size=(rh, rw), mode="area")[0]
        ab = F.pad(ab[None], (0, pw - rw, 0, ph - rh), mode="replicate")[0]
        valid = torch.zeros(h, w, dtype=torch.bool)
        valid[: max(1, round(h * rh / ph)), : max(1, round(w * rw / pw))] = True
        return Exemplar.from_maps(desc, ab, valid)


def prepare_guide(
    spec: GuidanceSpec,
    colorizer,
    src: Path | None = None,
    rate: Fraction | None = None,
    total: int | None = None,
) -> Guide | None:
    """Resolve ``spec`` for one source: exemplars made, positions checked and located.

    Args:
        spec: parsed guidance (:func:`filmcolor.guide.spec.load_guidance`).
        colorizer: the run's model stage (its model must take guidance).
        src: the film (needed to read the frame a timed hint marks); None for a still.
        rate: the film's average frame rate (positions to frame indices).
        total: the film's frame count (a still: 1).

    Raises:
        ConfigError: the model takes no guidance, or a position lies outside the film.
    """
    if not spec:
        return None
    if not supports_guidance(colorizer.model):
        raise ConfigError(
            f"model {colorizer.cfg.name} does not take references or hints; use filmcolor-lite0"
        )
    describer = Describer(colorizer)
    total = 1 if total is None else total
    guide = Guide()

    def locate(at: str, what: str) -> int:
        index = parse_position(at, rate or Fraction(1), what)
        if index >= total:
            length = f"{total} frame{'s' if total != 1 else ''}"
            raise ConfigError(f"{what} position {at} is past the end of the source ({length})")
        return index

    film: list[Exemplar] = []
    for ref in spec.references:
        ex = describer.exemplar(read_rgb(ref.path))
        if ref.at is None:
            film.append(ex)
        else:
            index = locate(ref.at, f"--reference {ref}")
            prev = guide.shot_exemplars.get(index)
            guide.shot_exemplars[index] = ex if prev is None else join_exemplars([prev, ex])
    guide.film_exemplar = join_exemplars(film) if film else None
    anchors: dict[int, torch.Tensor] = {}
    for h in spec.hints:
        a, b = rgb_to_ab(h.rgb)
        hint = ResolvedHint(h.x, h.y, a, b, h.radius)
        if h.at is not None:
            hint.frame = locate(h.at, "--hints frame")
            if src is None:
                guide.hints.append(hint)  # a still: its one frame is the hint's frame
                continue
            if hint.frame not in anchors:
                anchors[hint.frame] = _frame_descriptors(describer, src, hint.frame)
            hint.anchor = _anchor(anchors[hint.frame], *_padded_xy(describer, src, h))
        guide.hints.append(hint)
    return guide


def _padded_xy(describer: Describer, src: Path | None, h: HintSpec) -> tuple[float, float]:
    # The descriptor grid covers the padded input; relative positions refer to the picture.
    fr = describer.colorizer
    shape = _source_shape(src) if src is not None else None
    if shape is None:
        return h.x, h.y
    geo = fr.geometry(shape)
    return h.x * geo.size[1] / geo.padded[1], h.y * geo.size[0] / geo.padded[0]


def _source_shape(src: Path) -> tuple[int, int] | None:
    from filmcolor.io.probe import probe

    info = probe(src)
    return (info.height, info.width) if getattr(info, "height", None) else None


def _frame_descriptors(describer: Describer, src: Path | None, index: int) -> torch.Tensor:
    """Descriptors of frame ``index`` of ``src`` (a still: its only frame)."""
    from filmcolor.io.decode import decode

    if src is None:
        raise ConfigError("a hint's frame needs the source film")
    seek = _seek_pts(src, index)
    for fr in decode(src, index, index + 1, seek_pts=seek):
        return describer(fr.luma)[0]
    raise ConfigError(f"--hints frame {index} could not be decoded from {src.name}")


def _seek_pts(src: Path, index: int) -> int | None:
    if index == 0:
        return None
    from filmcolor.io.seek import locate_frame

    return locate_frame(src, index)


__all__ = ["GuidanceSpec", "Guide", "ReferenceSpec", "ResolvedHint", "prepare_guide", "supports_guidance"]
