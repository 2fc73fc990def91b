"""Hold a third-party weights file to what identifies it, when it is loaded.

Verification uses what the authors publish: a full sha256 or the sha256 prefix a torch.hub file
name carries. Where nothing is published (DeOldify), the first file of a name that loads is
recorded as the accepted one (trust on first use) and a later file of that name with another
sha256 draws a warning. Digests come from the cache of :mod:`filmcolor.models.digests`, so a large
file is hashed once.

No torch and no registry here: :mod:`filmcolor.models.weights` calls these around its load.
"""

from __future__ import annotations

import logging
from pathlib import Path

from filmcolor.errors import WeightsError
from filmcolor.models.catalog import WeightsEntry
from filmcolor.models.digests import (
    accept,
    accepted_digest,
    file_sha256,
    load_store,
    save_store,
    store_path,
)

logger = logging.getLogger("filmcolor")


def check_published(path: Path, entry: WeightsEntry, digest: str) -> None:
    """Compare ``digest`` of ``path`` with the sha256 or prefix ``entry`` publishes, if any.

    Raises:
        WeightsError: another digest than the published one (one line naming the expected file).
    """
    if entry.sha256 and digest != entry.sha256.lower():
        raise WeightsError(f"{path} has sha256 {digest}; expected {entry.expected()}")
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix.lower()):
        raise WeightsError(f"{path} has sha256 {digest[:16]}...; expected {entry.expected()}")


def check_before_load(path: Path, entry: WeightsEntry) -> str | None:
    """Hash a user's file (cached) and hold it to the published digest before it is loaded.

    A mismatch under the released file name (the name carries the digest, torch.hub style) is an
    error: that file is corrupt or altered, and since its keys may still fit, it would otherwise
    colour wrongly without a word. Under another name, given with ``--weights``, it is the user's
    own choice (a fine-tune, a re-saved or half-precision copy): a loud warning, then it loads if
    its keys and shapes fit.

    Returns:
        The file's sha256, or None when ``path`` is not a file (the loader reports that).

    Raises:
        WeightsError: a released-name file whose sha256 is not the published one.
    """
    if not path.is_file():
        return None
    digest = file_sha256(path)
    if not entry.published_digest():
        return digest
    try:
        check_published(path, entry, digest)
    except WeightsError as e:
        if path.name == entry.file:
            raise WeightsError(
                f"{e}: not the released file (corrupt or altered?); get it again with "
                f"`filmcolor weights fetch {entry.model}`, or rename it if it is your own"
            ) from None
        logger.warning("%s is not the released %s; loading it anyway", e, entry.file)
    return digest


def note_loaded(path: Path, entry: WeightsEntry, digest: str | None) -> None:
    """After a file loaded: record it as the accepted one for its name (nothing published), or
    warn when a file of that name with another sha256 was accepted before (trust on first use)."""
    if digest is None or entry.published_digest():
        return
    data = load_store()
    known = accepted_digest(data, path.name)
    if known:
        if known != digest:
            logger.warning(
                "%s has sha256 %s..., but the %s accepted before (%s) had %s...; no checksum is "
                "published, so it cannot be told which one is the released file (delete %s to "
                "accept this one)",
                path,
                digest[:16],
                path.name,
                data["accepted"][path.name].get("first_path", "?"),
                known[:16],
                store_path(),
            )
        return
    logger.info("recorded sha256 %s of %s as the %s accepted", digest[:16], path, path.name)
    accept(data, path.name, digest, path, entry.model)
    save_store(data)
