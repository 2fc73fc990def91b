"""Third-party weights: the catalogue in ``weights/weights.toml`` and ``filmcolor weights fetch``.

filmcolor never ships other projects' weights (#5); users bring the files they have, or fetch
them from the official URL. A download is resumable (``FILE.part`` plus an HTTP Range request),
verified and renamed into place only when complete, so a file under its final name is always
whole. Verification uses what the authors publish: exact size and sha256, or the sha256 prefix a
torch.hub file name carries. Where nothing is published (DeOldify) a download must have a
plausible size (:data:`SIZE_WINDOW` around the catalogue's approximate size) and every key and
shape of the model, and only then is its sha256 recorded as the one first accepted (trust on
first use). Records live in one small JSON file, :func:`store_path`, never beside the weights
(a user's folder may not be writable, or theirs to litter). The same store caches each file's
sha256 by (path, size, mtime), so an 874 MB file is hashed once, not on every run.

Every failure is a :class:`WeightsError` with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
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

SIZE_WINDOW: tuple[float, float] = (0.5, 2.0)
"""Plausible size of a download with no published size, as factors of the catalogue's approximate
size. The approximate DeOldify sizes are unverified, but they agree with the float32 total of
the key/shape tables (255.07 and 873.92 MB), so the real files sit near 1x; 0.5x-2x leaves room
for a wrong estimate or a checkpoint with extra state while refusing what a download error gives
(an HTML sign-in or error page of kilobytes, a truncated file) and the other DeOldify
architecture (Artistic is 0.29x of Video/Stable and 3.4x the other way)."""

STORE_NAME: str = "weights-sha256.json"
"""File name of the sha256 store (:func:`store_path`)."""

_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9,
          "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")


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
        """``ColorizeVideo_gen.pth (about 874 MB, sha256 not published)``: for error messages.

        Where no digest is published but one was recorded when a file of this name was first
        accepted (:func:`accepted_sha256`), that digest is named instead.
        """
        size = f"{self.size} bytes" if self.size else f"about {self.approx_size or '? MB'}"
        if self.sha256:
            digest = f"sha256 {self.sha256}"
        elif self.sha256_prefix:
            digest = f"sha256 {self.sha256_prefix}..."
        else:
            known = accepted_sha256(self.file)
            digest = (
                f"sha256 {known[:16]}... as first accepted here, none published"
                if known
                else "sha256 not published"
            )
        return f"{self.file} ({size}, {digest})"

    def approx_bytes(self) -> int | None:
        """:attr:`approx_size` in bytes (``"874 MB"`` -> 874000000), or None if unparsable."""
        m = _SIZE_RE.match(self.approx_size)
        if not m or m.group(2) not in _UNITS:
            return None
        return int(float(m.group(1)) * _UNITS[m.group(2)])

    def published_digest(self) -> bool:
        """A full sha256 or a prefix is published, so the digest alone identifies the file."""
        return bool(self.sha256 or self.sha256_prefix)


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


# -- the sha256 store: digests cached by (path, size, mtime), files accepted on first use ---------
def store_path() -> Path:
    """The JSON file of recorded digests, in ``$FILMCOLOR_HOME`` or else ``~/.cache/filmcolor``."""
    return download_dir() / STORE_NAME


def _load_store() -> dict:
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


def _save_store(data: dict) -> None:
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


def _remember_digest(data: dict, path: Path, digest: str) -> None:
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
    data = _load_store()
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
    _remember_digest(data, path, digest)
    _save_store(data)
    return digest


def accepted_sha256(filename: str) -> str | None:
    """The sha256 recorded when a file of this name was first accepted, or None."""
    return _accepted_digest(_load_store(), filename)


def _accepted_digest(data: dict, filename: str) -> str | None:
    rec = data["accepted"].get(filename)
    return rec.get("sha256") if isinstance(rec, dict) else None


def _accept(data: dict, filename: str, digest: str, path: Path, model: str) -> None:
    # ``path`` may be the download's .part: the record names where the file is meant to live.
    data["accepted"][filename] = {
        "sha256": digest,
        "size": path.stat().st_size,
        "model": model,
        "first_path": str(path.resolve().with_name(filename)),
    }


# -- verification ----------------------------------------------------------------------------------
def check_structure(path: Path, entry: WeightsEntry) -> None:
    """Load ``path`` safely and check every key and shape against ``entry.model``'s definition.

    The model is built without storage (meta device) where its config allows, so checking an
    874 MB file costs one read of it and no second copy.

    Raises:
        WeightsError: not a weights file, or keys/shapes that do not fit (one line).
    """
    import torch

    from filmcolor.models.registry import create_model, get_model_cfg
    from filmcolor.models.released import check_released
    from filmcolor.models.weights import read_weights

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


def _check_published(path: Path, entry: WeightsEntry, digest: str) -> None:
    if entry.sha256 and digest != entry.sha256.lower():
        raise WeightsError(f"{path} has sha256 {digest}; expected {entry.expected()}")
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix.lower()):
        raise WeightsError(f"{path} has sha256 {digest[:16]}...; expected {entry.expected()}")


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
    _check_published(path, entry, digest)
    if entry.published_digest():
        return digest
    check_structure(path, entry)
    data = _load_store()
    known = _accepted_digest(data, entry.file)
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
        _accept(data, entry.file, digest, path, entry.model)
        _save_store(data)
    return digest


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
        _check_published(path, entry, digest)
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
    data = _load_store()
    known = _accepted_digest(data, path.name)
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
    _accept(data, path.name, digest, path, entry.model)
    _save_store(data)


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
        digest = verify_file(part, entry)
    except WeightsError:
        part.unlink(missing_ok=True)
        raise
    # Only a whole, verified file ever has the final name (a crash before this leaves .part).
    os.replace(part, final)
    # A rename keeps size and mtime: the first run with the file need not hash it again.
    data = _load_store()
    _remember_digest(data, final, digest)
    _save_store(data)
    return final


def weights_status_lines(catalog: dict[str, WeightsEntry]) -> list[str]:
    """The text of ``filmcolor weights list``: search folders, then one line per file."""
    from filmcolor.models.weights import search_dirs

    home = os.environ.get("FILMCOLOR_HOME")
    lines = [
        "filmcolor looks for a model's weights file, in order:",
        "  1. --weights PATH     an explicit file, for one run",
        f"  2. $FILMCOLOR_HOME    {Path(home).expanduser() if home else '(not set)'}",
        f"  3. shipped weights/   {REPO_WEIGHTS_DIR}",
        f"  4. ~/.cache/filmcolor {Path.home() / '.cache' / 'filmcolor'}",
        f"`filmcolor weights fetch NAME` saves into {download_dir()}",
        f"sha256 records (cached digests, files accepted where none is published): {store_path()}",
        "",
    ]
    for entry in catalog.values():
        found = next((d / entry.file for d in search_dirs() if (d / entry.file).is_file()), None)
        where = f"found {found}" if found else f"missing: filmcolor weights fetch {entry.model}"
        lines.append(f"{entry.model:<18} {entry.expected()}")
        lines.append(f"{'':<18} licence {entry.licence}; {entry.url}")
        lines.append(f"{'':<18} {where}")
    return lines
