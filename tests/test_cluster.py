"""Chunks on a Ray cluster (#16): ``--ray``, its two storage layouts, retries, resume and batch.

What a user may rely on when a film's chunks run as Ray tasks instead of in this process:

* the frames (pts and decoded planes) and the sound are bit-identical to a plain run, with the
  shared layout and with the object-store layout (where the driver writes every chunk file);
* a worker process killed mid-chunk is retried in a new one and the film still comes out whole
  and identical;
* a job is a job: one started on Ray resumes without Ray, and the other way round;
* ``filmcolor batch --ray`` colours a folder's films and photos, one bad file failing alone, and
  a second batch skips what is done;
* ``--ray local`` starts a runtime here; an address where nothing listens fails with one line.

Ray is started once for the module (``ray_runtime``); ``init_ray`` sees it running and reuses it,
so the in-process runs here do not pay Ray's start-up each. Runs that need their own runtime (a
killed worker, an unreachable address) are subprocesses.

Every film run uses the ``tiny`` model and 40-frame chunks on a 110-frame clip with sound and
cuts at 30 and 70: three chunks, ``(0, 30) (30, 70) (70, 110)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import filmcolor.jobs.cluster as cluster_mod
from filmcolor.__main__ import main
from filmcolor.api import run
from filmcolor.batch import run_batch
from filmcolor.config import RunConfig
from filmcolor.errors import FilmcolorError, JobInterrupted
from filmcolor.jobs import faults, folder
from filmcolor.jobs.folder import CHUNK_SUFFIX
from filmcolor.jobs.manifest import JobManifest
from tests.media import Clip, make_clip, make_image

ray = pytest.importorskip("ray")

CHUNK_FRAMES = 40
N_FRAMES = 110
CUTS = (30, 70)
CHUNKS = 3
"""Chunks of :data:`N_FRAMES` frames cut at :data:`CUTS` with :data:`CHUNK_FRAMES` (see above)."""

TINY = ["--model", "tiny", "--chunk-frames", str(CHUNK_FRAMES), "-q"]
"""The CLI form of :func:`config`'s settings (a resumed job must match them)."""

Film = tuple[list, list]
"""What two runs must share: ``(video frames, audio packets)`` (see :func:`film_of`)."""


# -- helpers ---------------------------------------------------------------------------------------
def config(src: Path, out: Path, **kw) -> RunConfig:
    """The settings of every run here (a resumed job must have the same pixel settings)."""
    return RunConfig(input=src, output=out, model="tiny", chunk_frames=CHUNK_FRAMES, quiet=True,
                     **kw)


def film_of(path: Path) -> Film:
    """``(pts, (Y, U, V))`` of each decoded frame (planes cropped, no padding), and ``(pts, dts,
    bytes)`` of each audio packet: equal for two files only if they hold the same film."""
    with av.open(str(path)) as c:
        frames = []
        for f in c.decode(c.streams.video[0]):
            planes = tuple(
                np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].tobytes()
                for p in f.planes
            )
            frames.append((f.pts, planes))
    with av.open(str(path)) as c:
        audio = [(p.pts, p.dts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]
    return frames, audio


def assert_same_film(path: Path, reference: Film) -> None:
    """``path`` holds exactly the reference film: frame count, pts, planes and sound."""
    frames, audio = film_of(path)
    ref_frames, ref_audio = reference
    assert len(frames) == len(ref_frames)
    assert [pts for pts, _ in frames] == [pts for pts, _ in ref_frames]
    # Compared frame by frame so a failure names the first frame that differs, not a blob.
    for i, ((_, planes), (_, ref)) in enumerate(zip(frames, ref_frames, strict=True)):
        assert planes == ref, f"frame {i} differs"
    assert audio and audio == ref_audio


def first_done_interrupts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Ctrl-C right after the first chunk is recorded, whichever it is; returns its index.

    With Ray two chunks are in flight and either may finish first, so "chunk 0" would not be
    deterministic; "the first one recorded" is.
    """
    recorded: list[int] = []

    def hook(name: str, n: int) -> None:
        if name == "done" and not recorded:
            recorded.append(n)
            raise KeyboardInterrupt

    monkeypatch.setattr(faults, "kill_point", hook)
    return recorded


def spy_on(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[tuple]:
    """Record the arguments of each call of method ``name`` of ``cls`` (in this process), so a
    test can tell that the runs really went through it (a run that quietly fell back to the
    local executor gives the same frames)."""
    calls: list[tuple] = []
    real = getattr(cls, name)

    def wrapper(self, *args):
        calls.append(args)
        return real(self, *args)

    monkeypatch.setattr(cls, name, wrapper)
    return calls


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m filmcolor`` subprocess: one-line errors (no debug
    traceback), and no ``RAY_ADDRESS`` that could send it to another cluster."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["FILMCOLOR_DEBUG"] = "0"
    env.update(extra)
    return env


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """110 frames, 160x120, cuts at 30 and 70, AAC tone track: three chunks of the job."""
    return make_clip(tmp_path_factory.mktemp("cluster_media") / "reel.mp4", n_frames=N_FRAMES,
                     cuts=CUTS)


@pytest.fixture(scope="module")
def plain(film: Clip, tmp_path_factory: pytest.TempPathFactory) -> Film:
    """The film of a plain run (chunks in this process, no Ray): what every other run must give."""
    out = tmp_path_factory.mktemp("cluster_plain") / "plain.mp4"
    summary = run(config(film.path, out))
    assert summary.frames == N_FRAMES
    result = film_of(out)
    assert len(result[0]) == N_FRAMES and result[1]
    return result


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime for the module's in-process runs (``init_ray`` reuses it)."""
    if ray.is_initialized():  # another module's runtime: not ours to shut down
        yield
        return
    # "local": a runtime of our own even where RAY_ADDRESS or `ray start` names another one.
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


# -- 1. the same frames, shared storage ------------------------------------------------------------
@pytest.mark.slow
def test_shared_storage_gives_the_plain_film(
    film: Clip, plain: Film, ray_runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``ray="local"`` (workers read the source and write chunk files into the job folder
    themselves) the output is bit-identical to a plain run, frames and sound, and the job folder
    is gone afterwards as after a plain run."""
    submitted = spy_on(monkeypatch, cluster_mod.RayExecutor, "submit")
    out = tmp_path / "ray.mp4"
    summary = run(config(film.path, out, ray="local"))
    assert summary.frames == N_FRAMES
    assert sorted(task.index for (task,) in submitted) == list(range(CHUNKS))
    assert_same_film(out, plain)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ray.mp4"]


# -- 2. the same frames, object-store layout -------------------------------------------------------
@pytest.mark.slow
def test_object_store_gives_the_plain_film_and_the_driver_writes_chunks(
    film: Clip, plain: Film, ray_runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``ray_storage="object-store"`` the output is bit-identical to a plain run, and every
    chunk file in the job folder was written by the driver from the bytes a worker returned (the
    layout for nodes that share no file system); the manifest marks each chunk done with the
    size of that file."""
    written: list[Path] = []
    real = cluster_mod._write_chunk

    def spy(path: Path, data: bytes) -> None:
        # Runs in this process (the driver) only: the workers never call it.
        written.append(path)
        real(path, data)

    monkeypatch.setattr(cluster_mod, "_write_chunk", spy)
    out = tmp_path / "os.mp4"
    summary = run(config(film.path, out, ray="local", ray_storage="object-store",
                         keep_chunks=True))
    assert summary.frames == N_FRAMES
    assert_same_film(out, plain)

    job = folder.default_job_dir(out)
    manifest = JobManifest.load(job)
    assert len(manifest.chunks) == CHUNKS and manifest.chunks_done == CHUNKS
    names = [c.filename(CHUNK_SUFFIX) for c in manifest.chunks]
    assert sorted(p.name for p in written) == sorted(names)
    assert all(p.parent == job for p in written)
    for c, name in zip(manifest.chunks, names, strict=True):
        assert c.done and (job / name).stat().st_size == c.bytes > 0
    # No temporary of the driver's write was left beside them.
    assert not [p.name for p in job.iterdir() if p.name.endswith(".tmp")]


# -- 3. a worker killed mid-chunk ------------------------------------------------------------------
@pytest.mark.slow
def test_killed_worker_is_retried_and_the_film_is_whole(
    film: Clip, plain: Film, tmp_path: Path
) -> None:
    """A Ray worker SIGKILLed at the fifth frame it encodes (once, in one process) is retried by
    Ray in a new worker: the run exits 0 with the plain run's film and no job folder left."""
    once = tmp_path / "once"
    out = tmp_path / "killed.mp4"
    # Own process: its Ray runtime (started by --ray local) passes this environment to its
    # workers, which is how the kill point reaches them; the module's runtime must not.
    cmd = [sys.executable, "-m", "filmcolor", str(film.path), "-o", str(out), *TINY,
           "--ray", "local"]
    env = cli_env(FILMCOLOR_KILL_AT="chunk:5", FILMCOLOR_KILL_ONCE=str(once))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert once.exists()  # a worker really reached the kill point (and so was killed)
    assert_same_film(out, plain)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.mp4", "once"]


# -- 4. a job is a job, with or without Ray --------------------------------------------------------
@pytest.mark.slow
def test_ray_job_resumes_without_ray(
    film: Clip, plain: Film, ray_runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``--ray`` run interrupted after its first chunk is recorded keeps that chunk, and
    ``filmcolor resume JOB`` without ``--ray`` finishes it into the plain run's film."""
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)
    recorded = first_done_interrupts(monkeypatch)
    with pytest.raises(JobInterrupted):
        run(config(film.path, out, ray="local"))
    monkeypatch.undo()
    assert len(recorded) == 1
    manifest = JobManifest.load(job)
    assert manifest.chunks_done == 1 and manifest.chunks[recorded[0]].done
    assert not out.exists()

    assert main(["resume", str(job), "-q"]) == 0
    assert_same_film(out, plain)
    assert not job.exists()


@pytest.mark.slow
def test_plain_job_resumes_on_ray(
    film: Clip, plain: Film, ray_runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reverse: a plain run interrupted after chunk 0 is finished on Ray by running the same
    command again with ``--ray local`` (the other way to resume), into the same film: ``ray`` is
    not a pixel setting, so the job is not refused as one with other settings."""
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)
    recorded = first_done_interrupts(monkeypatch)
    with pytest.raises(JobInterrupted):
        run(config(film.path, out))
    monkeypatch.undo()
    assert recorded == [0]  # one chunk at a time here: the first is chunk 0
    assert JobManifest.load(job).chunks_done == 1

    # The rerun, not `filmcolor resume JOB --ray local`: `resume` is the test above's path.
    assert main([str(film.path), "-o", str(out), *TINY, "--ray", "local"]) == 0
    assert_same_film(out, plain)
    assert not job.exists()


# -- 5. batch --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_batch_on_ray_with_a_bad_file(
    film: Clip, plain: Film, ray_runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``filmcolor batch IN -o OUT --ray local`` over two films, a photo and a broken file:
    exit 1, each film and the photo under its own name in OUT with exactly a single run's
    frames, nothing for the broken file and nothing else in OUT. A second batch skips the three
    good files and fails the broken one again with a one-line error."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(film.path, src / "reel1.mp4")  # the module's film: its plain run is ``plain``
    make_clip(src / "reel2.mp4", n_frames=48, cuts=(16, 32), seed=7)
    make_image(src / "still.png", seed=3)
    (src / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a film at all" * 40)
    # What single runs of the second film and the photo give (no Ray), to compare with.
    single = tmp_path / "single"
    single.mkdir()
    run(config(src / "reel2.mp4", single / "reel2.mp4"))
    run(config(src / "still.png", single / "still.png"))
    out = tmp_path / "out"

    opened = spy_on(monkeypatch, cluster_mod.RayExecutor, "open")
    code = main(["batch", str(src), "-o", str(out), *TINY, "--ray", "local"])
    assert code == FilmcolorError.exit_code
    assert len(opened) == 2  # each good film's chunks went to Ray
    monkeypatch.undo()
    first_err = capsys.readouterr().err
    # Exactly the three outputs: no bad.mp4 output, no job folder, no hidden temporary.
    assert sorted(p.name for p in out.iterdir()) == ["reel1.mp4", "reel2.mp4", "still.png"]
    assert_same_film(out / "reel1.mp4", plain)
    assert film_of(out / "reel2.mp4") == film_of(single / "reel2.mp4")
    assert (out / "still.png").read_bytes() == (single / "still.png").read_bytes()

    # Again, without Ray (the sequential path): what is done is skipped, bad.mp4 fails alone.
    summary = run_batch(config(src, None), src, out)
    assert sorted(i.source.name for i in summary.of("skipped")) == [
        "reel1.mp4", "reel2.mp4", "still.png"]
    assert not summary.of("done")
    (failed,) = summary.of("failed")
    assert failed.source.name == "bad.mp4"
    assert failed.error and "\n" not in failed.error and "bad.mp4" in failed.error
    assert sorted(p.name for p in out.iterdir()) == ["reel1.mp4", "reel2.mp4", "still.png"]

    # Last, as it is the weakest promise: with -q the summary is not printed, but the error
    # line says the failed files are "listed above", so it must name them somewhere.
    assert "bad.mp4" in first_err, f"-q batch never names the failed file: {first_err!r}"


# -- 6. --ray local and a bad address --------------------------------------------------------------
def test_ray_local_starts_a_runtime_here_whatever_ray_address_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--ray local`` is documented as "start a runtime here": the address ``init_ray`` hands
    to ``ray.init`` must make Ray start a local instance even where ``RAY_ADDRESS`` names a
    cluster (set on cluster nodes and in Ray job environments). Ray itself resolves the address
    here, so the test needs no runtime."""
    from ray._private.services import canonicalize_bootstrap_address

    seen: dict = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(kw))
    monkeypatch.setenv("RAY_ADDRESS", "10.255.255.1:6379")
    cluster_mod.init_ray("local")
    assert "address" in seen
    # None from Ray's own resolution means "start a new local instance".
    assert canonicalize_bootstrap_address(seen["address"]) is None, (
        f"init_ray('local') passed address={seen['address']!r}, which Ray resolves to "
        f"{canonicalize_bootstrap_address(seen['address'])!r} (RAY_ADDRESS), not a local runtime")


@pytest.mark.slow
def test_unreachable_address_is_one_line_and_leaves_nothing(film: Clip, tmp_path: Path) -> None:
    """``--ray 127.0.0.1:1`` (nothing listens) fails within a minute with one
    ``filmcolor: error:`` line naming the address, and leaves no output and no job folder."""
    out = tmp_path / "o.mp4"
    cmd = [sys.executable, "-m", "filmcolor", str(film.path), "-o", str(out), *TINY,
           "--ray", "127.0.0.1:1"]
    try:
        r = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=60,
                           check=False)
    except subprocess.TimeoutExpired:
        left = sorted(p.name for p in tmp_path.iterdir())
        pytest.fail(f"no answer within 60 s for an unreachable Ray address (left: {left})")
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("filmcolor:")]
    assert len(errors) == 1 and errors[0].startswith("filmcolor: error: "), r.stderr
    assert "127.0.0.1:1" in errors[0]
    assert not list(tmp_path.iterdir())
