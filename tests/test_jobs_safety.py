"""Resumable jobs (#4), review fixes: what a job may delete, failures, device, disk, kills, lock.

* The job directory: a folder that is not a job is refused before anything is written, and a
  job deletes only the files it made (a user's file in the folder survives success/--restart).
* Failures a rerun cannot get past: nothing left behind when no chunk was done; otherwise the
  job is kept and the error line says how to resume.
* Device and precision are part of the settings a resume must share.
* Disk: the first chunk is checked against a real estimate; ENOSPC is one "disk full" line.
* SIGKILL during the final remux (FFmpeg is killed with filmcolor; its temporary is not reused).
* The lock, held by another real process.

Helpers come from ``tests/test_jobs.py``; SIGKILL tests use ``--codec ffv1`` as there.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import filmcolor.jobs.chunk as chunk_mod
import filmcolor.jobs.finish as finish_mod
import filmcolor.jobs.spec as spec_mod
from filmcolor.config import RunConfig
from filmcolor.errors import DecodeError, EncodeError, RemuxError
from filmcolor.jobs import disk, faults, folder
from filmcolor.jobs.manifest import MANIFEST_NAME, Chunk, JobManifest
from tests.media import Clip, ffmpeg_bin
from tests.test_jobs import EXACT, TINY, frames_and_times, interrupt_at, run_cli


@pytest.fixture(scope="module")
def reference(clip_ntsc: Clip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted FFV1 job over ``clip_ntsc`` (48 frames, 6 chunks of at most 12)."""
    out = tmp_path_factory.mktemp("ref") / "ref.mkv"
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 0
    return out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("filmcolor: error: ")
    return err[0]


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- 1. the job directory ---------------------------------------------------------------------
def test_foreign_job_dir_refused_and_untouched(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    jd = tmp_path / "x" / "jd"
    jd.mkdir(parents=True)
    (jd / "thesis.txt").write_text("years of work")
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--job-dir", jd) == 7
    line = one_error_line(capsys)
    assert "is not a filmcolor job directory" in line and "'thesis.txt'" in line
    assert sorted(p.name for p in jd.iterdir()) == ["thesis.txt"]  # no manifest, no lock
    assert (jd / "thesis.txt").read_text() == "years of work"
    assert not out.exists()


@pytest.mark.parametrize("which", ["source", "output"])
def test_job_dir_of_source_or_output_refused(
    which: str, clip_ntsc: Clip, tmp_path: Path, capsys
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    data = clip_ntsc.path.read_bytes()
    if which == "source":
        src, out = w / "film.mp4", w / "film.colour.mp4"
        src.write_bytes(data)
    else:  # an empty output folder would otherwise pass the "non-empty" test
        src, out = clip_ntsc.path, w / "film.colour.mp4"
    assert run_cli(src, "-o", out, *TINY, "--job-dir", w) == 7
    assert f"is the folder of the {which}" in one_error_line(capsys)
    assert sorted(p.name for p in w.iterdir()) == (["film.mp4"] if which == "source" else [])
    assert src.read_bytes() == data


def test_job_dir_that_is_a_file_refused(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    jd = tmp_path / "jd"
    jd.write_bytes(b"mine")
    assert run_cli(clip_ntsc.path, "-o", tmp_path / "o.mp4", *TINY, "--job-dir", jd) == 7
    assert "is a file" in one_error_line(capsys)
    assert jd.read_bytes() == b"mine"


@pytest.mark.slow
def test_user_file_survives_success_and_restart(
    clip_ntsc: Clip, reference: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)

    def add_user_file(name: str, n: int) -> None:
        if f"{name}:{n}" == "done:3":  # mid-way, before the join and the clean-up
            (job / "notes.txt").write_text("keep me")

    monkeypatch.setattr(faults, "kill_point", add_user_file)
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 0
    assert frames_and_times(out) == frames_and_times(reference)
    assert sorted(p.name for p in job.iterdir()) == ["notes.txt"]  # the job's files are gone
    assert (job / "notes.txt").read_text() == "keep me"

    # A folder with a user's file and a job in it: --restart deletes only the job's files.
    out2 = tmp_path / "film2.mkv"
    job2 = folder.default_job_dir(out2)
    interrupt_at(monkeypatch, "done:1")
    assert run_cli(clip_ntsc.path, "-o", out2, *EXACT) == 130
    monkeypatch.undo()
    (job2 / "notes.txt").write_text("keep me too")
    assert run_cli(clip_ntsc.path, "-o", out2, *EXACT, "--restart") == 0
    assert frames_and_times(out2) == frames_and_times(reference)
    assert sorted(p.name for p in job2.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_empty_user_folder_is_kept(clip_ntsc: Clip, tmp_path: Path) -> None:
    """An empty folder made for --job-dir is used, emptied again, and left in place."""
    jd = tmp_path / "jd"
    jd.mkdir()
    out = tmp_path / "o.mkv"
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT, "--job-dir", jd) == 0
    assert jd.is_dir() and not list(jd.iterdir())
    assert len(frames_and_times(out)) == clip_ntsc.n_frames


# -- 2. failures a rerun cannot get past -------------------------------------------------------
def test_decode_error_while_planning_leaves_nothing(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch, capsys
) -> None:
    from filmcolor.io import decode as decode_mod

    real, calls = decode_mod.frame_luma, {"n": 0}

    def flaky(frame):
        calls["n"] += 1
        if calls["n"] == 20:
            raise ValueError("corrupt slice")
        return real(frame)

    monkeypatch.setattr(decode_mod, "frame_luma", flaky)
    out = tmp_path / "film.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 3
    line = one_error_line(capsys)
    assert "corrupt slice" in line and "kept" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no job folder, no temporaries


def test_encoder_failure_leaves_nothing(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    out = tmp_path / "film.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--codec", "no-such-codec") == 6
    assert "no-such-codec" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_decode_error_after_chunks_keeps_job(
    clip_ntsc: Clip, reference: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    real = chunk_mod.chunk_frames

    def failing(src, chunk, cuts, cfg, colorizer):
        for fr in real(src, chunk, cuts, cfg, colorizer):
            if chunk.index == 2 and fr.index == chunk.start + 5:
                raise DecodeError(f"cannot decode frame {fr.index}: corrupt slice")
            yield fr

    monkeypatch.setattr(chunk_mod, "chunk_frames", failing)
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 3
    line = one_error_line(capsys)
    assert line == (
        "filmcolor: error: cannot decode frame 21: corrupt slice; the job in "
        f"{job} was kept (2/6 chunks done): once the cause is fixed, resume with: "
        f"filmcolor resume {job}"
    )
    assert JobManifest.load(job).chunks_done == 2
    assert not list(job.glob("*.tmp")) and not out.exists()
    monkeypatch.undo()
    assert run_cli("resume", job, "-q") == 0
    assert frames_and_times(out) == frames_and_times(reference)


@pytest.mark.slow
def test_remux_failure_keeps_finished_job(
    clip_ntsc: Clip, reference: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from filmcolor.io import remux

    def broken(args):
        raise RemuxError("FFmpeg failed to write 'x': Invalid argument")

    monkeypatch.setattr(remux, "run_remux", broken)
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 6
    assert "was kept (6/6 chunks done)" in one_error_line(capsys)
    assert len(list(job.glob("chunk_*.mp4"))) == 6 and not list(job.glob("*.tmp"))
    assert hidden_files(tmp_path) == []
    monkeypatch.undo()
    assert run_cli("resume", job, "-q") == 0
    assert frames_and_times(out) == frames_and_times(reference)


# -- 3. device and precision -------------------------------------------------------------------
def test_job_settings_record_device_and_dtype() -> None:
    import torch

    cfg = RunConfig(input="x.mp4", model="tiny", device="cpu")
    s = spec_mod.job_settings(cfg)
    assert (s["device"], s["dtype"]) == ("cpu", "float32")
    gpu = SimpleNamespace(device=torch.device("cuda", 1), half=True)
    s = spec_mod.job_settings(cfg, gpu)
    assert (s["device"], s["dtype"]) == ("cuda", "float16")


@pytest.mark.slow
def test_resume_on_other_device_refused(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)
    interrupt_at(monkeypatch, "done:1")
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 130
    monkeypatch.undo()
    capsys.readouterr()
    path = job / MANIFEST_NAME
    data = json.loads(path.read_text())
    assert (data["settings"]["device"], data["settings"]["dtype"]) == ("cpu", "float32")
    # Written back without its seal, as a filmcolor from before the seal wrote manifests (an
    # edit of a sealed manifest is refused as such: tests/test_faults.py).
    assert data.pop("digest")

    # As if the job had been started on a GPU.
    data["settings"].update(device="cuda", dtype="float16")
    path.write_text(json.dumps(data))
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 7
    line = one_error_line(capsys)
    assert "device 'cuda' -> 'cpu'" in line and "dtype 'float16' -> 'float32'" in line
    assert "--restart" in line and "--device cuda" in line
    assert JobManifest.load(job).chunks_done == 2

    # A manifest from before the device was recorded: refused, and it says why.
    for key in ("device", "dtype"):
        del data["settings"][key]
    path.write_text(json.dumps(data))
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 7
    line = one_error_line(capsys)
    assert "device not recorded -> 'cpu'" in line and "older filmcolor" in line

    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--restart") == 0
    assert len(frames_and_times(out)) == clip_ntsc.n_frames


# -- 4. disk space ----------------------------------------------------------------------------
def test_first_chunk_estimate_is_not_zero() -> None:
    assert disk.bits_per_pixel_bound("ffv1", None, 8) == 24.0
    assert disk.bits_per_pixel_bound("libx264", 0, 10) == 30.0  # CRF 0 is lossless
    assert disk.bits_per_pixel_bound("libx264", 18) == 1.0
    assert disk.bits_per_pixel_bound("libx264", 24) == 0.5
    assert disk.bits_per_pixel_bound("mpeg4", None) == 4.0
    info = SimpleNamespace(width=1920, height=1080, bit_depth=8)
    cfg = RunConfig(input="x.mp4")  # libx264, CRF 18
    chunks = [Chunk(0, 0, 2000, 0, 2008), Chunk(1, 2000, 4000, 1992, 4000)]
    m = JobManifest(source={}, settings={}, config={}, total_frames=4000, chunks=chunks)
    assert disk.chunk_estimate(m, chunks[0], info, cfg) == 1920 * 1080 * 2000 // 8
    # Measured once a chunk is done: its bytes per frame, times the safety factor.
    chunks[0].done, chunks[0].bytes = True, 100_000_000
    assert disk.chunk_estimate(m, chunks[1], info, cfg) == int(
        100_000_000 * disk.DISK_FACTOR
    )


def test_first_chunk_checked_against_estimate(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch, capsys
) -> None:
    import shutil

    # Enough for the old check (the margin alone), not for 12 raw-sized FFV1 frames.
    need = clip_ntsc.width * clip_ntsc.height * 12 * 3
    free = disk.DISK_MARGIN + need // 2
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, free))
    out = tmp_path / "o.mkv"
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 5
    line = one_error_line(capsys)
    assert line.startswith("filmcolor: error: low disk space: ") and "chunk 0 needs" in line
    assert JobManifest.load(folder.default_job_dir(out)).chunks_done == 0  # kept: resumable


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("wrapped", [False, True], ids=["oserror", "pyav-encodeerror"])
@pytest.mark.slow
def test_disk_full_while_writing_a_chunk(
    wrapped: bool, clip_ntsc: Clip, reference: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from filmcolor.io import encode as encode_mod

    real = encode_mod.encode
    seen = {"chunks": 0}

    def filling(frames, path, *args, **kwargs):
        seen["chunks"] += 1
        if seen["chunks"] < 2:
            return real(frames, path, *args, **kwargs)

        def until_full():
            for i, fr in enumerate(frames):
                if i == 2:  # chunk 1 is frames 12-15
                    if wrapped:  # what PyAV's av.error.OSError becomes in VideoEncoder
                        raise EncodeError(f"encoding frame {fr.index} failed") from _enospc()
                    raise _enospc()
                yield fr

        return real(until_full(), path, *args, **kwargs)

    monkeypatch.setattr(encode_mod, "encode", filling)
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 5
    assert one_error_line(capsys) == (
        f"filmcolor: error: disk full: writing chunk 1 in {job} failed (no space left on the "
        "device); free some space and run the same command again (finished chunks are kept)"
    )
    assert not list(job.glob("*.tmp"))  # the partial chunk was removed
    assert JobManifest.load(job).chunks_done == 1
    monkeypatch.undo()
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 0
    assert frames_and_times(out) == frames_and_times(reference)


@pytest.mark.parametrize("step", ["join", "remux"])
@pytest.mark.slow
def test_disk_full_while_joining(
    step: str, clip_ntsc: Clip, reference: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from filmcolor.io import remux

    def full_join(paths, offsets, out):
        out.write_bytes(b"\0" * 1000)  # a partial file, as a full disk leaves
        raise EncodeError("joining the chunks failed") from _enospc()

    def full_remux(args):
        Path(args[-1]).write_bytes(b"\0" * 1000)
        raise RemuxError("FFmpeg failed", stderr="av_interleaved_write_frame(): No space left "
                         "on device\nError writing trailer: No space left on device")

    if step == "join":
        monkeypatch.setattr(finish_mod, "join_chunks", full_join)
    else:
        monkeypatch.setattr(remux, "run_remux", full_remux)
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 5
    what, where = ("the joined chunks", job) if step == "join" else ("the final output", tmp_path)
    assert one_error_line(capsys).startswith(
        f"filmcolor: error: disk full: writing {what} in {where} failed"
    )
    assert not list(job.glob("*.tmp")) and hidden_files(tmp_path) == []
    assert JobManifest.load(job).chunks_done == 6
    monkeypatch.undo()
    assert run_cli("resume", job, "-q") == 0
    assert frames_and_times(out) == frames_and_times(reference)


def test_manifest_write_failure_leaves_old_manifest(tmp_path: Path, monkeypatch) -> None:
    m = JobManifest(source={"size": 1}, settings={}, config={})
    m.save(tmp_path)

    def full(fd: int) -> None:
        raise _enospc()

    monkeypatch.setattr(os, "fsync", full)
    m.total_frames = 99
    with pytest.raises(OSError):
        m.save(tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]
    assert JobManifest.load(tmp_path).total_frames is None


# -- 5. SIGKILL during the final remux ----------------------------------------------------------
def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.slow
def test_sigkill_during_remux_and_resume(
    clip_ntsc: Clip, reference: Path, tmp_path: Path
) -> None:
    """The parent dies while FFmpeg remuxes: FFmpeg dies with it, and the resume is identical.

    An ``ffmpeg`` on PATH stands in for FFmpeg: it runs the real one, then SIGKILLs filmcolor
    (its parent) and would go on "writing" for two seconds, as a slow FFmpeg would.
    """
    real = ffmpeg_bin()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pidfile = tmp_path / "ffmpeg.pid"
    wrapper = bindir / "ffmpeg"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        "{real}" "$@" || exit $?
        case "$*" in *filmcolor-join*)
            echo $$ > "{pidfile}"
            kill -9 $PPID
            sleep 2
            echo "$*" >> "{tmp_path / 'survived'}";;
        esac
        """))
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "film.mkv"
    job = folder.default_job_dir(out)
    cmd = [sys.executable, "-m", "filmcolor", str(clip_ntsc.path), "-o", str(out), *EXACT]
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == -signal.SIGKILL, r.stderr
    ffmpeg_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 1.5
    while not _gone(ffmpeg_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(ffmpeg_pid)  # killed by the kernel with its parent, not still "writing"
    assert not out.exists() and JobManifest.load(job).chunks_done == 6
    # The killed run's remuxed temporary is there, named with its pid; the resume removes it.
    assert [n.split("-")[-1].split(".")[0].isdigit() for n in hidden_files(work)] == [True]
    assert run_cli("resume", job, "-q") == 0
    assert frames_and_times(out) == frames_and_times(reference)
    assert hidden_files(work) == [] and not job.exists()
    assert not (tmp_path / "survived").exists()


# -- 6. the lock, held by another process --------------------------------------------------------
@pytest.mark.slow
def test_lock_held_by_another_process(clip_ntsc: Clip, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    job = folder.default_job_dir(out)
    job.mkdir()
    holder_code = (
        "import sys\n"
        "from filmcolor.jobs.manifest import job_lock\n"
        "with job_lock(sys.argv[1]):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(job)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cmd = [sys.executable, "-m", "filmcolor", str(clip_ntsc.path), "-o", str(out), *TINY]
        env = {**os.environ, "FILMCOLOR_DEBUG": "0"}
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert r.returncode == 7
    assert r.stderr.strip().splitlines() == [
        (
            f"filmcolor: error: the job in {job} is in use by another filmcolor process "
            f"(pid {holder.pid}); wait for it to finish or stop it first"
        )
    ]
    assert sorted(p.name for p in job.iterdir()) == ["lock"] and not out.exists()
    # Once the holder is gone, the same command runs.
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=False)
    assert r.returncode == 0
    assert len(frames_and_times(out)) == clip_ntsc.n_frames
