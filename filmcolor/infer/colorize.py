"""The model stage: ``Iterator[Frame] -> Iterator[Frame]`` with ``frame.ab`` filled in, in batches.

Frames are reduced to Lab lightness at the render size (aspect kept, padded to the network's
stride), run through the model in batches on the chosen device, and the predicted a/b is cropped
back to the unpadded area. The full-resolution luminance is never touched here; merging happens
after temporal smoothing (:mod:`filmcolor.infer.merge`).

CPU and GPU share every line but the device: on CUDA the batch is staged in pinned memory and
copied asynchronously, the model runs in half precision, and an out-of-memory error halves the
batch and retries the *same* frames, so no frame ever leaves uncoloured.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from filmcolor.color.space import luma_to_lightness
from filmcolor.errors import FilmcolorError
from filmcolor.frames import Frame
from filmcolor.infer.device import resolve_device
from filmcolor.infer.fuse import fold_batchnorm
from filmcolor.models.base import ChromaModel

logger = logging.getLogger("filmcolor")


class OutOfMemoryError(FilmcolorError):
    """The model does not fit on the device even one frame at a time."""


@dataclass(frozen=True)
class RenderGeometry:
    """How a ``(H, W)`` frame maps to the network input.

    Attributes:
        size: ``(h, w)`` the frame is resized to (aspect kept unless the model wants squares).
        padded: ``(h, w)`` after padding to a multiple of the stride.
    """

    size: tuple[int, int]
    padded: tuple[int, int]

    @staticmethod
    def for_frame(
        shape: tuple[int, int], render_size: int, stride: int, square: bool = False
    ) -> RenderGeometry:
        """Geometry of a frame of ``shape`` at ``render_size`` (the short side, in pixels)."""
        h, w = shape
        if square:
            # DeOldify-style models were trained on stretched squares; their output is resized back.
            s = max(stride, round(render_size / stride) * stride)
            return RenderGeometry((s, s), (s, s))
        scale = render_size / min(h, w)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        ph, pw = -(-rh // stride) * stride, -(-rw // stride) * stride
        return RenderGeometry((rh, rw), (ph, pw))


class Colorizer:
    """Batched chroma prediction stage.

    Args:
        model: any registered :class:`ChromaModel`.
        device: ``auto | cpu | cuda[:N] | mps`` or a torch.device.
        batch_size: frames per forward pass (halved automatically on CUDA out-of-memory).
        render_size: short side of the network input; default: the model's ``cfg.render_size``.
        half: run in float16 (default: on CUDA only).
        vividness: chroma gain of the output (default: the model's own; 1 = as predicted). For
            models that predict a distribution over colours (filmcolor's own) the gain applies
            where the hue is certain, so unsure areas stay muted rather than turning a vivid
            wrong colour; other models' chroma is scaled uniformly.
        fade: how strongly colour fades where the model is unsure of the hue (its chroma is
            scaled by the hue certainty to this power; 0: no fade). Default: the model's footage
            fade for films, none for photos. Only models that predict a colour distribution
            (filmcolor's own) have a certainty; for others it does nothing.
        footage: the frames are a film's, not photos: without an explicit ``vividness`` or
            ``fade`` the model's footage defaults (``cfg.extra["footage_vividness"]``,
            ``cfg.extra["footage_fade"]``) apply where it has them. Measured on footage turned
            grey, the photo decoding painted muted scenes with colour they did not have, further
            from the truth than grey (#13; README, "Colour on footage").
    """

    def __init__(
        self,
        model: ChromaModel,
        device: str | torch.device = "auto",
        batch_size: int = 8,
        render_size: int | None = None,
        half: bool | None = None,
        vividness: float | None = None,
        footage: bool = False,
        fade: float | None = None,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.half = (self.device.type == "cuda") if half is None else half
        self.batch_size = max(1, int(batch_size))
        self.render_size = int(render_size or model.cfg.render_size)
        self.cfg = model.cfg
        gain = getattr(getattr(model, "bins", None), "chroma_gain", None)
        self._model_gain = float(gain) if gain is not None else None
        self.chroma_scale = 1.0  # applied to the output of models without a colour distribution
        self.guide = None  # a filmcolor.guide.Guide: references and hints (see set_guide)
        self.model = model
        if footage:
            film_vividness, film_fade = self.footage_defaults()
            vividness = film_vividness if vividness is None else vividness
            fade = film_fade if fade is None else fade
        if vividness is not None:
            self.set_vividness(vividness)
        if fade is not None:
            self.set_fade(fade)
        model = model.eval()
        # The Colorizer owns the model from here: BatchNorm is folded into the convolutions
        # (inference only), which cuts the CPU time of EfficientNet-Lite0 by about a third.
        fold_batchnorm(model)
        model = model.to(self.device)
        if self.device.type == "cpu":
            # Channels-last roughly halves EfficientNet's CPU time (measured by the benchmark).
            model = model.to(memory_format=torch.channels_last)
        if self.half:
            model = model.half()
        self.model = model

    def footage_defaults(self) -> tuple[float, float]:
        """The vividness and the fade of unsure colour that a film run uses by default with this
        model: ``cfg.extra["footage_vividness"]`` and ``cfg.extra["footage_fade"]`` where the
        model has them, else the vividness stored with its weights and no fade. The one place
        that knows them, for the CLI, the studio and the studies alike."""
        extra = self.cfg.extra
        photo = self._model_gain if self._model_gain is not None else 1.0
        return float(extra.get("footage_vividness", photo)), float(extra.get("footage_fade", 0.0))

    @property
    def model_vividness(self) -> float | None:
        """The vividness stored with the model's weights (None for models without one)."""
        return self._model_gain

    @property
    def vividness(self) -> float:
        """The chroma gain in use (1 = the colours as predicted)."""
        gain = getattr(getattr(self.model, "bins", None), "chroma_gain", None)
        return float(gain) if gain is not None else self.chroma_scale

    def set_vividness(self, vividness: float) -> None:
        """Change the chroma gain for the frames coloured from now on (see the class doc)."""
        gain = getattr(getattr(self.model, "bins", None), "chroma_gain", None)
        if gain is not None:
            gain.fill_(float(vividness))
        else:
            self.chroma_scale = float(vividness)

    @property
    def fade(self) -> float:
        """The fade of unsure colour in use (0: none; see the class doc)."""
        fade = getattr(getattr(self.model, "bins", None), "fade_power", None)
        return float(fade) if fade is not None else 0.0

    def set_fade(self, fade: float) -> None:
        """Change the fade of unsure colour for the frames coloured from now on."""
        buf = getattr(getattr(self.model, "bins", None), "fade_power", None)
        if buf is not None:
            buf.fill_(float(fade))

    def set_guide(self, guide) -> None:
        """Colour the frames from now on with ``guide`` (:func:`filmcolor.guide.prepare_guide`);
        frames it does not reach go through the automatic model exactly as without one."""
        self.guide = guide

    def geometry(self, shape: tuple[int, int]) -> RenderGeometry:
        """Render geometry for frames of ``shape``."""
        return RenderGeometry.for_frame(shape, self.render_size, self.cfg.stride, self.cfg.square)

    def _prepare(self, frames: list[Frame], geo: RenderGeometry) -> torch.Tensor:
        rh, rw = geo.size
        ph, pw = geo.padded
        # Each model is fed as it was trained: filmcolor's own models with OpenCV's area
        # average, third-party ones with their published filter (ModelCfg.extra["resize_filter"]).
        resize_filter = self.cfg.extra.get("resize_filter", "area")
        arr = np.empty((len(frames), 1, ph, pw), dtype=np.float32)
        for i, fr in enumerate(frames):
            small = resize_luma(fr.luma, (rh, rw), resize_filter)
            # Reflect-pad to the stride instead of stretching, so the aspect ratio stays true.
            arr[i, 0] = np.pad(small, ((0, ph - rh), (0, pw - rw)), mode="reflect" if
                               (ph - rh < rh and pw - rw < rw) else "edge")
        t = torch.from_numpy(arr)
        return luma_to_lightness(t)

    def _to_device(self, lightness: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            # Pinned staging lets the copy run asynchronously, queued ahead of the kernels.
            x = lightness.pin_memory().to(self.device, non_blocking=True)
        else:
            x = lightness.to(self.device)
        return x.half() if self.half else x

    @torch.inference_mode()
    def predict(self, lightness: torch.Tensor) -> torch.Tensor:
        """Run the model on lightness ``(N, 1, H, W)`` (CPU tensor) -> a/b ``(N, 2, h, w)`` float32 CPU.

        On out-of-memory the batch is split in halves and retried, and later batches use the
        smaller size.

        Raises:
            OutOfMemoryError: even a single frame does not fit.
        """
        try:
            ab = self.model.predict_ab(self._to_device(lightness)).float().cpu()
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not _is_out_of_memory(e):
                raise
            return self._split_after_oom(lightness, e)
        return ab * self.chroma_scale if self.chroma_scale != 1.0 else ab

    @torch.inference_mode()
    def predict_guided(
        self, lightness: torch.Tensor, indices: list[int], geo: RenderGeometry
    ) -> torch.Tensor:
        """Like :meth:`predict`, with the guidance of :attr:`guide` for the frames it reaches.

        The encoder runs once per batch: its features feed the decoder and the reference
        matching alike. Frames without guidance get exactly the automatic model's logits.
        Where the guidance is sure, its colours are decoded as they are: the vividness gain is
        the model's correction for its own doubt, which a user's colour does not have.
        """
        from filmcolor.guide.planes import match_features

        m = self.model
        x = self._to_device(lightness)
        feats = m.encode(x)
        logits, dec = m.decode(feats)
        size = tuple(logits.shape[-2:])
        frac = (geo.size[0] / geo.padded[0], geo.size[1] / geo.padded[1])
        planes = self.guide.planes(indices, match_features(feats).cpu(), size, frac)
        rows = [i for i, p in enumerate(planes) if p is not None]
        # Unguided frames of a mixed batch are decoded with the whole batch, exactly as without
        # a guide (a subset could round differently); a fully guided batch skips that decode.
        ab = m.bins.decode(logits) if len(rows) < len(planes) else logits.new_empty(
            (logits.shape[0], 2, *size), dtype=torch.float32)
        if rows:
            sel = torch.tensor(rows, device=logits.device)
            guide = torch.stack([planes[i] for i in rows]).to(logits.device, logits.dtype)
            g_logits = m.guided_logits(logits[sel], [d[sel] for d in dec], guide)
            sure = _guidance_reach(guide[:, 2:3].float())
            ab[sel] = m.bins.decode(g_logits, gain_weight=1.0 - sure).to(ab.dtype)
        ab = ab.float().cpu()
        return ab * self.chroma_scale if self.chroma_scale != 1.0 else ab

    def _guided_with_retry(
        self, lightness: torch.Tensor, indices: list[int], geo: RenderGeometry
    ) -> torch.Tensor:
        """:meth:`predict_guided` with the out-of-memory rule of :meth:`predict` (halve, retry)."""
        try:
            return self.predict_guided(lightness, indices, geo)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not _is_out_of_memory(e):
                raise
            k = self._halve_after_oom(lightness.shape[0], e)
            return torch.cat([self._guided_with_retry(lightness[:k], indices[:k], geo),
                              self._guided_with_retry(lightness[k:], indices[k:], geo)])

    def _split_after_oom(self, lightness: torch.Tensor, error: BaseException) -> torch.Tensor:
        k = self._halve_after_oom(lightness.shape[0], error)
        return torch.cat([self.predict(lightness[:k]), self.predict(lightness[k:])])

    def _halve_after_oom(self, n: int, error: BaseException) -> int:
        """After an out-of-memory error on ``n`` frames: lower the batch size and return where to
        split them, or raise if one frame did not fit."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if n == 1:
            raise OutOfMemoryError(
                f"out of memory on {self.device} even for one frame at render size "
                f"{self.render_size}; lower --render-size or use --device cpu"
            ) from error
        self.batch_size = max(1, n // 2)
        logger.warning("out of memory on %s: batch size lowered to %d", self.device, self.batch_size)
        return n // 2

    @torch.inference_mode()
    def _launch(self, frames: list[Frame]) -> _Batch:
        """Start a batch. On CUDA the work is only queued (copy in, model, copy out into pinned
        memory) and an event marks its end, so the CPU can prepare the next batch and merge and
        encode the previous one while the GPU computes; elsewhere it runs to completion."""
        geo = self.geometry(frames[0].shape)
        x = self._prepare(frames, geo)
        if self.guide is not None and any(self.guide.applies(fr.index) for fr in frames):
            return _Batch(frames, geo, self._guided_with_retry(x, [fr.index for fr in frames], geo))
        if self.device.type != "cuda":
            return _Batch(frames, geo, self.predict(x))
        try:
            ab = self.model.predict_ab(self._to_device(x)).float().to("cpu", non_blocking=True)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not _is_out_of_memory(e):
                raise
            return _Batch(frames, geo, self._split_after_oom(x, e))  # synchronous from here
        done = torch.cuda.Event()
        done.record()
        return _Batch(frames, geo, ab, done)

    def _finish(self, batch: _Batch) -> list[Frame]:
        """Wait for a launched batch and fill ``frame.ab`` (cropped to the unpadded area)."""
        if batch.done is not None:
            batch.done.synchronize()
            if self.chroma_scale != 1.0:
                batch.ab = batch.ab * self.chroma_scale
        geo, ab = batch.geometry, batch.ab
        sh = ab.shape[-2] / geo.padded[0]
        sw = ab.shape[-1] / geo.padded[1]
        ch, cw = max(1, round(geo.size[0] * sh)), max(1, round(geo.size[1] * sw))
        ab = ab[..., :ch, :cw]
        for fr, a in zip(batch.frames, ab, strict=True):
            fr.ab = np.ascontiguousarray(a.numpy())
        return batch.frames

    def colorize_batch(self, frames: list[Frame]) -> list[Frame]:
        """Fill ``frame.ab`` for a list of frames of one size (cropped to the unpadded area)."""
        return self._finish(self._launch(frames))

    def __call__(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """Stage: pull up to ``batch_size`` frames, colourise them, yield them in order.

        Batches are aligned to absolute frame indices (a batch never crosses a multiple of
        ``batch_size``). On the CPU a frame's a/b depends, by a few ulp, on how many frames share
        its forward pass (measured: the tiny model differs by 2.5e-5 between a batch of 1 and one
        of 8), so a chunk or a preview that starts mid-film must form exactly the batches of an
        uninterrupted run to give bit-identical output (#4). The chunk planner and the preview
        decode from a multiple of ``batch_size`` for the same reason.

        One batch is kept in flight: batch *k+1* is launched before the frames of batch *k* are
        handed on, so on a GPU the model works while the later stages (smoothing, merge, encode)
        run on the CPU.
        """
        pending: _Batch | None = None
        batch: list[Frame] = []

        def launch(frames_: list[Frame]) -> Iterator[Frame]:
            nonlocal pending
            previous, pending = pending, self._launch(frames_)
            if previous is not None:
                yield from self._finish(previous)

        for fr in frames:
            if batch and (fr.shape != batch[0].shape or fr.index % self.batch_size == 0):
                yield from launch(batch)
                batch = []
            batch.append(fr)
            if len(batch) >= self.batch_size:
                yield from launch(batch)
                batch = []
        if batch:
            yield from launch(batch)
        if pending is not None:
            yield from self._finish(pending)


@dataclass
class _Batch:
    """A launched batch: its frames, geometry, a/b (on the host) and, on CUDA, its end event."""

    frames: list[Frame]
    geometry: RenderGeometry
    ab: torch.Tensor
    done: torch.cuda.Event | None = None


def _guidance_reach(conf: torch.Tensor, cells: int = 9) -> torch.Tensor:
    """How strongly guidance holds around each cell: the confidence plane ``(N, 1, h, w)``
    spread by a box of ``cells`` (a hint colours its region, not only its disc), in [0, 1]."""
    spread = F.max_pool2d(conf, 3, stride=1, padding=1)
    spread = F.avg_pool2d(spread, cells, stride=1, padding=cells // 2, count_include_pad=False)
    return (2.0 * spread).clamp(0.0, 1.0).maximum(conf)


def _is_out_of_memory(error: BaseException) -> bool:
    """CUDA raises ``torch.OutOfMemoryError``; MPS and some allocators a ``RuntimeError``
    whose message says so."""
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


RESIZE_FILTERS: tuple[str, ...] = ("area", "bilinear", "bicubic")
"""Values of a model's ``cfg.extra["resize_filter"]`` (default ``area``)."""


def resize_luma(luma: np.ndarray, size: tuple[int, int], resize_filter: str = "area") -> np.ndarray:
    """Resize a luma plane ``(H, W)`` float32 in [0, 1] to ``size = (h, w)``.

    ``area``: OpenCV's pixel-area average (filmcolor's own models were trained on it).
    ``bilinear`` / ``bicubic``: Pillow's filters as DeOldify (``BILINEAR``) and Zhang et al.
    (``BICUBIC``) publish them. Pillow widens the filter by the scale factor when it shrinks
    (anti-aliasing) and uses a = -0.5 for bicubic; ``F.interpolate(antialias=True)`` is written
    to match it. The result is clipped to [0, 1], as Pillow's 8-bit images are.

    Raises:
        ValueError: an unknown filter name.
    """
    h, w = size
    if resize_filter == "area":
        return cv2.resize(luma, (w, h), interpolation=cv2.INTER_AREA)
    if resize_filter not in RESIZE_FILTERS:
        raise ValueError(f"unknown resize filter {resize_filter!r}; one of {RESIZE_FILTERS}")
    t = torch.from_numpy(np.ascontiguousarray(luma, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(h, w), mode=resize_filter, align_corners=False, antialias=True)
    return out[0, 0].clamp_(0.0, 1.0).numpy()
