"""Regenerate ``thirdparty_layouts.json``: every key and shape of the released third-party files.

Run from the repository root with the shared facts checked out beside it::

    python tests/data/make_thirdparty_layouts.py [--shared ../shared]

DeOldify: read from the key/shape tables in ``<shared>/layouts/*.tsv`` (column
``original_name_guess`` and ``original_shape``, in state-dict order). Zhang et al.: written out
from the layer tables of ``<shared>/REFERENCE.md`` section 5, transcribed below as data. The JSON
is derived facts (names and shapes, no weights), so CI on a fresh clone needs no shared folder.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

OUT = Path(__file__).with_name("thirdparty_layouts.json")

DEOLDIFY_TABLES = {
    "deoldify-deep-resnet34": "deoldify_deep_resnet34.tsv",
    "deoldify-wide-resnet101": "deoldify_wide_resnet101.tsv",
}


def _shape(text: str) -> list[int]:
    text = text.strip().strip("[]")
    return [int(v) for v in text.split(",")] if text else []


def deoldify_layout(tsv: Path) -> list[tuple[str, list[int]]]:
    rows = tsv.read_text().splitlines()
    header = rows[0].split("\t")
    name_col, shape_col = header.index("original_name_guess"), header.index("original_shape")
    out = []
    for row in rows[1:]:
        if row.strip():
            cols = row.split("\t")
            out.append((cols[name_col], _shape(cols[shape_col])))
    return out


def _conv(prefix: str, cin: int, cout: int, k: int, bias: bool = True) -> list:
    rows = [(f"{prefix}.weight", [cout, cin, k, k])]
    return rows + ([(f"{prefix}.bias", [cout])] if bias else [])


def _convt(prefix: str, cin: int, cout: int, k: int) -> list:
    # ConvTranspose2d stores its weight as (in, out, k, k).
    return [(f"{prefix}.weight", [cin, cout, k, k]), (f"{prefix}.bias", [cout])]


def _bn(prefix: str, c: int) -> list:
    return [
        (f"{prefix}.weight", [c]),
        (f"{prefix}.bias", [c]),
        (f"{prefix}.running_mean", [c]),
        (f"{prefix}.running_var", [c]),
        (f"{prefix}.num_batches_tracked", []),
    ]


def _vgg_blocks(first_in: int) -> list:
    """model1..model7, shared by both Zhang generators (REFERENCE.md section 5 tables)."""
    rows: list = []
    # (block, [conv channels...], index of the BatchNorm)
    plan = [
        ("model1", [first_in, 64, 64], 4),
        ("model2", [64, 128, 128], 4),
        ("model3", [128, 256, 256, 256], 6),
        ("model4", [256, 512, 512, 512], 6),
        ("model5", [512, 512, 512, 512], 6),
        ("model6", [512, 512, 512, 512], 6),
        ("model7", [512, 512, 512, 512], 6),
    ]
    for name, chans, bn_idx in plan:
        for i, (cin, cout) in enumerate(itertools.pairwise(chans)):
            rows += _conv(f"{name}.{2 * i}", cin, cout, 3)
        rows += _bn(f"{name}.{bn_idx}", chans[-1])
    return rows


def eccv16_layout() -> list:
    rows = _vgg_blocks(1)
    rows += _convt("model8.0", 512, 256, 4)
    rows += _conv("model8.2", 256, 256, 3) + _conv("model8.4", 256, 256, 3)
    rows += _conv("model8.6", 256, 313, 1)
    rows += _conv("model_out", 313, 2, 1, bias=False)
    return rows


def siggraph17_layout() -> list:
    rows = _vgg_blocks(4)
    rows += _convt("model8up.0", 512, 256, 4)
    rows += _conv("model3short8.0", 256, 256, 3)
    rows += _conv("model8.1", 256, 256, 3) + _conv("model8.3", 256, 256, 3) + _bn("model8.5", 256)
    rows += _convt("model9up.0", 256, 128, 4)
    rows += _conv("model2short9.0", 128, 128, 3)
    rows += _conv("model9.1", 128, 128, 3) + _bn("model9.3", 128)
    rows += _convt("model10up.0", 128, 128, 4)
    rows += _conv("model1short10.0", 64, 128, 3)
    rows += _conv("model10.1", 128, 128, 3)
    rows += _conv("model_class.0", 256, 529, 1)
    rows += _conv("model_out.0", 128, 2, 1)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[3] / "shared")
    args = ap.parse_args()
    layouts = {k: deoldify_layout(args.shared / "layouts" / v) for k, v in DEOLDIFY_TABLES.items()}
    layouts["zhang-eccv16"] = eccv16_layout()
    layouts["zhang-siggraph17"] = siggraph17_layout()
    # One key per line keeps the file diffable.
    lines = ["{"]
    for i, (arch, rows) in enumerate(layouts.items()):
        lines.append(f'  "{arch}": [')
        lines += [f"    {json.dumps([k, s])}," for k, s in rows]
        lines[-1] = lines[-1].rstrip(",")
        lines.append("  ]" + ("," if i < len(layouts) - 1 else ""))
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n")
    for arch, rows in layouts.items():
        n = sum(1 for _ in rows)
        numel = 0
        for k, s in rows:
            if not k.endswith("num_batches_tracked"):
                p = 1
                for d in s:
                    p *= d
                numel += p
        print(f"{arch}: {n} keys, {numel:,} float elements ({numel * 4 / 1e6:.2f} MB float32)")


if __name__ == "__main__":
    main()
