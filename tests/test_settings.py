"""One source for settings (#14): RunConfig's field metadata is what the CLI offers and checks.

Every run setting declares its default, bounds and help once, on :class:`RunConfig`; ``run`` and
``preview`` build their options from it, so a default or a bound cannot drift between the CLI and
``RunConfig(...)``. The encoder and smoother keep their own defaults for library callers (they
cannot import the config layer); these tests keep them equal too.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import click
import pytest

from filmcolor import cli
from filmcolor.__main__ import main
from filmcolor.cli import preview_cmd, run_cmd
from filmcolor.config import SETTING_KEY, RunConfig, Setting, settings
from filmcolor.errors import ConfigError

SETTINGS = {f.name: (f, s) for f, s in settings()}

# Options of the commands that are not RunConfig fields, on purpose.
RUN_ONLY = {"input", "no_smoothing"}
PREVIEW_ONLY = {"input", "start", "end", "frames", "output", "side_by_side", "sheet",
                "before_after"}

# Settings with bounds: (name, lowest accepted, highest accepted, a step just past either end).
BOUNDED = [(name, s.lo, s.hi, 1 if s.type is int else 0.5)
           for name, (_, s) in SETTINGS.items() if s.lo is not None or s.hi is not None]


def params(cmd: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in cmd.params}


def text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- declared once: every setting has metadata and an option with its default ---------------------


def test_every_field_but_input_is_a_declared_setting() -> None:
    assert [f.name for f in fields(RunConfig) if SETTING_KEY not in f.metadata] == ["input"]
    assert all(isinstance(s, Setting) and s.help and s.flag.startswith("--")
               for _, s in SETTINGS.values())


def test_run_offers_every_setting_with_its_default() -> None:
    opts = params(run_cmd)
    assert set(opts) - set(SETTINGS) == RUN_ONLY  # nothing declared by hand beside the metadata
    for name, (f, s) in SETTINGS.items():
        p = opts[name]
        assert s.flag in p.opts, name
        assert p.default == f.default, name
        if s.short:
            assert s.short in p.opts, name


def test_preview_offers_the_non_sweep_settings_with_their_defaults() -> None:
    opts = params(preview_cmd)
    plain = {n for n, (_, s) in SETTINGS.items() if s.preview and not s.sweep}
    sweeps = {n for n, (_, s) in SETTINGS.items() if s.sweep}
    assert set(opts) == plain | sweeps | PREVIEW_ONLY
    for name in plain:
        f, s = SETTINGS[name]
        assert s.flag in opts[name].opts and opts[name].default == f.default, name
    for name in sweeps:  # compared lists, but under the setting's own flag
        assert SETTINGS[name][1].flag in opts[name].opts, name


def test_flags_names_and_defaults_kept() -> None:
    """The options users already type, with the defaults they already get."""
    run = params(run_cmd)
    assert run["scene_detect"].opts == ["--no-scene-detect"] and run["scene_detect"].default
    assert run["references"].opts == ["--reference"] and run["references"].metavar == "IMAGE[@T]"
    assert set(run["output"].opts) == {"-o", "--output"}
    assert set(run["quiet"].opts) == {"-q", "--quiet"}
    assert run["no_smoothing"].opts == ["--no-smoothing"]
    defaults = {n: run[n].default for n in ("device", "batch_size", "smoothing", "temporal",
                                            "upsample", "codec", "crf", "preset", "chunk_frames")}
    assert defaults == {"device": "auto", "batch_size": 8, "smoothing": 0.5, "temporal": "flow",
                        "upsample": "bilateral", "codec": "libx264", "crf": 18,
                        "preset": "medium", "chunk_frames": 2000}
    assert all(run[n].show_default for n in defaults)
    assert not run["render_size"].show_default and not run["vividness"].show_default
    assert params(preview_cmd)["output"].help.startswith("Clip to write")


def test_library_defaults_agree_with_runconfig() -> None:
    """encode.py and smoothing.py keep defaults for their own callers; they are RunConfig's."""
    from filmcolor.io import encode
    from filmcolor.temporal import smoothing

    cfg = RunConfig(input="x.mp4")
    assert (cfg.codec, cfg.crf, cfg.preset) == (
        encode.DEFAULT_CODEC, encode.DEFAULT_CRF, encode.DEFAULT_PRESET)
    assert cfg.smoothing == smoothing.DEFAULT_STRENGTH


# -- bounds: the CLI and RunConfig(...) accept and refuse the same values ---------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The RunConfig each `run` / `preview` command builds; the command stops there (exit 0)."""
    got: list[RunConfig] = []

    class Recording(RunConfig):
        def __post_init__(self) -> None:
            super().__post_init__()  # validation first: a bad value still raises ConfigError
            got.append(self)
            raise click.exceptions.Exit(0)  # before any decoding or colouring

    monkeypatch.setattr(cli, "RunConfig", Recording)
    return got


def same(cfg: RunConfig, **expected: object) -> bool:
    """``cfg`` holds exactly ``RunConfig(**expected)``'s values (it is a recording subclass)."""
    return vars(cfg) == vars(RunConfig(**expected))


def commands_for(name: str) -> list[str]:
    _, s = SETTINGS[name]
    return ["run", "preview"] if s.preview else ["run"]


@pytest.mark.parametrize(("name", "lo", "hi", "step"), BOUNDED, ids=[b[0] for b in BOUNDED])
def test_bounds_enforced_identically(name: str, lo, hi, step, captured, capsys) -> None:
    _, s = SETTINGS[name]
    inside = [v for v in (lo, hi) if v is not None]
    outside = [v for v in (None if lo is None else lo - step, None if hi is None else hi + step)
               if v is not None]
    cast = s.type
    for command in commands_for(name):
        for v in inside:
            captured.clear()
            assert main([command, "x.mp4", s.flag, text(cast(v)), "-q"]) == 0, (command, v)
            assert getattr(captured[0], name) == v
        for v in outside:
            assert main([command, "x.mp4", s.flag, text(cast(v)), "-q"]) == 2, (command, v)
            assert s.flag in capsys.readouterr().err
    for v in inside:
        assert getattr(RunConfig(input="x.mp4", **{name: cast(v)}), name) == v
    for v in outside:
        with pytest.raises(ConfigError) as e:
            RunConfig(input="x.mp4", **{name: cast(v)})
        assert str(e.value).startswith(f"{s.flag} must be ")
        assert ConfigError.exit_code == 2  # the CLI's exit code for it, as click's usage errors


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"smoothing": 1.5}, "--smoothing must be in 0..1 (got 1.5)"),
    ({"batch_size": 0}, "--batch-size must be in 1..1024 (got 0)"),
    ({"batch_size": 1025}, "--batch-size must be in 1..1024 (got 1025)"),
    ({"render_size": 16}, "--render-size must be in 32..2048 (got 16)"),
    ({"vividness": 5.0}, "--vividness must be in 0..4 (got 5.0)"),
    ({"fade_unsure": 65.0}, "--fade-unsure must be in 0..64 (got 65.0)"),
    ({"crf": 64}, "--crf must be in 0..63 (got 64)"),
    ({"chunk_frames": 0}, "--chunk-frames must be >= 1 (got 0)"),
    ({"temporal": "x"}, "--temporal must be one of flow, window (got 'x')"),
    ({"upsample": "nearest"}, "--upsample must be one of bilateral, bilinear (got 'nearest')"),
])
def test_runconfig_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        RunConfig(input="x.mp4", **kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize("command", ["run", "preview"])
@pytest.mark.parametrize("flag", ["--temporal", "--upsample"])
def test_choices_enforced_by_the_cli(command: str, flag: str, captured, capsys) -> None:
    assert main([command, "x.mp4", flag, "nope", "-q"]) == 2
    assert flag in capsys.readouterr().err
    assert not captured


def test_run_cli_builds_the_config(captured) -> None:
    assert main(["run", "x.mp4", "-q", "--no-smoothing", "--no-scene-detect", "--reference",
                 "a.jpg", "--reference", "b.jpg@12", "--crf", "20"]) == 0
    cfg = captured[0]
    assert (cfg.smoothing, cfg.scene_detect, cfg.references, cfg.crf, cfg.quiet) == (
        0.0, False, ("a.jpg", "b.jpg@12"), 20, True)
    assert same(cfg, input="x.mp4", quiet=True, smoothing=0.0, scene_detect=False,
                references=("a.jpg", "b.jpg@12"), crf=20)
    captured.clear()
    assert main(["run", "x.mp4"]) == 0
    assert same(captured[0], input="x.mp4")  # the CLI's defaults are RunConfig's


def test_preview_cli_builds_the_config(captured) -> None:
    assert main(["preview", "x.mp4", "-q", "--vividness", "1.5", "--render-size", "64",
                 "--no-scene-detect"]) == 0
    assert same(captured[0], input="x.mp4", quiet=True, vividness=1.5, render_size=64,
                scene_detect=False)
    captured.clear()
    assert main(["preview", "x.mp4", "--render-size", "64,96"]) == 0  # a sweep: no single size
    assert same(captured[0], input="x.mp4")


@pytest.mark.parametrize("value", ["16", "64,4096", "64,x"])
def test_preview_sweep_lists_take_the_setting_bounds(value: str, captured, capsys) -> None:
    assert main(["preview", "x.mp4", "--render-size", value, "-q"]) == 2
    err = capsys.readouterr().err
    assert "--render-size" in err
    if "x" not in value:
        assert "values must be in 32..2048" in err
    assert main(["preview", "x.mp4", "--vividness", "1,4.5", "-q"]) == 2
    assert "values must be in 0..4" in capsys.readouterr().err
    assert not captured


# -- the library API ----------------------------------------------------------------------------


def test_library_exports_config_and_errors() -> None:
    import filmcolor.config
    import filmcolor.errors

    assert filmcolor.RunConfig is filmcolor.config.RunConfig
    names = ["FilmcolorError", "ConfigError", "SourceOpenError", "DecodeError", "WeightsError",
             "ModelNotFoundError", "OutputError", "EncodeError", "RemuxError", "JobStateError",
             "JobInterrupted"]
    for name in names:
        assert getattr(filmcolor, name) is getattr(filmcolor.errors, name), name
        assert issubclass(getattr(filmcolor, name), filmcolor.FilmcolorError), name
    assert {"RunConfig", *names} <= set(filmcolor.__all__)
    assert all(hasattr(filmcolor, n) for n in filmcolor.__all__)
    with pytest.raises(AttributeError):
        filmcolor.NoSuchThing  # noqa: B018


def test_import_filmcolor_stays_light() -> None:
    code = ("import filmcolor, sys; light = 'torch' not in sys.modules; "
            "filmcolor.RunConfig; filmcolor.ConfigError; "
            "print(light, 'torch' in sys.modules, 'av' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["True", "False", "False"]  # even after touching the lazy names


def test_fade_unsure_reaches_the_colorizer() -> None:
    """--fade-unsure sets the fade; without it films get the model's footage fade and photos
    none (#13)."""
    from filmcolor.models.effunet import FOOTAGE_FADE
    from filmcolor.pipeline import build_colorizer

    film = build_colorizer(RunConfig(input="x.mp4", model="filmcolor-lite0", device="cpu"))
    photo = build_colorizer(RunConfig(input="x.png", model="filmcolor-lite0", device="cpu"),
                            footage=False)
    asked = build_colorizer(RunConfig(input="x.mp4", model="filmcolor-lite0", device="cpu",
                                      fade_unsure=0.0))
    assert (film.fade, photo.fade, asked.fade) == (FOOTAGE_FADE, 0.0, 0.0)
    assert "fade_unsure" in RunConfig(input="x.mp4").pixel_settings()
