"""sha256 of weights files, and the store of digests filmcolor has recorded.

The store is one small JSON file, :func:`store_path`, in ``$FILMCOLOR_HOME`` (else
``~/.cache/filmcolor``), never beside the weights: a user's folder may not be writable, or theirs
to litter. It holds two sections:

* ``digests``: each file's sha256 cached by (absolute path, size, mtime), so an 874 MB file is
  hashed once, not on every run;
* ``accepted``: per file name, the sha256 of the file first accepted where its authors publish
  none (DeOldify): trust on first use.

The store is a cache, never a source of truth for anything published: an unreadable one is
started afresh and an unwritable one is skipped, so neither stops a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

from filmcolor.models.paths import home_dir

logger = logging.getLogger("filmcolor")

STORE_NAME: str = "weights-sha256.json"
"""File name of the sha256 store (:func:`store_path`)."""


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def store_path() -> Path:
    """The JSON file of recorded digests, in ``$FILMCOLOR_HOME`` or else ``~/.cache/filmcolor``."""
    return home_dir() / STORE_NAME


def load_store() -> dict:
    """The store's contents, with both sections present (empty when there is no store yet)."""
    path = store_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as e:
        # A cache, not a source of truth for anything published: start afresh, say so once.
        logger.warning("ignoring unreadable sha256 store %s (%s)", path, e.__class__.__name__)
        data = {}
    if not isinstance(data, dict):
        data = {}
    for section in ("accepted", "digests"):
        if not isinstance(data.get(section), dict):
            data[section] = {}
    return data


def save_store(data: dict) -> None:
    """Write ``data`` (from :func:`load_store`) back atomically; a failure is only logged."""
    path = store_path()
    # Forget digests of files that are gone, so the store stays small.
    data["digests"] = {k: v for k, v in data["digests"].items() if Path(k).is_file()}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # readers never see half a store
    except OSError as e:
        # A read-only home must not stop a run: the price is hashing again next time.
        logger.debug("cannot write sha256 store %s: %s", path, e)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def remember_digest(data: dict, path: Path, digest: str) -> None:
    """Cache ``digest`` as the sha256 of ``path`` at its current size and mtime (in ``data``)."""
    st = path.stat()
    data["digests"][str(path.resolve())] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": digest,
    }


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, cached in :func:`store_path` by (absolute path, size, mtime).

    A file that was replaced or touched is hashed again; an unchanged one is not (an 874 MB
    DeOldify file takes seconds to hash).
    """
    path = Path(path)
    st = path.stat()
    data = load_store()
    rec = data["digests"].get(str(path.resolve()))
    if (
        isinstance(rec, dict)
        and rec.get("size") == st.st_size
        and rec.get("mtime_ns") == st.st_mtime_ns
        and isinstance(rec.get("sha256"), str)
    ):
        return rec["sha256"]
    logger.info("computing the sha256 of %s (once; it is cached)", path)
    digest = sha256sum(path)
    remember_digest(data, path, digest)
    save_store(data)
    return digest


def accepted_sha256(filename: str) -> str | None:
    """The sha256 recorded when a file of this name was first accepted, or None."""
    return accepted_digest(load_store(), filename)


def accepted_digest(data: dict, filename: str) -> str | None:
    """:func:`accepted_sha256` from already loaded store ``data``."""
    rec = data["accepted"].get(filename)
    return rec.get("sha256") if isinstance(rec, dict) else None


def accept(data: dict, filename: str, digest: str, path: Path, model: str) -> None:
    """Record ``digest`` (in ``data``) as the accepted file of this name, for ``model``."""
    # ``path`` may be the download's .part: the record names where the file is meant to live.
    data["accepted"][filename] = {
        "sha256": digest,
        "size": path.stat().st_size,
        "model": model,
        "first_path": str(path.resolve().with_name(filename)),
    }
