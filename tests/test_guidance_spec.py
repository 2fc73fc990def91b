"""Guided colour, the parsing and checking layer: ``--reference IMAGE[@T]``, ``--hints FILE``
(JSON and TOML), colours, positions, the job settings of a guidance, and the command line's
one-line errors (exit 2, no traceback, no output) for bad guidance."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from filmcolor.errors import ConfigError
from filmcolor.guide.spec import (
    DEFAULT_RADIUS,
    NAMED_COLOURS,
    GuidanceSpec,
    HintSpec,
    ReferenceSpec,
    check_reference,
    load_guidance,
    load_hints,
    parse_colour,
    parse_reference,
)
from filmcolor.timecode import is_position, parse_position
from tests.media import Clip, make_image

NTSC = Fraction(24000, 1001)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def hints_json(tmp_path: Path, hints: object, name: str = "hints.json") -> Path:
    return write(tmp_path / name, json.dumps({"hints": hints}))


def colour_still(path: Path, seed: int = 0) -> Path:
    make_image(path, 96, 64, color=True, seed=seed)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- positions -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "rate", "index"),
    [
        ("17280f", NTSC, 17280),
        ("0f", NTSC, 0),
        (" 17f ", Fraction(25), 17),
        ("723.5", Fraction(24), 17364),
        ("12:03", Fraction(24), 17352),
        ("00:12:03.5", NTSC, 17347),  # ceil(723.5 * 24000 / 1001): the first frame at or after
        ("1:00:00", Fraction(25), 90000),
    ],
)
def test_parse_position(text: str, rate: Fraction, index: int) -> None:
    assert is_position(text)
    assert parse_position(text, rate) == index


@pytest.mark.parametrize("text", ["", "soon", "2x", "-5f", "5F", "1e3", "12:60", "1:60:00", "f"])
def test_not_a_position(text: str) -> None:
    assert not is_position(text)
    with pytest.raises(ConfigError) as e:
        parse_position(text, NTSC, "--reference still.jpg")
    msg = str(e.value)
    assert msg.startswith(f"--reference still.jpg {text!r} is not a position")
    assert "17280f" in msg and "\n" not in msg


# -- --reference IMAGE[@T] -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "path", "at"),
    [
        ("still.jpg", "still.jpg", None),
        ("still.jpg@00:12:03.5", "still.jpg", "00:12:03.5"),
        ("still.jpg@723.5", "still.jpg", "723.5"),
        ("still.jpg@17280f", "still.jpg", "17280f"),
        ("still.jpg@12:03", "still.jpg", "12:03"),
        ("dir/still.jpg@5f", "dir/still.jpg", "5f"),
        # '@' that is not followed by a position belongs to the file name
        ("a@b.jpg", "a@b.jpg", None),
        ("shot@2x.png", "shot@2x.png", None),
        ("still.jpg@", "still.jpg@", None),
        ("still.jpg@1:60", "still.jpg@1:60", None),
        ("@5f", "@5f", None),
        # only the last '@' splits
        ("a@b.jpg@5f", "a@b.jpg", "5f"),
        ("shot@2x.png@00:00:01.5", "shot@2x.png", "00:00:01.5"),
    ],
)
def test_parse_reference(text: str, path: str, at: str | None) -> None:
    ref = parse_reference(text)
    assert ref == ReferenceSpec(Path(path), at)
    assert ref.path == Path(path) and ref.at == at


def test_reference_str() -> None:
    assert str(ReferenceSpec(Path("still.jpg"), "5f")) == "still.jpg@5f"
    assert str(ReferenceSpec(Path("still.jpg"))) == "still.jpg"
    assert str(parse_reference("a@b.jpg@12:03")) == "a@b.jpg@12:03"


def test_check_reference_accepts_a_colour_still(tmp_path: Path) -> None:
    still = colour_still(tmp_path / "still.png")
    check_reference(parse_reference(f"{still}@5f"))  # no error
    check_reference(ReferenceSpec(still))


def test_check_reference_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ConfigError) as e:
        check_reference(parse_reference(f"{missing}@5f"))
    assert str(e.value) == f"--reference {missing}@5f: no such file: {missing}"


def test_check_reference_not_an_image(tmp_path: Path) -> None:
    fake = write(tmp_path / "fake.png", "this is not a picture\n")
    with pytest.raises(ConfigError) as e:
        check_reference(ReferenceSpec(fake))
    msg = str(e.value)
    assert msg.startswith(f"--reference {fake}: ") and "\n" not in msg
    assert "no colour" not in msg


def test_check_reference_refuses_grey(image_png: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the image has no colour; a reference must be in colour"):
        check_reference(ReferenceSpec(image_png))
    # A grey picture stored as three equal channels is no more a colour reference.
    grey = make_image(tmp_path / "grey1.png", 96, 64, color=False)
    three = tmp_path / "grey3.png"
    assert cv2.imwrite(str(three), np.stack([grey] * 3, axis=-1))
    assert cv2.imread(str(three), cv2.IMREAD_UNCHANGED).shape == (64, 96, 3)
    with pytest.raises(ConfigError, match=r"grey3\.png: the image has no colour"):
        check_reference(ReferenceSpec(three))


# -- colours ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "rgb"),
    [
        ("#a03020", (160, 48, 32)),
        ("#A03020", (160, 48, 32)),
        (" #3060c0 ", (48, 96, 192)),
        ("#f80", (255, 136, 0)),
        ("#FFF", (255, 255, 255)),
        ("sky", (120, 170, 225)),
        (" Red ", (200, 30, 30)),
        ("gray", (128, 128, 128)),
        ([0, 128, 255], (0, 128, 255)),
        ((1, 2, 3), (1, 2, 3)),
    ],
)
def test_parse_colour(value: object, rgb: tuple[int, int, int]) -> None:
    got = parse_colour(value, "hints[0].color")
    assert got == rgb
    assert all(type(c) is int for c in got)


def test_named_colours_are_rgb() -> None:
    assert {"red", "sky", "skin", "grey", "gray"} <= set(NAMED_COLOURS)
    for name, rgb in NAMED_COLOURS.items():
        assert parse_colour(name.upper(), "c") == rgb
        assert len(rgb) == 3 and all(0 <= c <= 255 for c in rgb)


@pytest.mark.parametrize(
    "value",
    ["#zzzzzz", "a03020", "#12345", "#1234567", "", "redish", [1, 2], [0, 0, 256], [0, 0, -1],
     [1.0, 2, 3], [True, 0, 0], ["1", 2, 3], 5, None, {"r": 1}],
)
def test_parse_colour_refuses(value: object) -> None:
    with pytest.raises(ConfigError) as e:
        parse_colour(value, "hints[3].color")
    msg = str(e.value)
    assert msg.startswith(f"hints[3].color: {value!r} is not a colour")
    assert "#rrggbb" in msg and "\n" not in msg


# -- --hints FILE ----------------------------------------------------------------------------------
def test_default_radius() -> None:
    assert DEFAULT_RADIUS == 0.01
    assert HintSpec(0.5, 0.5, (1, 2, 3)).radius == DEFAULT_RADIUS


def test_load_hints_json(tmp_path: Path) -> None:
    path = write(tmp_path / "hints.json", """{"hints": [
        {"frame": 1200, "x": 0.42, "y": 0.61, "color": "#a03020"},
        {"x": 0.1, "y": 0.2, "color": "#3060c0", "radius": 0.02},
        {"frame": "00:00:01.5", "x": 0, "y": 1, "colour": "#f80"},
        {"frame": "12:03", "x": 1, "y": 0.0, "color": "sky", "radius": 0},
        {"frame": 0, "x": 0.5, "y": 0.5, "color": [10, 20, 30], "radius": 0.5},
        {"frame": "17280f", "x": 0.25, "y": 0.75, "color": "Red"}
    ]}""")
    assert load_hints(path) == (
        HintSpec(0.42, 0.61, (160, 48, 32), "1200f", 0.01),
        HintSpec(0.1, 0.2, (48, 96, 192), None, 0.02),
        HintSpec(0.0, 1.0, (255, 136, 0), "00:00:01.5", DEFAULT_RADIUS),
        HintSpec(1.0, 0.0, (120, 170, 225), "12:03", 0.0),
        HintSpec(0.5, 0.5, (10, 20, 30), "0f", 0.5),
        HintSpec(0.25, 0.75, (200, 30, 30), "17280f", DEFAULT_RADIUS),
    )
    h = load_hints(path)[0]
    assert type(h.x) is float and type(h.y) is float and type(h.radius) is float


def test_load_hints_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "hints.toml", """\
[[hints]]
frame = 1200
x = 0.42
y = 0.61
color = "#a03020"

[[hints]]
x = 0.1
y = 0.2
colour = [48, 96, 192]
radius = 0.02

[[hints]]
frame = "00:00:01.5"
x = 1
y = 0
color = "olive"
""")
    assert load_hints(path) == (
        HintSpec(0.42, 0.61, (160, 48, 32), "1200f", DEFAULT_RADIUS),
        HintSpec(0.1, 0.2, (48, 96, 192), None, 0.02),
        HintSpec(1.0, 0.0, (110, 110, 40), "00:00:01.5", DEFAULT_RADIUS),
    )
    # The suffix decides, whatever its case; the same text as .json is not JSON.
    upper = write(tmp_path / "HINTS.TOML", path.read_text())
    assert load_hints(upper) == load_hints(path)
    as_json = write(tmp_path / "hints.json", path.read_text())
    with pytest.raises(ConfigError, match="not valid JSON at line 1"):
        load_hints(as_json)


def test_load_hints_empty_list(tmp_path: Path) -> None:
    assert load_hints(hints_json(tmp_path, [])) == ()
    assert load_hints(write(tmp_path / "h.toml", "hints = []\n")) == ()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # syntax errors name the line
        ("bad.json", '{"hints": [\n  {"x": 0.1, "y": 0.2, "color": "#a03020"}\n  {"x": 0.3}\n]}',
         ["not valid JSON at line 3, column 3"]),
        ("bad.json", '{"hints": [\n  {"x": 0.1, "y": 0.2, "color": "#a03020",}\n]}',
         ["not valid JSON at line 2"]),
        ("bad.json", "", ["not valid JSON at line 1"]),
        ("bad.toml", '[[hints]]\nx = \ny = 0.2\ncolor = "#a03020"\n', ["not valid TOML", "line 2"]),
        ("bad.toml", '[[hints]]\nx = 0.1\ny = 0.2\ncolor = #a03020\n', ["not valid TOML", "line 4"]),
        # the list itself
        ("h.json", '{"points": []}', ["expected a list named 'hints' at the top level"]),
        ("h.json", '{"hints": {"x": 0.1}}', ["expected a list named 'hints' at the top level"]),
        ("h.json", '[{"x": 0.1, "y": 0.2, "color": "red"}]', ["expected a list named 'hints'"]),
        ("h.toml", 'x = 0.1\n', ["expected a list named 'hints'"]),
        ("h.json", '{"hints": [{"x": 0.1, "y": 0.2, "color": "red"}, 7]}',
         ["hints[1] is not a table/object with x, y and color"]),
    ],
)
def test_load_hints_syntax_errors(tmp_path: Path, name: str, text: str, expected: list[str]) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as e:
        load_hints(path)
    msg = str(e.value)
    assert msg.startswith(f"--hints {path}: ")
    assert "\n" not in msg
    for part in expected:
        assert part in msg


GOOD = {"x": 0.1, "y": 0.2, "color": "#3060c0"}


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"color": "#zzzzzz"}, "hints[1].color: '#zzzzzz' is not a colour"),
        ({"color": "#a0302"}, "hints[1].color: '#a0302' is not a colour"),
        ({"color": [0, 0, 300]}, "hints[1].color: [0, 0, 300] is not a colour"),
        ({"color": None}, "hints[1].color is missing"),
        ({"x": 1.5}, "hints[1].x: 1.5 is outside 0..1"),
        ({"x": -0.01}, "hints[1].x: -0.01 is outside 0..1"),
        ({"y": 2}, "hints[1].y: 2 is outside 0..1"),
        ({"x": "0.5"}, "hints[1].x: '0.5' is not a number"),
        ({"y": True}, "hints[1].y: True is not a number"),
        ({"x": None}, "hints[1].x is missing"),
        ({"y": None}, "hints[1].y is missing"),
        ({"radius": 0.6}, "hints[1].radius: 0.6 is outside 0..0.5"),
        ({"radius": -1}, "hints[1].radius: -1 is outside 0..0.5"),
        ({"size": 3}, "hints[1]: unknown field 'size'"),
        ({"frames": 3}, "hints[1]: unknown field 'frames'"),
        ({"frame": -1}, "hints[1].frame: -1 is not a frame number or a position"),
        ({"frame": "-5f"}, "hints[1].frame: '-5f' is not a frame number or a position"),
        ({"frame": "soon"}, "hints[1].frame: 'soon' is not a frame number or a position"),
        ({"frame": 12.5}, "hints[1].frame: 12.5 is not a frame number or a position"),
        ({"frame": True}, "hints[1].frame: True is not a frame number or a position"),
    ],
)
def test_load_hints_bad_field(tmp_path: Path, bad: dict, expected: str) -> None:
    entry = {**GOOD, **bad}
    entry = {k: v for k, v in entry.items() if v is not None}
    path = hints_json(tmp_path, [{"x": 0.5, "y": 0.5, "color": "red"}, entry])
    with pytest.raises(ConfigError) as e:
        load_hints(path)
    msg = str(e.value)
    assert msg.startswith(f"--hints {path}: ")
    assert expected in msg
    assert "\n" not in msg


def test_load_hints_bad_field_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "h.toml", '[[hints]]\nx = 0.1\ny = 0.2\ncolor = "#zzzzzz"\n')
    with pytest.raises(ConfigError, match=r"hints\[0\]\.color: '#zzzzzz' is not a colour"):
        load_hints(path)
    path = write(tmp_path / "h.toml", '[[hints]]\nx = 1.5\ny = 0.2\ncolor = "red"\n')
    with pytest.raises(ConfigError, match=r"hints\[0\]\.x: 1\.5 is outside 0\.\.1"):
        load_hints(path)
    path = write(tmp_path / "h.toml", '[[hints]]\nframe = -3\nx = 0.1\ny = 0.2\ncolor = "red"\n')
    with pytest.raises(ConfigError, match=r"hints\[0\]\.frame: -3 is not a frame number"):
        load_hints(path)


def test_load_hints_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError) as e:
        load_hints(missing)
    assert str(e.value) == f"--hints {missing}: no such file"
    with pytest.raises(ConfigError, match="cannot read"):
        load_hints(tmp_path)  # a folder
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"hints": [{"x": 0.1, "y": 0.2, "color": "r\xf6d"}]}'.encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_hints(latin1)


# -- the whole guidance ----------------------------------------------------------------------------
def test_load_guidance_empty() -> None:
    spec = load_guidance()
    assert spec == GuidanceSpec() and not spec and not spec.timed
    assert spec.settings() == {}
    assert spec.hints_file is None


def test_load_guidance(tmp_path: Path) -> None:
    a = colour_still(tmp_path / "a.png", seed=1)
    b = colour_still(tmp_path / "b@2x.png", seed=2)
    hints = hints_json(tmp_path, [{"x": 0.42, "y": 0.61, "color": "#a03020"},
                                  {"x": 0.1, "y": 0.2, "color": "#3060c0", "radius": 0.02}])
    spec = load_guidance([str(a), f"{b}@17f"], str(hints))
    assert bool(spec)
    assert spec.references == (ReferenceSpec(a), ReferenceSpec(b, "17f"))
    assert spec.hints == (HintSpec(0.42, 0.61, (160, 48, 32), None, 0.01),
                          HintSpec(0.1, 0.2, (48, 96, 192), None, 0.02))
    assert spec.hints_file == hints
    assert spec.timed  # the reference @17f
    assert spec.settings() == {
        "references": [
            {"file": "a.png", "at": None, "sha256": sha256(a)},
            {"file": "b@2x.png", "at": "17f", "sha256": sha256(b)},
        ],
        "hints": {"file": "hints.json", "sha256": sha256(hints)},
    }
    json.dumps(spec.settings())  # job settings are JSON


def test_guidance_timed(tmp_path: Path) -> None:
    a = colour_still(tmp_path / "a.png")
    untimed = hints_json(tmp_path, [GOOD], "untimed.json")
    timed = hints_json(tmp_path, [GOOD, {**GOOD, "frame": "00:00:01"}], "timed.json")
    assert not load_guidance([str(a)]).timed
    assert not load_guidance([str(a)], untimed).timed
    assert load_guidance([str(a)], timed).timed
    assert load_guidance([], timed).timed
    assert load_guidance([f"{a}@0f"]).timed
    only_hints = load_guidance(hints=untimed)
    assert bool(only_hints) and only_hints.references == ()
    assert only_hints.settings() == {"hints": {"file": "untimed.json", "sha256": sha256(untimed)}}
    assert not load_guidance(hints=hints_json(tmp_path, [], "empty.json"))  # no hint in it


def test_settings_follow_the_file_contents(tmp_path: Path) -> None:
    """An edited file of the same name is other guidance (a resumed job must see it)."""
    ref = colour_still(tmp_path / "still.png", seed=3)
    hints = hints_json(tmp_path, [GOOD])
    first = load_guidance([f"{ref}@5f"], hints).settings()
    assert load_guidance([f"{ref}@5f"], hints).settings() == first  # same files: same settings
    assert load_guidance([f"{ref}@6f"], hints).settings() != first  # other position

    hints_json(tmp_path, [{**GOOD, "color": "#3060c1"}])
    edited_hints = load_guidance([f"{ref}@5f"], hints).settings()
    assert edited_hints["references"] == first["references"]
    assert edited_hints["hints"]["file"] == first["hints"]["file"] == "hints.json"
    assert edited_hints["hints"]["sha256"] != first["hints"]["sha256"]

    colour_still(ref, seed=4)
    edited_ref = load_guidance([f"{ref}@5f"], hints).settings()
    assert edited_ref["hints"] == edited_hints["hints"]
    assert edited_ref["references"][0]["file"] == "still.png"
    assert edited_ref["references"][0]["at"] == "5f"
    assert edited_ref["references"][0]["sha256"] != first["references"][0]["sha256"]


def test_load_guidance_refuses(tmp_path: Path, image_png: Path) -> None:
    a = colour_still(tmp_path / "a.png")
    grey = image_png
    assert ConfigError.exit_code == 2
    with pytest.raises(ConfigError, match="no such file"):
        load_guidance([str(a), str(tmp_path / "b.png")])
    with pytest.raises(ConfigError, match="the image has no colour"):
        load_guidance([f"{grey}@5f"])
    bad = hints_json(tmp_path, [{**GOOD, "x": 1.5}])
    with pytest.raises(ConfigError, match=r"hints\[0\]\.x"):
        load_guidance([str(a)], bad)


# -- the command line: one line, exit 2, nothing written -------------------------------------------
def cli(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FILMCOLOR_DEBUG"}
    return subprocess.run([sys.executable, "-m", "filmcolor", *map(str, args)],
                          check=False, capture_output=True, text=True, env=env)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("filmcolor: error: ")
    return lines[0]


@pytest.mark.slow
def test_cli_run_bad_hints(clip_ntsc: Clip, tmp_path: Path) -> None:
    hints = hints_json(tmp_path, [GOOD, {**GOOD, "color": "#zzzzzz"}])
    out = tmp_path / "o.mp4"
    line = one_line_error(cli("run", clip_ntsc.path, "-o", out, "-q", "--device", "cpu",
                              "--hints", hints))
    assert f"--hints {hints}: hints[1].color: '#zzzzzz' is not a colour" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hints.json"]


@pytest.mark.slow
def test_cli_run_reference_past_the_end(clip_ntsc: Clip, tmp_path: Path) -> None:
    still = colour_still(tmp_path / "still.png")
    out = tmp_path / "o.mp4"
    line = one_line_error(cli("run", clip_ntsc.path, "-o", out, "-q", "--device", "cpu",
                              "--reference", f"{still}@99999f"))
    assert "past the end" in line
    assert f"--reference {still}@99999f" in line and "(48 frames)" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]  # no job folder either


@pytest.mark.slow
def test_cli_run_grey_reference(clip_ntsc: Clip, tmp_path: Path, image_png: Path) -> None:
    grey = image_png
    out = tmp_path / "o.mp4"
    line = one_line_error(cli("run", clip_ntsc.path, "-o", out, "-q", "--device", "cpu",
                              "--reference", grey))
    assert "the image has no colour" in line and grey.name in line
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_preview_malformed_hints(clip_ntsc: Clip, tmp_path: Path) -> None:
    hints = write(tmp_path / "hints.json", '{"hints": [\n  {"x": 0.1, "y": 0.2,\n  "color": }\n]}')
    still = colour_still(tmp_path / "still.png")
    out = tmp_path / "p.mp4"
    line = one_line_error(cli("preview", clip_ntsc.path, "--start", "0", "--end", "1", "-o", out,
                              "-q", "--device", "cpu", "--reference", still, "--hints", hints))
    assert f"--hints {hints}: not valid JSON at line 3" in line
    assert not out.exists() and not out.with_suffix(".png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hints.json", "still.png"]
