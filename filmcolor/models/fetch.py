"""``filmcolor weights fetch``: download a model's third-party weights from the official URL.

filmcolor never ships other projects' weights (#5); users bring the files they have, or fetch
them here. A download is resumable (``FILE.part`` plus an HTTP Range request), verified
(:func:`~filmcolor.models.verify.verify_file`) and renamed into place only when complete, so a
file under its final name is always whole.

Every failure is a :class:`WeightsError` with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from filmcolor.errors import WeightsError
from filmcolor.models.catalog import WeightsEntry, load_catalog
from filmcolor.models.digests import load_store, remember_digest, save_store
from filmcolor.models.paths import home_dir
from filmcolor.models.verify import verify_file

logger = logging.getLogger("filmcolor")

CHUNK: int = 1 << 20
"""Bytes read per step of a download."""

TIMEOUT_S: float = 30.0
"""Socket timeout of a download (connect and each read)."""


def _progress_bar(total: int | None, initial: int, enabled: bool, desc: str):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm  # only when a bar is shown

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        dynamic_ncols=True,
    )


def _manual_hint(entry: WeightsEntry, url: str, final: Path) -> str:
    return (
        f"download {url} by hand and save it as {final}, or pass --weights PATH "
        f"(expected {entry.expected()})"
    )


def fetch(
    model: str,
    dest: str | os.PathLike[str] | None = None,
    url: str | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download a model's third-party weights into ``dest`` (default
    :func:`~filmcolor.models.paths.home_dir`: ``$FILMCOLOR_HOME``, else ``~/.cache/filmcolor``).

    Args:
        model: registry name (``filmcolor weights list``).
        dest: folder to save into.
        url: a mirror to use instead of the official URL.
        progress: show a progress bar (bytes, rate, time left).
        timeout: socket timeout in seconds.

    Returns:
        Path of the verified file (already there and verified: no download).

    Raises:
        WeightsError: unknown model, no network, an HTTP error, an interrupted download (run again
            to resume), or a file that fails verification (deleted; nothing is left half-written
            under the final name).
    """
    catalog = load_catalog()
    if model not in catalog:
        raise WeightsError(
            f"no third-party weights for {model!r}; known: {', '.join(sorted(catalog))}"
        )
    entry = catalog[model]
    url = url or entry.url
    folder = Path(dest).expanduser() if dest is not None else home_dir()
    final = folder / entry.file
    if final.is_file():
        verify_file(final, entry)
        logger.info("%s is already in %s", entry.file, folder)
        return final
    part = final.with_name(entry.file + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "filmcolor"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to fetch: the part file is complete
            resp = None
        else:
            raise WeightsError(
                f"download of {entry.file} failed: HTTP {e.code} from {url}; "
                + _manual_hint(entry, entry.url, final)
            ) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsError(
            f"cannot download {entry.file} from {url} ({reason}; no network?): "
            + _manual_hint(entry, entry.url, final)
        ) from None
    if resp is not None:
        folder.mkdir(parents=True, exist_ok=True)  # only once there is something to save
        with resp:
            if offset and resp.status != 206:
                offset = 0  # the server ignored the Range header: start over
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else entry.size
            try:
                with (
                    open(part, "ab" if offset else "wb") as f,
                    _progress_bar(total, offset, progress, entry.file) as bar,
                ):
                    while block := resp.read(CHUNK):
                        f.write(block)
                        if bar is not None:
                            bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:  # timeouts are OSErrors
                got = part.stat().st_size if part.exists() else 0
                raise WeightsError(
                    f"download of {entry.file} interrupted at {got} bytes ({e}); "
                    "run the same command again to resume"
                ) from None
        got = part.stat().st_size
        if total is not None and got < total:
            raise WeightsError(
                f"download of {entry.file} stopped at {got} of {total} bytes; "
                "run the same command again to resume"
            )
    try:
        digest = verify_file(part, entry)
    except WeightsError:
        part.unlink(missing_ok=True)
        raise
    # Only a whole, verified file ever has the final name (a crash before this leaves .part).
    os.replace(part, final)
    # A rename keeps size and mtime: the first run with the file need not hash it again.
    data = load_store()
    remember_digest(data, final, digest)
    save_store(data)
    return final
