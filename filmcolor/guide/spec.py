"""What the user says about the colours, parsed and checked before any colouring.

- ``--reference still.jpg`` (every shot) or ``--reference still.jpg@T`` (the shot that contains
  T, any position form previews accept: ``00:12:03.5``, ``723.5``, ``17280f``). The text is split
  on its last ``@`` only when what follows is a position, so file names with ``@`` still work.
- ``--hints FILE`` (JSON or TOML)::

      {"hints": [{"frame": 1200, "x": 0.42, "y": 0.61, "color": "#a03020"},
                 {"x": 0.1, "y": 0.2, "color": "#3060c0", "radius": 0.02}]}

  ``x``, ``y`` relative to the frame (0..1, top-left origin); ``frame`` optional (a frame
  number or any position form; without it the hint holds in every shot); ``radius`` relative
  to the width (default :data:`DEFAULT_RADIUS`); ``color`` as ``#rrggbb``, ``#rgb``,
  ``[r, g, b]`` (0..255) or a basic colour name.

Every problem is a :class:`~filmcolor.errors.ConfigError` with one line that names the file and,
for hints, the line (syntax) or the field (``hints[2].color``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from filmcolor.errors import ConfigError
from filmcolor.timecode import is_position

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_RADIUS: float = 0.01
"""Default radius of a hint, relative to the frame's width."""

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "gray": (128, 128, 128), "red": (200, 30, 30), "green": (40, 140, 50),
    "blue": (40, 70, 190), "yellow": (235, 205, 40), "orange": (235, 130, 30),
    "brown": (120, 75, 40), "pink": (235, 150, 170), "purple": (120, 50, 140),
    "navy": (20, 30, 100), "olive": (110, 110, 40), "teal": (30, 120, 120),
    "beige": (220, 205, 170), "skin": (225, 170, 140), "sky": (120, 170, 225),
}
"""Colour names a hint may use instead of a hex code (plain, typical shades)."""


@dataclass(frozen=True)
class ReferenceSpec:
    """One ``--reference``: an image and, optionally, the position whose shot it colours."""

    path: Path
    at: str | None = None

    def __str__(self) -> str:
        return f"{self.path}@{self.at}" if self.at else str(self.path)


@dataclass(frozen=True)
class HintSpec:
    """One colour hint (see the module doc for the fields)."""

    x: float
    y: float
    rgb: tuple[int, int, int]
    at: str | None = None
    radius: float = DEFAULT_RADIUS


@dataclass(frozen=True)
class GuidanceSpec:
    """All the guidance of a run: references and hints, files already read and checked."""

    references: tuple[ReferenceSpec, ...] = ()
    hints: tuple[HintSpec, ...] = ()
    hints_file: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.references or self.hints)

    @property
    def timed(self) -> bool:
        """Whether some guidance is tied to one shot (its position must be located in the film)."""
        return any(r.at for r in self.references) or any(h.at for h in self.hints)

    def settings(self) -> dict:
        """The guidance as job settings: each file by name, position and sha256, so a resumed job
        with other guidance (or an edited file of the same name) is refused."""
        out: dict = {}
        if self.references:
            out["references"] = [
                {"file": r.path.name, "at": r.at, "sha256": _sha256(r.path)} for r in self.references
            ]
        if self.hints_file is not None:
            out["hints"] = {"file": self.hints_file.name, "sha256": _sha256(self.hints_file)}
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_reference(text: str) -> ReferenceSpec:
    """``still.jpg`` or ``still.jpg@T`` -> :class:`ReferenceSpec` (the file is not read here)."""
    head, sep, tail = text.rpartition("@")
    if sep and head and is_position(tail):
        return ReferenceSpec(Path(head), tail.strip())
    return ReferenceSpec(Path(text))


def check_reference(ref: ReferenceSpec) -> None:
    """Refuse a reference that is missing or not a readable image.

    Raises:
        ConfigError: one line naming the file.
    """
    from filmcolor.errors import SourceOpenError
    from filmcolor.io.probe import read_image

    if not ref.path.is_file():
        raise ConfigError(f"--reference {ref}: no such file: {ref.path}")
    try:
        img = read_image(ref.path)
    except SourceOpenError as exc:
        raise ConfigError(f"--reference {ref}: {exc}") from None
    if img.ndim == 2 or img.shape[2] == 1 or _is_grey(img):
        # A grey still carries no colour to transfer: almost certainly the wrong file.
        raise ConfigError(f"--reference {ref}: the image has no colour; a reference must be in colour")


def _is_grey(bgr) -> bool:
    import numpy as np

    x = bgr[..., :3].astype(np.float32)
    return float(np.abs(x - x.mean(axis=2, keepdims=True)).mean()) < 0.004 * float(x.max() or 1)


def parse_colour(value: object, where: str) -> tuple[int, int, int]:
    """``#rrggbb``, ``#rgb``, ``[r, g, b]`` (0..255) or a name from :data:`NAMED_COLOURS`.

    Raises:
        ConfigError: not a colour (``where`` names the field).
    """
    if isinstance(value, str):
        s = value.strip().lower()
        if s in NAMED_COLOURS:
            return NAMED_COLOURS[s]
        h = s[1:] if s.startswith("#") else None
        if h is not None and len(h) in (3, 6) and all(c in "0123456789abcdef" for c in h):
            if len(h) == 3:
                h = "".join(c * 2 for c in h)
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    elif isinstance(value, list | tuple) and len(value) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value
    ):
        return int(value[0]), int(value[1]), int(value[2])
    raise ConfigError(
        f"{where}: {value!r} is not a colour (use #rrggbb, #rgb, [r, g, b] with 0..255, "
        "or a name such as red or sky)"
    )


def _number(entry: dict, key: str, where: str, lo: float, hi: float, default: float | None = None) -> float:
    if key not in entry:
        if default is None:
            raise ConfigError(f"{where}.{key} is missing")
        return default
    v = entry[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{where}.{key}: {v!r} is not a number")
    if not lo <= v <= hi:
        raise ConfigError(f"{where}.{key}: {v} is outside {lo:g}..{hi:g}")
    return float(v)


def load_hints(path: Path) -> tuple[HintSpec, ...]:
    """Read a hints file (JSON, or TOML by its ``.toml`` suffix).

    Raises:
        ConfigError: missing file, a syntax error (its line named), or a bad field (named as
            ``hints[i].field``).
    """
    prefix = f"--hints {path}"
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not an error
    except FileNotFoundError:
        raise ConfigError(f"{prefix}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{prefix}: cannot read: {exc}") from None
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{prefix}: not valid TOML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{prefix}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("hints"), list):
        raise ConfigError(f"{prefix}: expected a list named 'hints' at the top level")
    out = []
    for i, entry in enumerate(data["hints"]):
        where = f"{prefix}: hints[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a table/object with x, y and color")
        unknown = set(entry) - {"x", "y", "color", "colour", "frame", "radius"}
        if unknown:
            raise ConfigError(f"{where}: unknown field {min(unknown)!r} (x, y, color, frame, radius)")
        x = _number(entry, "x", where, 0.0, 1.0)
        y = _number(entry, "y", where, 0.0, 1.0)
        radius = _number(entry, "radius", where, 0.0, 0.5, DEFAULT_RADIUS)
        colour = entry.get("color", entry.get("colour"))
        if colour is None:
            raise ConfigError(f"{where}.color is missing")
        rgb = parse_colour(colour, f"{where}.color")
        at = entry.get("frame")
        if at is not None:
            if isinstance(at, int) and not isinstance(at, bool) and at >= 0:
                at = f"{at}f"
            elif not (isinstance(at, str) and is_position(at)):
                raise ConfigError(
                    f"{where}.frame: {at!r} is not a frame number or a position (17280f, 723.5, 00:12:03.5)"
                )
        out.append(HintSpec(x, y, rgb, at, radius))
    return tuple(out)


def load_guidance(references: tuple[str, ...] | list[str] = (), hints: str | Path | None = None) -> GuidanceSpec:
    """Parse and check ``--reference`` values and a ``--hints`` file.

    Raises:
        ConfigError: a missing or unreadable image, or a bad hints file (one line).
    """
    refs = tuple(parse_reference(str(r)) for r in references)
    for r in refs:
        check_reference(r)
    hint_path = Path(hints) if hints else None
    parsed = load_hints(hint_path) if hint_path is not None else ()
    return GuidanceSpec(refs, parsed, hint_path)
