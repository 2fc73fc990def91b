"""Third-party weights: the catalogue in ``weights/weights.toml`` and ``filmcolor weights fetch``.

filmcolor never ships other projects' weights (#5); users bring the files they have, or fetch
them from the official URL. A download is resumable (``FILE.part`` plus an HTTP Range request),
verified (size and sha256 where published) and renamed into place only when complete, so a file
under its final name is always whole. Where no checksum is published the first accepted file's
sha256 is recorded beside it (``FILE.sha256``), and a later download that differs is refused.
Every failure is a :class:`WeightsError` with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from filmcolor.errors import WeightsError
from filmcolor.models.weights import REPO_WEIGHTS_DIR, sha256sum

logger = logging.getLogger("filmcolor")

CATALOG_PATH: Path = REPO_WEIGHTS_DIR / "weights.toml"
"""The catalogue of third-party weights (file, URL, size, sha256, licence per model)."""

CHUNK: int = 1 << 20
"""Bytes read per step of a download."""

TIMEOUT_S: float = 30.0
"""Socket timeout of a download (connect and each read)."""


@dataclass(frozen=True)
class WeightsEntry:
    """One third-party weights file (a ``weights.toml`` table).

    Attributes:
        model: registry name of the model that loads it.
        file: file name looked up in the search folders.
        url: official download location.
        licence: licence of the weights, as their authors publish it.
        source: the project's page.
        size: exact size in bytes, or None where unpublished.
        approx_size: size as published ("874 MB"), for messages.
        sha256: full hex digest, or "" where unpublished.
        sha256_prefix: leading hex digits published in the file name (torch.hub style), or "".
    """

    model: str
    file: str
    url: str
    licence: str
    source: str = ""
    size: int | None = None
    approx_size: str = ""
    sha256: str = ""
    sha256_prefix: str = ""

    def expected(self) -> str:
        """``ColorizeVideo_gen.pth (about 874 MB, sha256 not published)``: for error messages."""
        size = f"{self.size} bytes" if self.size else f"about {self.approx_size or '? MB'}"
        if self.sha256:
            digest = f"sha256 {self.sha256}"
        elif self.sha256_prefix:
            digest = f"sha256 {self.sha256_prefix}..."
        else:
            digest = "sha256 not published"
        return f"{self.file} ({size}, {digest})"


def load_catalog(path: Path | None = None) -> dict[str, WeightsEntry]:
    """Parse ``weights.toml`` (default :data:`CATALOG_PATH`) into entries keyed by model name.

    Raises:
        WeightsError: the file is missing or malformed.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = CATALOG_PATH if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"weights catalogue not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"weights catalogue {path} is malformed: {e}") from None
    entries = {}
    for model, table in data.items():
        try:
            entries[model] = WeightsEntry(model=model, **table)
        except TypeError as e:
            raise WeightsError(f"weights catalogue {path}, [{model}]: {e}") from None
    return entries


def catalog_entry(model: str) -> WeightsEntry | None:
    """The catalogue entry of a model, or None (own model, or no readable catalogue)."""
    try:
        return load_catalog().get(model)
    except WeightsError:
        return None


def entry_for_file(filename: str) -> WeightsEntry | None:
    """The catalogue entry whose ``file`` is ``filename``, or None."""
    try:
        return next((e for e in load_catalog().values() if e.file == filename), None)
    except WeightsError:
        return None


def download_dir() -> Path:
    """Where ``fetch`` saves files: ``$FILMCOLOR_HOME`` if set, else ``~/.cache/filmcolor``."""
    home = os.environ.get("FILMCOLOR_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "filmcolor"


def verify_file(path: Path, entry: WeightsEntry) -> str:
    """Check a file's size and sha256 against the catalogue; returns its sha256.

    Where no checksum is published, the first accepted file's digest is recorded in
    ``PATH.sha256`` and later files of that name must match it (trust on first use).

    Raises:
        WeightsError: wrong size or digest (one line naming the expected file).
    """
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise WeightsError(f"{path} is {size} bytes; expected {entry.expected()}")
    digest = sha256sum(path)
    if entry.sha256 and digest != entry.sha256.lower():
        raise WeightsError(f"{path} has sha256 {digest}; expected {entry.expected()}")
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix.lower()):
        raise WeightsError(f"{path} has sha256 {digest[:16]}...; expected {entry.expected()}")
    if not entry.sha256 and not entry.sha256_prefix:
        record = path.with_name(entry.file + ".sha256")
        if record.is_file():
            known = record.read_text().split()[0] if record.read_text().strip() else ""
            if known and known != digest:
                raise WeightsError(
                    f"{path} has sha256 {digest[:16]}..., but the {entry.file} accepted before "
                    f"had {known[:16]}... (no checksum is published; delete {record} to accept it)"
                )
        else:
            logger.warning(
                "no published sha256 for %s; recorded %s in %s (its keys and shapes are "
                "checked when it loads)",
                entry.file,
                digest,
                record.name,
            )
            record.write_text(f"{digest}  {entry.file}\n")
    return digest


def _progress_bar(total: int | None, initial: int, enabled: bool, desc: str):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

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
    """Download a model's third-party weights into ``dest`` (default :func:`download_dir`).

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
    folder = Path(dest).expanduser() if dest is not None else download_dir()
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
        verify_file(part, entry)
    except WeightsError:
        part.unlink(missing_ok=True)
        raise
    # Only a whole, verified file ever has the final name (a crash before this leaves .part).
    os.replace(part, final)
    return final


def weights_status_lines(catalog: dict[str, WeightsEntry]) -> list[str]:
    """The text of ``filmcolor weights list``: search folders, then one line per file."""
    from filmcolor.models.weights import search_dirs

    home = os.environ.get("FILMCOLOR_HOME")
    lines = [
        "filmcolor looks for a model's weights file, in order:",
        "  --weights PATH        an explicit file, for one run",
        f"  $FILMCOLOR_HOME       {Path(home).expanduser() if home else '(not set)'}",
        f"  repository weights/   {REPO_WEIGHTS_DIR}",
        f"  ~/.cache/filmcolor    {Path.home() / '.cache' / 'filmcolor'}",
        f"`filmcolor weights fetch NAME` saves into {download_dir()}",
        "",
    ]
    for entry in catalog.values():
        found = next((d / entry.file for d in search_dirs() if (d / entry.file).is_file()), None)
        where = f"found {found}" if found else f"missing: filmcolor weights fetch {entry.model}"
        lines.append(f"{entry.model:<18} {entry.expected()}")
        lines.append(f"{'':<18} licence {entry.licence}; {entry.url}")
        lines.append(f"{'':<18} {where}")
    return lines
