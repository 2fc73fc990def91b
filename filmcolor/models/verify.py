"""Check a downloaded third-party weights file before it gets its final name.

Verification uses what the authors publish: exact size and sha256, or the sha256 prefix a
torch.hub file name carries. Where nothing is published (DeOldify) a download must have a
plausible size (:data:`SIZE_WINDOW` around the catalogue's approximate size) and every key and
shape of the model, and only then is its sha256 recorded as the one first accepted (trust on
first use, :mod:`filmcolor.models.digests`).

The structure check builds the model, so this module sits above the registry; nothing below the
registry imports it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from filmcolor.errors import WeightsError
from filmcolor.models.catalog import WeightsEntry
from filmcolor.models.digests import (
    accept,
    accepted_digest,
    load_store,
    save_store,
    sha256sum,
    store_path,
)
from filmcolor.models.registry import create_model, get_model_cfg
from filmcolor.models.released import check_released
from filmcolor.models.trust import check_published
from filmcolor.models.weights import read_weights

logger = logging.getLogger("filmcolor")

SIZE_WINDOW: tuple[float, float] = (0.5, 2.0)
"""Plausible size of a download with no published size, as factors of the catalogue's approximate
size. The approximate DeOldify sizes are unverified, but they agree with the float32 total of
the key/shape tables (255.07 and 873.92 MB), so the real files sit near 1x; 0.5x-2x leaves room
for a wrong estimate or a checkpoint with extra state while refusing what a download error gives
(an HTML sign-in or error page of kilobytes, a truncated file) and the other DeOldify
architecture (Artistic is 0.29x of Video/Stable and 3.4x the other way)."""


def check_structure(path: Path, entry: WeightsEntry) -> None:
    """Load ``path`` safely and check every key and shape against ``entry.model``'s definition.

    The model is built without storage (meta device) where its config allows, so checking an
    874 MB file costs one read of it and no second copy.

    Raises:
        WeightsError: not a weights file, or keys/shapes that do not fit (one line).
    """
    cfg = get_model_cfg(entry.model)
    if cfg.skip_init:
        with torch.device("meta"):
            model = create_model(entry.model, pretrained=False)
    else:
        model = create_model(entry.model, pretrained=False)
    try:
        state = read_weights(path)
    except WeightsError as e:
        raise WeightsError(f"{e}; expected {entry.expected()}") from None
    try:
        check_released(model, state)
    except ValueError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(
            f"{path} does not fit model {entry.model!r}: {first}; expected {entry.expected()}"
        ) from None


def _check_plausible_size(path: Path, entry: WeightsEntry) -> None:
    size = path.stat().st_size
    if entry.size is not None:
        if size != entry.size:
            raise WeightsError(f"{path} is {size} bytes; expected {entry.expected()}")
        return
    approx = entry.approx_bytes()
    if approx is None:
        return
    lo, hi = int(approx * SIZE_WINDOW[0]), int(approx * SIZE_WINDOW[1])
    if not lo <= size <= hi:
        raise WeightsError(
            f"{path} is {size} bytes, not a plausible {entry.file} ({lo}-{hi} bytes; an error "
            f"page or another file?); expected {entry.expected()}"
        )


def verify_file(path: Path, entry: WeightsEntry) -> str:
    """Check a downloaded file before it gets its final name; returns its sha256.

    In order: the exact size where published, else a plausible size (:data:`SIZE_WINDOW`); the
    published sha256 or prefix. Where no digest is published: every key and shape against the
    model (:func:`check_structure`), then the digest is compared with the one first accepted for
    this file name, or recorded as that one. Nothing is recorded for a file that fails.

    Raises:
        WeightsError: implausible size, wrong digest, wrong structure, or another digest than the
            file accepted before (one line naming the expected file).
    """
    _check_plausible_size(path, entry)
    digest = sha256sum(path)
    check_published(path, entry, digest)
    if entry.published_digest():
        return digest
    check_structure(path, entry)
    data = load_store()
    known = accepted_digest(data, entry.file)
    if known and known != digest:
        raise WeightsError(
            f"{path} has sha256 {digest[:16]}..., but the {entry.file} accepted before had "
            f"{known[:16]}... (no checksum is published; delete {store_path()} to accept it)"
        )
    if not known:
        logger.warning(
            "no published sha256 for %s; its size and every key and shape fit, so %s is recorded "
            "in %s as the file accepted",
            entry.file,
            digest,
            store_path(),
        )
        accept(data, entry.file, digest, path, entry.model)
        save_store(data)
    return digest
