"""The catalogue of third-party weights, ``weights/weights.toml``: one entry per model.

filmcolor never ships other projects' weights (#5); the catalogue says, for each model that loads
them, which file it is, where its authors publish it, under what licence, and what identifies it:
an exact size and sha256, the sha256 prefix a torch.hub file name carries, or nothing (DeOldify,
whose files are then held to the sha256 first accepted, :mod:`filmcolor.models.digests`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from filmcolor.errors import WeightsError
from filmcolor.models.digests import accepted_sha256
from filmcolor.models.paths import REPO_WEIGHTS_DIR

CATALOG_PATH: Path = REPO_WEIGHTS_DIR / "weights.toml"
"""The catalogue of third-party weights (file, URL, size, sha256, licence per model)."""

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
        accepted (:func:`~filmcolor.models.digests.accepted_sha256`), that digest is named
        instead.
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

    # CATALOG_PATH is read at call time, so a test can point it at its own catalogue.
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
