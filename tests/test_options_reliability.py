"""Options and folder runs as #17 found them: ``--debug`` keeps the exit codes, a folder run
leaves filmcolor's own outputs alone and never writes over its input folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from filmcolor.__main__ import main
from filmcolor.config import is_own_output
from filmcolor.io.probe import list_images
from tests.media import Clip, make_image

TINY = ["--model", "tiny", "-q"]


def _cli(*args: str | Path, debug: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "FILMCOLOR_DEBUG": "0"}
    cmd = [sys.executable, "-m", "filmcolor", *(["--debug"] if debug else []), *map(str, args)]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)


def test_debug_keeps_the_documented_exit_code(clip_ntsc: Clip, tmp_path: Path) -> None:
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"the user's file")
    plain = _cli(clip_ntsc.path, "-o", out, *TINY)
    debug = _cli(clip_ntsc.path, "-o", out, *TINY, debug=True)
    assert plain.returncode == debug.returncode == 5  # output exists
    assert "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
    assert "Traceback" in debug.stderr and "OutputError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()
    assert out.read_bytes() == b"the user's file"


def test_own_outputs_are_recognised() -> None:
    for name in ("a.colour.png", "reel.colour.mp4", "reel.preview-0-120.mp4",
                 "reel.preview-17280-17400.png"):
        assert is_own_output(Path(name)), name
    for name in ("colour.png", "a.colourful.png", "reel.preview.mp4", "preview-0-1.png",
                 "scan_0001.png"):
        assert not is_own_output(Path(name)), name


def test_folder_run_skips_its_own_outputs(tmp_path: Path) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    make_image(src / "a.png", seed=1)
    make_image(src / "b.png", seed=2)
    # What an earlier single-photo run and a preview's contact sheet left in the folder.
    shutil.copy(src / "a.png", src / "a.colour.png")
    shutil.copy(src / "b.png", src / "reel.preview-0-24.png")
    assert [p.name for p in list_images(src)] == ["a.png", "b.png"]
    out = tmp_path / "coloured"
    assert main([str(src), "-o", str(out), *TINY]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    # The sources are untouched.
    assert np.array_equal(cv2.imread(str(src / "a.png"), cv2.IMREAD_UNCHANGED),
                          cv2.imread(str(src / "a.colour.png"), cv2.IMREAD_UNCHANGED))


def test_folder_run_into_its_own_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    make_image(src / "a.png", seed=1)
    before = (src / "a.png").read_bytes()
    for extra in ([], ["--overwrite"]):  # not even with --overwrite
        r = _cli(src, "-o", src, *TINY, *extra)
        assert r.returncode == 5, r.stderr
        assert "the output folder is the input folder" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert (src / "a.png").read_bytes() == before
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]


def test_batch_into_its_own_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "reels"
    src.mkdir()
    make_image(src / "a.png", seed=1)
    r = _cli("batch", src, "-o", src, *TINY)
    assert r.returncode == 5 and "the output folder is the input folder" in r.stderr


def test_gitignore_covers_what_filmcolor_writes_beside_its_inputs() -> None:
    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        return
    names = ["samples/sample.colour.mp4", "samples/sample.colour.mkv", "x/photo.colour.jpg",
             "samples/sample.preview-0-120.mp4", "samples/sample.preview-0-120.png",
             "scans.colour/a.png", "samples/sample.colour.mp4.filmcolor-job/manifest.json"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *names], check=False, cwd=root,
                       capture_output=True, text=True)
    assert sorted(r.stdout.split()) == sorted(names)
