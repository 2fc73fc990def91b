"""Film-domain augmentation: turn colour photos into the grey images old film actually makes.

A black-and-white film is not ``cv2.cvtColor(img, GRAY)``. Orthochromatic stock (common until the
1920s-30s) is blind to red, so lips and red cloth go dark and blue skies go white; panchromatic
stock sees all colours but not with the eye's weights. Prints add grain, softness, gamma and
contrast shifts, vignetting, dust, scratches and frame-to-frame exposure flicker. The model trains on
all of these so its real input is in its training domain; the targets stay the true a/b.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from filmcolor.color.space import linear_to_srgb, srgb_to_linear

# Linear-light spectral weights (R, G, B) of the stocks we simulate, with their jitter.
PANCHROMATIC = (0.2126, 0.7152, 0.0722)  # the eye (CIE Y): what Lab L and the dev set use
PAN_FILM = (0.30, 0.55, 0.15)  # typical panchromatic emulsion: a little more red/blue
ORTHOCHROMATIC = (0.03, 0.52, 0.45)  # red-blind, blue-heavy


def _gauss_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample Gaussian blur of ``(N, 1, H, W)`` with ``sigma`` ``(N,)`` (0 = identity)."""
    smax = float(sigma.max())
    if smax < 0.3:
        return x
    r = max(1, math.ceil(3 * smax))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t[None] ** 2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)
    n = x.shape[0]
    # Grouped conv: one kernel per sample (separable, horizontal then vertical).
    xp = F.pad(x.transpose(0, 1), (r, r, 0, 0), mode="replicate")
    x = F.conv2d(xp, k.view(n, 1, 1, -1), groups=n)
    xp = F.pad(x, (0, 0, r, r), mode="replicate")
    x = F.conv2d(xp, k.view(n, 1, -1, 1), groups=n)
    return x.transpose(0, 1)


def film_grey(rgb: torch.Tensor, gen: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Simulate a black-and-white film print of a colour batch.

    Args:
        rgb: sRGB ``(N, 3, H, W)`` in [0, 1].
        gen: random generator (seeded per step, so runs are reproducible and resumable).
        strength: 0 gives the plain luminance grey; 1 the full range of film effects.

    Returns:
        Grey ``(N, 1, H, W)`` in [0, 1], gamma-encoded like the luma of a decoded video.
    """
    n, _, h, w = rgb.shape
    dev, dt = rgb.device, rgb.dtype

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=gen).to(dev, dt)

    def chance(p: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) < p * strength).to(dev)

    # 1. Spectral response: a per-sample mix of eye, panchromatic film and orthochromatic film.
    stocks = torch.tensor([PANCHROMATIC, PAN_FILM, ORTHOCHROMATIC], dtype=dt, device=dev)
    probs = torch.tensor([0.4 + 0.6 * (1 - strength), 0.35 * strength, 0.25 * strength])
    pick = torch.multinomial(probs, n, replacement=True, generator=gen).to(dev)
    wts = stocks[pick] + 0.04 * strength * torch.randn(n, 3, generator=gen).to(dev, dt)
    wts = wts.clamp(min=0.0)
    wts = wts / wts.sum(1, keepdim=True)
    lin = srgb_to_linear(rgb)
    g = linear_to_srgb((lin * wts[:, :, None, None]).sum(1, keepdim=True).clamp(0, 1))

    # 2. Tone: gamma, contrast, exposure (flicker is exposure varying frame to frame).
    gamma = torch.exp(u(-0.35, 0.35) * strength)[:, None, None, None]
    g = g.clamp(1e-4, 1) ** gamma
    contrast = (1 + u(-0.3, 0.3) * strength)[:, None, None, None]
    expo = (u(-0.12, 0.12) * strength)[:, None, None, None]
    g = (g - 0.5) * contrast + 0.5 + expo

    # 3. Softness (lens, generation loss of prints).
    sig = torch.where(chance(0.5), u(0.3, 1.6), torch.zeros(n, device=dev, dtype=dt))
    g = _gauss_blur(g, sig)

    # 4. Vignetting.
    yy = torch.linspace(-1, 1, h, device=dev, dtype=dt)[:, None]
    xx = torch.linspace(-1, 1, w, device=dev, dtype=dt)[None, :]
    r2 = (xx**2 + yy**2)[None, None]
    vig = torch.where(chance(0.3), u(0.1, 0.45), torch.zeros(n, device=dev, dtype=dt))
    g = g * (1 - vig[:, None, None, None] * r2 / 2)

    # 5. Grain: noise with a little spatial correlation, stronger in the mid-tones.
    amp = torch.where(chance(0.6), u(0.01, 0.06), torch.zeros(n, device=dev, dtype=dt))
    noise = torch.randn(n, 1, h, w, generator=gen).to(dev, dt)
    noise = _gauss_blur(noise, torch.full((n,), 0.6, device=dev, dtype=dt)) * 1.6
    g = g + amp[:, None, None, None] * noise * (0.5 + 2 * g * (1 - g)).clamp(min=0)

    # 6. Scratches (thin vertical lines) and dust (small blobs), bright or dark.
    scr = chance(0.2)
    for i in torch.nonzero(scr).flatten().tolist():
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            x0 = int(torch.randint(0, w, (1,), generator=gen))
            val = float(torch.rand(1, generator=gen) > 0.5)
            g[i, :, :, x0 : x0 + 1] = 0.6 * g[i, :, :, x0 : x0 + 1] + 0.4 * val
    dust = chance(0.3)
    for i in torch.nonzero(dust).flatten().tolist():
        for _ in range(int(torch.randint(1, 12, (1,), generator=gen))):
            cy = int(torch.randint(0, h, (1,), generator=gen))
            cx = int(torch.randint(0, w, (1,), generator=gen))
            rad = int(torch.randint(1, 4, (1,), generator=gen))
            val = float(torch.rand(1, generator=gen) > 0.6)
            g[i, :, max(0, cy - rad) : cy + rad, max(0, cx - rad) : cx + rad] = val
    return g.clamp(0.0, 1.0)
