"""DeOldify's released generators (Jason Antic, MIT), redefined so their weight files load as is.

A clean-room definition from the published facts about the layout (every key and shape of the
released files, ``tests/data/thirdparty_layouts.json``); no fastai, no DeOldify code. The network
is a U-Net on a torchvision ResNet body:

* ``layers.0`` encoder (ResNet34 or ResNet101 without pool and classifier), ``layers.1`` BatchNorm,
  ``layers.3`` middle convs, ``layers.4..7`` decoder blocks fed by the encoder outputs at strides
  16, 8, 4 and 2, ``layers.8`` a pixel shuffle back to full size, ``layers.9`` a concatenation with
  the input image, ``layers.10`` a residual block, ``layers.11`` a 1x1 conv to RGB, ``layers.12``
  a sigmoid scaled to (-3, 3). Parameterless layers keep their index so the keys line up.
* Two decoders: "wide" (Stable and Video weights, ResNet101) with one conv per block, and "deep"
  (Artistic weights, ResNet34) with two. Self-attention (SAGAN style) sits in the second block.

The released files keep spectral/weight norm re-parametrisations; :mod:`filmcolor.models.released`
folds them into these plain convs at load time.

Pre/post-processing as DeOldify does it: a square ``render_factor x 16`` grey image (stretched, not
aspect-kept; ``ModelCfg.square``) resized with Pillow's bilinear filter (``resize_filter``),
ImageNet normalisation, RGB out. filmcolor then takes the Lab a/b of that RGB and joins it with
the film's own full-resolution luminance. DeOldify swaps YUV chroma instead
(:func:`deoldify_yuv_merge` reproduces it, for parity checks); the two agree in hue and differ a
little in saturation, most near black and white.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from filmcolor.color.space import lab_to_rgb, rgb_to_lab
from filmcolor.models.base import ChromaModel, ModelCfg
from filmcolor.models.registry import register_model

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""ImageNet channel means DeOldify normalises its input with (and denormalises its output with)."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""ImageNet channel standard deviations."""

Y_RANGE: tuple[float, float] = (-3.0, 3.0)
"""The generator's output range (normalised RGB), imposed by a scaled sigmoid."""

RENDER_STRIDE: int = 16
"""DeOldify's input side is ``render_factor * 16``."""

SKIP_INDICES: tuple[int, ...] = (6, 5, 4, 2)
"""Encoder children whose outputs feed decoder blocks 4..7: layer3, layer2, layer1, stem ReLU."""


@dataclass(frozen=True)
class BlockSpec:
    """Channels of one decoder block (from the released key/shape tables).

    Attributes:
        up_in: channels coming up from the previous block.
        skip: channels of the encoder output joined at this block.
        up_out: channels after the pixel shuffle (its conv has ``4 * up_out`` outputs).
        out: channels the block emits.
        attention: the block ends with self-attention.
    """

    up_in: int
    skip: int
    up_out: int
    out: int
    attention: bool = False


WIDE_RESNET101: tuple[BlockSpec, ...] = (
    BlockSpec(2048, 1024, 512, 512),
    BlockSpec(512, 512, 512, 512, attention=True),
    BlockSpec(512, 256, 512, 512),
    BlockSpec(512, 64, 256, 256),
)
"""Decoder of ColorizeStable_gen.pth and ColorizeVideo_gen.pth (fastai ``nf_factor=2``)."""

DEEP_RESNET34: tuple[BlockSpec, ...] = (
    BlockSpec(512, 256, 256, 768),
    BlockSpec(768, 128, 384, 768, attention=True),
    BlockSpec(768, 64, 384, 672),
    BlockSpec(672, 64, 336, 300),
)
"""Decoder of ColorizeArtistic_gen.pth (``nf_factor=1.5``)."""


def _conv_relu_bn(cin: int, cout: int, attention: bool = False) -> nn.Sequential:
    # DeOldify's "custom conv layer": conv (spectral-normed when trained, no bias), ReLU, then BN.
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
    ]
    if attention:
        layers.append(SelfAttention(cout))
    return nn.Sequential(*layers)


class SelfAttention(nn.Module):
    """SAGAN self-attention over all positions: ``x + gamma * (h @ softmax(f^T g))``.

    ``query``/``key`` reduce channels by 8; the 1x1 projections are ``Conv1d`` so their weights keep
    the released 3-D shape ``(out, in, 1)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.query = nn.Conv1d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv1d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv1d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)  # reshape, not view: the input may be channels-last
        f, g, v = self.query(flat), self.key(flat), self.value(flat)
        # beta[i, j]: how much position i contributes to output position j (softmax over i).
        beta = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)
        out = self.gamma * torch.bmm(v, beta) + flat
        return out.reshape(n, c, h, w)


class ShuffleUp(nn.Module):
    """Upsample x2: 1x1 conv to ``4 * cout``, optional BN, ReLU, pixel shuffle, then a 2x2 blur.

    The blur (replicate-pad left/top by one, 2x2 average, stride 1) removes the checkerboard of the
    pixel shuffle; DeOldify always applies it.
    """

    def __init__(self, cin: int, cout: int, batchnorm: bool) -> None:
        super().__init__()
        if batchnorm:  # decoder blocks: spectral-normed conv without bias, then BN
            self.conv = nn.Sequential(
                nn.Conv2d(cin, 4 * cout, 1, bias=False), nn.BatchNorm2d(4 * cout)
            )
        else:  # the final upsample: weight-normed conv with bias
            self.conv = nn.Sequential(nn.Conv2d(cin, 4 * cout, 1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_shuffle(F.relu(self.conv(x)), 2)
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class UnetBlock(nn.Module):
    """One decoder step: upsample, join the BN'd skip, ReLU, then one ("wide") or two ("deep")
    convs.

    Submodule names follow the released keys: ``shuf``, ``bn``, then ``conv`` (wide) or ``conv1`` +
    ``conv2`` (deep).
    """

    def __init__(self, spec: BlockSpec, deep: bool) -> None:
        super().__init__()
        self.deep = deep
        self.shuf = ShuffleUp(spec.up_in, spec.up_out, batchnorm=True)
        self.bn = nn.BatchNorm2d(spec.skip)
        cin = spec.up_out + spec.skip
        if deep:
            self.conv1 = _conv_relu_bn(cin, spec.out)
            self.conv2 = _conv_relu_bn(spec.out, spec.out, spec.attention)
        else:
            self.conv = _conv_relu_bn(cin, spec.out, spec.attention)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(x)
        if up.shape[-2:] != skip.shape[-2:]:
            # A side of 16*odd gives an odd size at stride 32: the upsample overshoots by one.
            up = F.interpolate(up, size=skip.shape[-2:], mode="nearest")
        x = F.relu(torch.cat([up, self.bn(skip)], dim=1))
        return self.conv2(self.conv1(x)) if self.deep else self.conv(x)


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 biased convs, each followed by ReLU (``layers.10``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
            for _ in range(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers[1](self.layers[0](x))


class SigmoidRange(nn.Module):
    """``sigmoid(x)`` scaled to ``(low, high)``."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low


def _resnet_body(depth: int) -> nn.Sequential:
    """torchvision's ResNet34/101 without avgpool and fc: children 0..7, keys ``layers.0.N.*``."""
    from torchvision.models import resnet34, resnet101

    net = {34: resnet34, 101: resnet101}[depth](weights=None)
    return nn.Sequential(*list(net.children())[:-2])


def deoldify_preprocess(lightness: torch.Tensor) -> torch.Tensor:
    """Lab lightness ``(N, 1, H, W)`` in [0, 100] -> the generator's input ``(N, 3, H, W)``.

    DeOldify turns its image grey (PIL luma), copies it to three channels, scales to [0, 1] and
    normalises with ImageNet statistics. The grey whose Lab lightness is L has sRGB value
    ``lab_to_rgb(L, 0, 0)``, which is exactly that luma, so nothing is lost going through L.
    """
    lab = torch.cat([lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)], dim=1)
    grey = lab_to_rgb(lab.float())
    mean = torch.tensor(IMAGENET_MEAN, device=grey.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=grey.device).view(1, 3, 1, 1)
    return (grey - mean) / std


def deoldify_postprocess(out: torch.Tensor) -> torch.Tensor:
    """The generator's normalised RGB ``(N, 3, H, W)`` -> Lab a/b ``(N, 2, H, W)``.

    Denormalise with ImageNet statistics and clip to [0, 1] (DeOldify then rounds to uint8; the
    rounding is skipped, it only adds noise), then take a/b of the colour in Lab.
    """
    out = out.float()
    mean = torch.tensor(IMAGENET_MEAN, device=out.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=out.device).view(1, 3, 1, 1)
    rgb = (out * std + mean).clamp(0.0, 1.0)
    return rgb_to_lab(rgb)[:, 1:]


def deoldify_yuv_merge(source_rgb: np.ndarray, predicted_rgb: np.ndarray) -> np.ndarray:
    """DeOldify's own post-process (``post_process=True``): source Y, predicted U/V (YUV).

    As published (``deoldify/filters.py``): the model's RGB image is resized bilinearly to the
    source size, both images go to YUV with OpenCV's ``COLOR_RGB2YUV``, the output keeps the
    source's Y and the prediction's U and V, and returns to RGB with ``COLOR_YUV2RGB``.
    filmcolor's pipeline merges in Lab instead (source L, predicted a/b); this function is the
    reference for comparing the two.

    Args:
        source_rgb: the original frame, uint8 ``(H, W, 3)`` RGB (a grey film: R = G = B).
        predicted_rgb: the model's output, uint8 ``(h, w, 3)`` RGB, any size.

    Returns:
        uint8 ``(H, W, 3)`` RGB.

    Raises:
        ValueError: not uint8 ``(*, *, 3)`` arrays.

    Example:
        >>> grey = np.full((2, 2, 3), 128, np.uint8)
        >>> red = np.zeros((1, 1, 3), np.uint8); red[..., 0] = 200
        >>> out = deoldify_yuv_merge(grey, red)
        >>> bool(out[0, 0, 0] > out[0, 0, 1])  # reddish, at the grey's luminance
        True
    """
    import cv2

    for name, img in (("source_rgb", source_rgb), ("predicted_rgb", predicted_rgb)):
        ok = isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3
        if not ok or img.shape[2] != 3:
            raise ValueError(f"{name} must be a uint8 array of shape (H, W, 3)")
    h, w = source_rgb.shape[:2]
    pred = np.ascontiguousarray(predicted_rgb)
    if pred.shape[:2] != (h, w):
        pred = cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR)
    yuv = cv2.cvtColor(pred, cv2.COLOR_RGB2YUV)
    yuv[..., 0] = cv2.cvtColor(np.ascontiguousarray(source_rgb), cv2.COLOR_RGB2YUV)[..., 0]
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)


class DeOldifyGenerator(ChromaModel):
    """DeOldify's U-Net generator with plain (folded) weights.

    Args:
        cfg: registry config.
        depth: ResNet depth of the encoder (34 or 101).
        blocks: decoder block channels (:data:`WIDE_RESNET101` or :data:`DEEP_RESNET34`).
        deep: two convs per decoder block (the Artistic decoder) instead of one.
    """

    def __init__(
        self, cfg: ModelCfg, depth: int, blocks: tuple[BlockSpec, ...], deep: bool
    ) -> None:
        super().__init__()
        self.cfg = cfg
        bottom = blocks[0].up_in
        final = blocks[-1].out
        self.layers = nn.ModuleList(
            [
                _resnet_body(depth),
                nn.BatchNorm2d(bottom),
                nn.ReLU(),
                nn.Sequential(_conv_relu_bn(bottom, 2 * bottom), _conv_relu_bn(2 * bottom, bottom)),
                *(UnetBlock(spec, deep) for spec in blocks),
                ShuffleUp(final, final, batchnorm=False),
                nn.Identity(),  # 9: concatenation with the input (done in forward)
                ResBlock(final + 3),
                nn.Sequential(nn.Conv2d(final + 3, 3, 1)),
                SigmoidRange(*Y_RANGE),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(N, 3, H, W)``, sides multiples of 16 -> normalised RGB in (-3, 3)."""
        skips: dict[int, torch.Tensor] = {}
        h = x
        for i, layer in enumerate(self.layers[0]):
            h = layer(h)
            if i in SKIP_INDICES:
                skips[i] = h
        h = self.layers[3](self.layers[2](self.layers[1](h)))
        for block, idx in zip(self.layers[4:8], SKIP_INDICES, strict=True):
            h = block(h, skips[idx])
        h = self.layers[8](h)
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, size=x.shape[-2:], mode="nearest")
        h = torch.cat([h, x.to(h.dtype)], dim=1)
        return self.layers[12](self.layers[11](self.layers[10](h)))

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        """a/b ``(N, 2, H, W)`` for lightness ``(N, 1, H, W)`` (sides multiples of 16)."""
        w = self.layers[0][0].weight
        x = deoldify_preprocess(lightness).to(w.dtype)
        if w.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return deoldify_postprocess(self(x))

    def load_weights(self, state: dict) -> None:
        """Load a released DeOldify file (bare or fastai-wrapped), folding its norms.

        The tensors of ``state`` become the model's (no copy of 874 MB): pass a fresh state.
        """
        from filmcolor.models.released import load_released

        load_released(self, state, assign=True)


def _cfg(name: str, render_factor: int, weights: str, what: str) -> ModelCfg:
    return ModelCfg(
        name=name,
        description=f"DeOldify {what}, third-party weights (render_factor {render_factor})",
        render_size=render_factor * RENDER_STRIDE,
        stride=RENDER_STRIDE,
        square=True,
        weights=weights,
        skip_init=True,
        # DeOldify resizes its input with Pillow's BILINEAR (filters.py): fed the same way.
        extra={"render_factor": render_factor, "third_party": True, "resize_filter": "bilinear"},
    )


# Default render factors are DeOldify's own (video 21, stills 35); --render-size is 16 x that.
@register_model(_cfg("deoldify-artistic", 35, "ColorizeArtistic_gen.pth", "Artistic, ResNet34"))
def deoldify_artistic() -> DeOldifyGenerator:
    """DeOldify Artistic: ResNet34 encoder, deep decoder; vivid, less stable over time."""
    from filmcolor.models.registry import get_model_cfg

    return DeOldifyGenerator(get_model_cfg("deoldify-artistic"), 34, DEEP_RESNET34, deep=True)


@register_model(_cfg("deoldify-stable", 35, "ColorizeStable_gen.pth", "Stable, ResNet101"))
def deoldify_stable() -> DeOldifyGenerator:
    """DeOldify Stable: ResNet101 encoder, wide decoder; for photos (faces, landscapes)."""
    from filmcolor.models.registry import get_model_cfg

    return DeOldifyGenerator(get_model_cfg("deoldify-stable"), 101, WIDE_RESNET101, deep=False)


@register_model(_cfg("deoldify-video", 21, "ColorizeVideo_gen.pth", "Video, ResNet101"))
def deoldify_video() -> DeOldifyGenerator:
    """DeOldify Video: the Stable architecture trained (NoGAN) for temporal stability."""
    from filmcolor.models.registry import get_model_cfg

    return DeOldifyGenerator(get_model_cfg("deoldify-video"), 101, WIDE_RESNET101, deep=False)
