"""Zhang et al.'s colourisers (richzhang/colorization, BSD-2), redefined so the released PyTorch
ports of the Caffe models load as is.

* ``zhang-eccv16``: "Colorful Image Colorization" (ECCV 2016). A VGG-style net classifies each
  pixel's a/b into 313 bins at 1/4 resolution; the released head takes the *expectation* of the
  bins (softmax, then a fixed 1x1 conv holding the bin centres / 110), upsampled x4.
* ``zhang-siggraph17``: "Real-Time User-Guided Image Colorization" (SIGGRAPH 2017), used here
  without user hints: a U-Net with shortcut connections regresses a/b at full resolution (tanh x
  110). Its 529-class head is in the file but unused by the regression output.

Pre/post-processing as released: the image is stretched to 256x256 (``ModelCfg.square``) with
Pillow's bicubic filter (``resize_filter``), its Lab lightness normalised as ``(L - 50) / 100``;
a/b come out scaled by 1/110. Module and index names follow the released keys
(``model1.0.weight``...); parameterless layers keep their index. A clean-room definition from
the published layer tables; no code from the original repository.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from filmcolor.models.base import ChromaModel, ModelCfg
from filmcolor.models.registry import register_model

L_CENTRE: float = 50.0
"""Lightness is fed as ``(L - L_CENTRE) / L_NORM``."""

L_NORM: float = 100.0
"""See :data:`L_CENTRE`."""

AB_NORM: float = 110.0
"""The networks' a/b unit: outputs are multiplied by this to get Lab a/b."""

ECCV16_BINS: int = 313
"""In-gamut a/b bins of the ECCV16 classifier."""


def _convs(chans: list[int], stride_last: int = 1, dilation: int = 1) -> list[nn.Module]:
    """``[Conv, ReLU] * n`` for the channel list (3x3, padding = dilation); last conv strided."""
    layers: list[nn.Module] = []
    n = len(chans) - 1
    for i, (cin, cout) in enumerate(itertools.pairwise(chans)):
        stride = stride_last if i == n - 1 else 1
        layers += [
            nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    return layers


def _vgg(chans: list[int], stride_last: int = 1, dilation: int = 1) -> nn.Sequential:
    """A block of convs then BatchNorm (the BN index follows the convs and ReLUs, as released)."""
    return nn.Sequential(*_convs(chans, stride_last, dilation), nn.BatchNorm2d(chans[-1]))


def normalise_lightness(lightness: torch.Tensor) -> torch.Tensor:
    """Lab L in [0, 100] -> the networks' input unit (``(L - 50) / 100``)."""
    return (lightness - L_CENTRE) / L_NORM


class ECCV16Generator(ChromaModel):
    """ECCV16 colouriser: L -> 313-bin distribution at 1/4 res -> expected a/b, upsampled x4.

    Sides must be multiples of 8 (three stride-2 convs, one x2 transposed conv).
    """

    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        self.cfg = cfg
        # Downsampling by strided convs at the end of blocks 1-3; blocks 5 and 6 are dilated.
        self.model1 = _vgg([1, 64, 64], stride_last=2)
        self.model2 = _vgg([64, 128, 128], stride_last=2)
        self.model3 = _vgg([128, 256, 256, 256], stride_last=2)
        self.model4 = _vgg([256, 512, 512, 512])
        self.model5 = _vgg([512, 512, 512, 512], dilation=2)
        self.model6 = _vgg([512, 512, 512, 512], dilation=2)
        self.model7 = _vgg([512, 512, 512, 512])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            *_convs([256, 256, 256]),
            nn.Conv2d(256, ECCV16_BINS, 1),
        )
        # Released as a fixed conv without bias: its columns are the bin centres / 110.
        self.model_out = nn.Conv2d(ECCV16_BINS, 2, 1, bias=False)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """Bin logits ``(N, 313, H/4, W/4)`` for lightness ``(N, 1, H, W)`` in [0, 100]."""
        x = normalise_lightness(lightness)
        for block in (
            self.model1,
            self.model2,
            self.model3,
            self.model4,
            self.model5,
            self.model6,
            self.model7,
            self.model8,
        ):
            x = block(x)
        return x

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        """a/b ``(N, 2, H, W)``: the expectation over the bins, upsampled x4 as released."""
        ab = self.model_out(F.softmax(self(lightness), dim=1))
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
        return ab.float() * AB_NORM

    def load_weights(self, state: dict) -> None:
        """Load the released state dict (strict; ``num_batches_tracked`` optional).

        The tensors of ``state`` become the model's (no copy): pass a fresh state.
        """
        from filmcolor.models.released import load_released

        load_released(self, state, assign=True)


class SIGGRAPH17Generator(ChromaModel):
    """SIGGRAPH17 colouriser without hints: L (+ empty hint channels) -> a/b at full resolution.

    Downsampling takes every second pixel between blocks; three transposed convs come back up,
    each added to a conv of the encoder output at that scale. Sides must be multiples of 8.
    """

    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.model1 = _vgg([4, 64, 64])
        self.model2 = _vgg([64, 128, 128])
        self.model3 = _vgg([128, 256, 256, 256])
        self.model4 = _vgg([256, 512, 512, 512])
        self.model5 = _vgg([512, 512, 512, 512], dilation=2)
        self.model6 = _vgg([512, 512, 512, 512], dilation=2)
        self.model7 = _vgg([512, 512, 512, 512])
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        # The ReLU of the sum opens each up block, so its convs start at index 1.
        self.model8 = nn.Sequential(
            nn.ReLU(inplace=True), *_convs([256, 256, 256]), nn.BatchNorm2d(256)
        )
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(inplace=True), *_convs([128, 128]), nn.BatchNorm2d(128))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2)
        )
        self.model_class = nn.Sequential(nn.Conv2d(256, 529, 1))  # in the file; unused here
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """a/b in network units (tanh; x110 = Lab) ``(N, 2, H, W)`` for L ``(N, 1, H, W)``."""
        # No user hints: a/b hints (already /110) and the hint mask are all zero.
        zeros = torch.zeros_like(lightness)
        x = torch.cat([normalise_lightness(lightness), zeros, zeros, zeros], dim=1)
        c1 = self.model1(x)
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c4 = self.model4(c3[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(c4)))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.model_out(c10)

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        """a/b ``(N, 2, H, W)`` in Lab units."""
        return self(lightness).float() * AB_NORM

    def load_weights(self, state: dict) -> None:
        """Load the released state dict (strict; ``num_batches_tracked`` optional).

        The tensors of ``state`` become the model's (no copy): pass a fresh state.
        """
        from filmcolor.models.released import load_released

        load_released(self, state, assign=True)


@register_model(
    ModelCfg(
        name="zhang-eccv16",
        description="Zhang et al. ECCV16, 313-bin classifier (third-party weights, 256x256)",
        render_size=256,
        stride=8,
        square=True,
        weights="colorization_release_v2-9b330a0b.pth",
        skip_init=True,
        extra={"third_party": True, "resize_filter": "bicubic"},
    )
)
def zhang_eccv16() -> ECCV16Generator:
    """Zhang et al. 2016, released PyTorch port of the Caffe model."""
    from filmcolor.models.registry import get_model_cfg

    return ECCV16Generator(get_model_cfg("zhang-eccv16"))


@register_model(
    ModelCfg(
        name="zhang-siggraph17",
        description="Zhang et al. SIGGRAPH17, a/b regression, no hints (third-party, 256x256)",
        render_size=256,
        stride=8,
        square=True,
        weights="siggraph17-df00044c.pth",
        skip_init=True,
        extra={"third_party": True, "resize_filter": "bicubic"},
    )
)
def zhang_siggraph17() -> SIGGRAPH17Generator:
    """Zhang et al. 2017 without user hints, released PyTorch port of the Caffe model."""
    from filmcolor.models.registry import get_model_cfg

    return SIGGRAPH17Generator(get_model_cfg("zhang-siggraph17"))
