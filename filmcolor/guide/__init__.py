"""Guided colour: reference stills and colour hints (issue #12).

    spec = load_guidance(["still.jpg@00:12:03"], "hints.json")   # parse + check, one-line errors
    guide = prepare_guide(spec, colorizer, src, rate, total)      # exemplars, positions
    guide.set_cuts(cuts)                                          # shots from the plan
    colorizer.set_guide(guide)                                    # the model stage uses it

:mod:`~filmcolor.guide.spec` parses, :mod:`~filmcolor.guide.planes` turns guidance into what the
network reads, :mod:`~filmcolor.guide.guider` decides which guidance reaches which frame.
"""

from filmcolor.guide.guider import Guide, prepare_guide, supports_guidance
from filmcolor.guide.spec import GuidanceSpec, HintSpec, ReferenceSpec, load_guidance

__all__ = [
    "GuidanceSpec",
    "Guide",
    "HintSpec",
    "ReferenceSpec",
    "load_guidance",
    "prepare_guide",
    "supports_guidance",
]
