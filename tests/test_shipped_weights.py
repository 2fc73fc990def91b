"""The shipped default weights load and reproduce a stored forward pass.

``tests/data/lite0_golden.pt`` holds the a/b the shipped weights gave on a fixed synthetic input
when they were exported (``python tests/test_shipped_weights.py --regenerate``). A changed
architecture, loader, decoding or weights file shows here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from filmcolor.models import create_model
from filmcolor.models.registry import DEFAULT_MODEL

GOLDEN = Path(__file__).parent / "data" / "lite0_golden.pt"


def golden_input() -> torch.Tensor:
    """Lightness (2, 1, 64, 96): gradients and discs, deterministic, no randomness."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    a = 20 + 60 * xx
    b = 50 + 40 * torch.sin(6 * xx) * torch.cos(4 * yy)
    b = torch.where((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.05, torch.full_like(b, 85.0), b)
    return torch.stack([a, b])[:, None]


def predict() -> torch.Tensor:
    model = create_model(DEFAULT_MODEL)
    with torch.inference_mode():
        return model.predict_ab(golden_input())


def test_shipped_weights_forward_matches_golden():
    expected = torch.load(GOLDEN, weights_only=True)
    got = predict()
    assert got.shape == expected.shape == (2, 2, 16, 24)
    # fp16 storage of the golden values and CPU math differences: 0.05 Lab units is invisible.
    torch.testing.assert_close(got, expected.float(), atol=0.05, rtol=0)
    # And it is really colour, not grey: the output is not a constant.
    assert float(got.std()) > 1.0


def test_shipped_weights_metadata():
    state = torch.load(Path(__file__).parents[1] / "weights" / "filmcolor-lite0.pt", weights_only=True)
    assert state["arch"] == DEFAULT_MODEL
    assert all(v.dtype in (torch.float16, torch.float32, torch.int64) for v in state["state_dict"].values())


if __name__ == "__main__" and "--regenerate" in sys.argv:
    torch.save(predict().half(), GOLDEN)
    print(f"wrote {GOLDEN}")
