"""Speed and memory of filmcolor on this machine, against plain FFmpeg in the same run.

    python pipelines/benchmark.py                 # full: 20 s and 120 s 640x480 clips
    python pipelines/benchmark.py --quick         # 8 s clip, no 120 s RSS run
    python pipelines/benchmark.py --jobs          # also: previews and chunked-job overhead (#4)
    python pipelines/benchmark.py --ray           # only: Ray against a plain run, 1 and 2 workers

Prints: end-to-end fps of ``filmcolor`` (default model, default settings, exactly the path of
``filmcolor clip.mp4``: model load, planning pass, chunked job, remux, check); the same clip
transcoded by ``ffmpeg -c:v libx264`` at the same preset/crf in the same run and the ratio of the
two; the per-stage time split of a single pass (decode / scene cuts / model / temporal / merge /
encode / remux; decode runs in a background thread, so only the wait for it counts);
the model alone in ms per frame at render size 256, batch 8; and the peak RSS of whole runs on a
20 s and a 120 s clip (each in a fresh process) and their ratio. With ``--jobs``: the wall time
of a 5 s preview at the start and near the end of a 120 s clip (ratio, target <= 1.5x: previews
seek) and of a chunked job against a single pass over the same clip (target <= 1.10x).
Colour figures (#13, skipped with ``--quick``): the end-to-end run with the default colour
settings against the same run with filmcolor 0.1's (``--temporal window --upsample bilinear``),
best of two each, alternated (target >= 0.9x); the chroma merge of one 1920x1080 frame with the
bilateral and the bilinear upsampling (fastest of 9); and the temporal stages per frame at the
a/b grid of a 640x480 and a 1920x1080 frame.
With ``--ray`` (#16, only these figures): a local cluster started with ``ray start`` on this
machine (a head that runs no chunks and worker nodes of one CPU each), the same clip coloured
plainly and through ``--ray`` with one and then two workers (frames per second, speed against
the plain run, target >= 0.85x with one worker), and the scheduling cost per chunk: the Ray
run's extra time over the plain one divided by its chunks, and the round trip of an empty task.
Machines are shared and noisy: compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

RATE = Fraction(24000, 1001)


def make_clip(path: Path, seconds: float, width: int = 640, height: int = 480, seed: int = 0) -> None:
    """A synthetic grey 'film' with motion, grain, a cut every 5 s and an AAC sound track."""
    import av

    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=RATE)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "20"}
        au = c.add_stream("aac", rate=48000)
        au.layout = "stereo"
        shot_len = int(5 * RATE)
        for i in range(n):
            shot, t = divmod(i, shot_len)
            r = np.random.default_rng(shot)
            fx, fy, ph = r.uniform(0.005, 0.03), r.uniform(0.005, 0.03), r.uniform(0, 6)
            base = 0.5 + 0.25 * np.sin(xx * fx + yy * fy + ph + 0.05 * t)
            cx = (width * 0.2 + 4 * t) % width
            cy = height * (0.3 + 0.4 * r.random())
            disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < (40 + 30 * r.random()) ** 2
            img = np.where(disc, 0.15 + 0.7 * r.random(), base)
            img = img * (1 + 0.04 * rng.standard_normal()) + 0.02 * rng.standard_normal(img.shape)
            frame = av.VideoFrame.from_ndarray((np.clip(img, 0, 1) * 255).astype(np.uint8), format="gray")
            frame.pts = i
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        samples = int(seconds * 48000)
        tt = np.arange(samples) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32)
        for k in range(0, samples, 1024):
            chunk = np.stack([tone[k : k + 1024]] * 2)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, k
            for p in au.encode(af):
                c.mux(p)
        for p in au.encode():
            c.mux(p)


def ffmpeg_transcode(src: Path, dst: Path, preset: str, crf: int) -> float:
    from filmcolor.io.remux import ffmpeg_exe

    args = [ffmpeg_exe(), "-y", "-v", "error", "-i", str(src), "-map", "0:v:0", "-map", "0:a?",
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-c:a", "copy", str(dst)]
    t = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t


class Timed:
    """Wraps an iterator; accumulates the wall time spent inside its ``next()`` (incl. upstream)."""

    def __init__(self, it, name: str, stats: dict) -> None:
        self.it, self.name, self.stats = it, name, stats
        stats[name] = 0.0

    def __iter__(self):
        while True:
            t = time.perf_counter()
            try:
                x = next(self.it)
            except StopIteration:
                self.stats[self.name] += time.perf_counter() - t
                return
            self.stats[self.name] += time.perf_counter() - t
            yield x


def staged_run(src: Path, out: Path, cfg) -> dict:
    """The pipeline's stages by hand, timing each (self time = own time minus upstream's)."""
    from filmcolor.infer.merge import VideoMerger
    from filmcolor.io.decode import decode
    from filmcolor.io.encode import encode
    from filmcolor.io.probe import probe
    from filmcolor.io.remux import build_remux_args, ffmpeg_exe, run_remux
    from filmcolor.pipeline import build_colorizer
    from filmcolor.temporal.chain import build_temporal
    from filmcolor.temporal.scenecut import SceneCutDetector

    info = probe(src)
    colorizer = build_colorizer(cfg)
    st: dict = {}
    count = [0]

    def counted(it):
        for f in it:
            count[0] += 1
            yield f

    t0 = time.perf_counter()
    s = iter(Timed(decode(src), "decode", st))
    s = iter(Timed(SceneCutDetector().annotate(s), "scenecut", st))
    s = iter(Timed(colorizer(s), "model", st))
    s = iter(Timed(build_temporal(cfg.smoothing, cfg.temporal)(s), "temporal", st))
    s = iter(Timed(VideoMerger(cfg.upsample)(s), "merge", st))
    video = out.with_suffix(".video.mp4")
    encode(counted(s), video, info, codec=cfg.codec, crf=cfg.crf, preset=cfg.preset)
    t_enc = time.perf_counter() - t0
    t = time.perf_counter()
    run_remux(build_remux_args(video, src, out, info, ffmpeg=ffmpeg_exe()))
    t_remux = time.perf_counter() - t
    total = time.perf_counter() - t0
    order = ["decode", "scenecut", "model", "temporal", "merge"]
    self_t = {}
    prev = 0.0
    for k in order:
        self_t[k] = st[k] - prev
        prev = st[k]
    self_t["encode"] = t_enc - prev
    self_t["remux"] = t_remux
    return {"frames": count[0], "seconds": total, "fps": count[0] / total, "stages_s": self_t}


def model_ms_per_frame(size: int = 256, batch: int = 8, reps: int = 7) -> float:
    """The model's time per frame: the fastest of ``reps`` batches.

    The fastest, not the mean: other processes on a shared machine only ever add time, so the
    minimum is the repeatable figure (as ``timeit`` advises).
    """
    import torch

    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models import create_model

    col = Colorizer(create_model(), "cpu", batch, size)
    x = torch.rand(batch, 1, size, size) * 100
    col.predict(x)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        col.predict(x)
        times.append(time.perf_counter() - t)
    return min(times) / batch * 1000


def _test_frame(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grey frame with texture and a sharp-edged disc, and model-like a/b at render 256/4."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    luma = 0.5 + 0.25 * np.sin(xx * 0.013 + yy * 0.021)
    disc = ((xx - width * 0.4) ** 2 + (yy - height * 0.5) ** 2) < (height * 0.2) ** 2
    luma = np.where(disc, 0.85, luma) + 0.02 * rng.standard_normal(luma.shape)
    h = 64
    w = round(width * h / height)
    ab = np.stack([cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 4)
                   for _ in "ab"]) * 60
    return np.clip(luma, 0, 1).astype(np.float32), ab.astype(np.float32)


def colour_figures(clip: Path, tdp: Path) -> dict:
    """Cost of the #13 colour work: end to end against 0.1's settings, the 1080p merge with each
    upsampling, and the temporal stages per frame (see the module docstring)."""
    import cv2

    import filmcolor
    from filmcolor.frames import Frame
    from filmcolor.infer.merge import chroma_planes
    from filmcolor.temporal.chain import build_temporal

    res: dict = {}
    best = {"default": float("inf"), "v0.1": float("inf")}
    for _ in range(2):
        for name, kw in (("v0.1", {"temporal": "window", "upsample": "bilinear"}), ("default", {})):
            t = time.perf_counter()
            filmcolor.colorize(clip, tdp / f"colour-{name}.mp4", quiet=True, overwrite=True, **kw)
            best[name] = min(best[name], time.perf_counter() - t)
    res["end_to_end_default_s"], res["end_to_end_v01_s"] = best["default"], best["v0.1"]
    res["speed_vs_v01"] = best["v0.1"] / best["default"]
    luma, ab = _test_frame(1920, 1080)
    fr = Frame(index=0, luma=luma, ab=ab)
    for up in ("bilateral", "bilinear"):
        chroma_planes(fr, upsample=up)
        times = []
        for _ in range(9):
            t = time.perf_counter()
            chroma_planes(fr, upsample=up)
            times.append(time.perf_counter() - t)
        res[f"merge_1080p_{up}_ms"] = 1000 * min(times)
    for label, (wd, ht) in (("480p", (640, 480)), ("1080p", (1920, 1080))):
        base, _ = _test_frame(wd, ht)
        frames = []
        for i in range(32):
            _, a = _test_frame(64, 48, seed=i)  # only its a/b: the model's grid for this frame
            a = np.stack([cv2.resize(p, (round(wd * 64 / ht), 64)) for p in a])
            frames.append(Frame(index=i, luma=np.roll(base, 4 * i, axis=1), ab=a,
                                scene_start=i == 0))
        for method in ("window", "flow"):
            copies = [Frame(index=f.index, luma=f.luma, ab=f.ab.copy(), scene_start=f.scene_start)
                      for f in frames]
            t = time.perf_counter()
            n = sum(1 for _ in build_temporal(0.5, method)(iter(copies)))
            res[f"temporal_{method}_{label}_ms"] = 1000 * (time.perf_counter() - t) / n
    return res


def guidance_figures(clip: Path, tdp: Path) -> dict:
    """Cost of guidance (#12): the model stage per frame, and end to end, unguided against a
    reference still and against hints, best of two each, in one run."""
    import cv2
    import torch

    import filmcolor
    from filmcolor.config import RunConfig
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.io.decode import decode
    from filmcolor.models import create_model
    from filmcolor.pipeline import attach_guide, load_guidance

    first = next(iter(decode(clip)))
    still = tdp / "still.png"
    tint = np.float32([0.6, 0.9, 1.3])  # BGR: a warm cast, so the still has colour to give
    cv2.imwrite(str(still), np.clip(first.luma[..., None] * tint * 255, 0, 255).astype(np.uint8))
    hints = tdp / "hints.json"
    hints.write_text(json.dumps({"hints": [
        {"x": 0.3, "y": 0.4, "color": "#a03020"}, {"x": 0.7, "y": 0.6, "color": "#3060c0", "frame": 30}]}))
    res: dict = {}
    size, batch = 256, 8
    x = torch.rand(batch, 1, size, size) * 100
    kinds = {"unguided": RunConfig(input=clip), "reference": RunConfig(input=clip, references=(str(still),)),
             "hints": RunConfig(input=clip, hints=str(hints))}
    for name, cfg in kinds.items():
        col = Colorizer(create_model(), "cpu", batch, size)
        attach_guide(col, load_guidance(cfg), clip, Fraction(24000, 1001), 1000, [])
        geo = col.geometry((size, size))
        run = (lambda c=col: c.predict(x)) if col.guide is None else (
            lambda c=col, g=geo: c.predict_guided(x, list(range(batch)), g))
        run()
        times = []
        for _ in range(7):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        res[f"model_{name}_ms"] = 1000 * min(times) / batch
    best = dict.fromkeys(kinds, float("inf"))
    for _ in range(2):
        for name, cfg in kinds.items():
            t = time.perf_counter()
            filmcolor.colorize(clip, tdp / f"g-{name}.mp4", quiet=True, overwrite=True,
                               references=cfg.references, hints=cfg.hints)
            best[name] = min(best[name], time.perf_counter() - t)
    for name in kinds:
        res[f"end_to_end_{name}_s"] = best[name]
    res["reference_cost"] = best["reference"] / best["unguided"] - 1
    res["hints_cost"] = best["hints"] / best["unguided"] - 1
    return res


def single_pass(cfg, src: Path, out: Path, info) -> int:
    """The baseline of the jobs' overhead: the whole film in one pass, with no planning pass,
    chunks or join (the engine's stages, encode and publish); returns the frames written."""
    from filmcolor.io.decode import decode
    from filmcolor.jobs.chunk import write_video
    from filmcolor.jobs.finish import publish_video
    from filmcolor.pipeline import build_colorizer, video_stages

    colorizer = build_colorizer(cfg)
    video = out.with_name(out.stem + ".video.mp4")
    try:
        written = write_video(video_stages(decode(src), cfg, colorizer), video, info, cfg)
        publish_video(video, src, out, info, written.frames, written.duration)
    finally:
        video.unlink(missing_ok=True)
    return written.frames


def jobs_figures(tdp: Path, seconds: float, model: str | None, chunk_frames: int) -> dict:
    """Previews (start vs near the end, and against colouring the same frames in a single pass)
    and the chunked job against a single pass (#4)."""
    from filmcolor.config import RunConfig
    from filmcolor.io.probe import probe
    from filmcolor.jobs import JobSpec, run_job
    from filmcolor.preview import PreviewRequest, preview

    src = tdp / "jobs.mp4"
    make_clip(src, seconds, seed=2)
    cfg = RunConfig(input=src, model=model, quiet=True, overwrite=True, chunk_frames=chunk_frames)

    def timed_preview(start: float, name: str) -> tuple[float, int]:
        req = PreviewRequest(start=f"{start:.3f}", end=f"{start + 5:.3f}", output=str(tdp / name))
        t = time.perf_counter()
        summary = preview(cfg, req)
        return time.perf_counter() - t, len(summary.range)

    timed_preview(0.0, "warm.mp4")  # imports, model load and first-call costs out of the figures
    first, first_frames = timed_preview(0.0, "pv_start.mp4")
    last, last_frames = timed_preview(seconds - 6.0, "pv_end.mp4")
    info = probe(src)
    t = time.perf_counter()
    single_frames = single_pass(cfg, src, tdp / "single.mp4", info)
    single = time.perf_counter() - t
    per_frame = single / single_frames  # the single pass's seconds per frame, all stages
    t = time.perf_counter()
    run_job(JobSpec.create(cfg, src, tdp / "job.mp4", info))
    job = time.perf_counter() - t
    return {
        "preview_start_s": first, "preview_end_s": last, "preview_ratio": last / first,
        "preview_frames": first_frames, "single_pass_s_per_frame": per_frame,
        "preview_vs_colouring": first / (first_frames * per_frame),
        "preview_end_vs_colouring": last / (last_frames * per_frame),
        "single_pass_s": single, "job_s": job, "job_overhead": job / single,
    }


def _ray_cli(*args: str) -> None:
    ray = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray), *args], check=True, capture_output=True, text=True, timeout=120)


def ray_figures(tdp: Path, seconds: float, model: str | None, chunk_frames: int,
                workers: int = 2) -> dict:
    """A plain run against ``--ray`` on a local cluster with 1..``workers`` worker nodes (#16)."""
    import socket

    # Ray >= 2.59 starts local clusters with token authentication: the nodes `ray start` makes
    # and this driver must agree on the mode (the token is in ~/.ray/auth_token); Ray reads the
    # mode when it is imported.
    os.environ["RAY_AUTH_MODE"] = "token"

    import ray

    from filmcolor.api import run
    from filmcolor.config import RunConfig
    from filmcolor.jobs.cluster import RayExecutor

    src = tdp / "ray.mp4"
    make_clip(src, seconds, seed=3)
    cfg = RunConfig(input=src, model=model, quiet=True, overwrite=True, chunk_frames=chunk_frames)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    res: dict = {"clip_s": seconds, "chunk_frames": chunk_frames}
    warm = tdp / "ray_warm.mp4"
    make_clip(warm, 2.0, seed=4)
    warm_cfg = RunConfig(input=warm, model=model, quiet=True, overwrite=True,
                         chunk_frames=chunk_frames)
    run(warm_cfg)  # imports, model load, first-call costs out of the figures
    t = time.perf_counter()
    plain = run(cfg)
    res["plain_s"] = time.perf_counter() - t
    res["frames"] = plain.frames
    res["chunks"] = -(-plain.frames // chunk_frames)
    # The head runs no chunks (0 CPUs); each worker node offers one CPU, so one chunk at a time.
    _ray_cli("start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
             "--disable-usage-stats")
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)

        @ray.remote(num_cpus=1)
        def empty() -> None:
            return None

        for n in range(1, workers + 1):
            _ray_cli("start", f"--address={address}", "--num-cpus=1", "--disable-usage-stats")
            while ray.cluster_resources().get("CPU", 0) < n:
                time.sleep(0.5)
            ray.get([empty.remote() for _ in range(2 * n)])  # workers started, code shipped
            # Warm: each worker process imports torch and loads the model once.
            run(warm_cfg, executor=RayExecutor(address))
            t = time.perf_counter()
            run(cfg, executor=RayExecutor(address))
            res[f"ray_{n}_s"] = time.perf_counter() - t
            res[f"ray_{n}_speed"] = res["plain_s"] / res[f"ray_{n}_s"]
        t = time.perf_counter()
        for _ in range(20):
            ray.get(empty.remote())
        res["empty_task_ms"] = (time.perf_counter() - t) / 20 * 1000
        res["overhead_per_chunk_s"] = (res["ray_1_s"] - res["plain_s"]) / res["chunks"]
    finally:
        ray.shutdown()
        _ray_cli("stop", "--force")
    return res


def _ray_report(tdp: Path, args: argparse.Namespace, res: dict) -> int:
    rf = res["ray"] = ray_figures(tdp, args.jobs_seconds, args.model, args.chunk_frames)
    fps = {k: rf["frames"] / rf[f"{k}_s"] for k in ("plain", "ray_1", "ray_2")}
    print(f"Ray (#16): {rf['clip_s']:.0f} s clip, {rf['frames']} frames, {rf['chunks']} chunks of "
          f"{rf['chunk_frames']}")
    print(f"plain {rf['plain_s']:.1f} s ({fps['plain']:.2f} fps); --ray, 1 worker "
          f"{rf['ray_1_s']:.1f} s ({fps['ray_1']:.2f} fps, speed {rf['ray_1_speed']:.2f}x, "
          f"target >= 0.85x); 2 workers {rf['ray_2_s']:.1f} s ({fps['ray_2']:.2f} fps, "
          f"{rf['ray_2_speed']:.2f}x)")
    print(f"scheduling: {rf['overhead_per_chunk_s']:.2f} s per chunk over the plain run "
          f"(1 worker), an empty task's round trip {rf['empty_task_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


RSS_CHILD = """
import resource, sys, filmcolor
filmcolor.colorize(sys.argv[1], sys.argv[2], overwrite=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(src: Path, dst: Path) -> float:
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(src), str(dst)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024.0


def large_photo_figures(tdp: Path) -> dict:
    """Peak memory of colouring a grey 12000x9000 scan against a 1200x900 one (#17)."""
    import cv2

    out: dict = {}
    for name, (w, h) in (("small", (1200, 900)), ("large", (12000, 9000))):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        img = ((np.sin(x * 62.8 / w) * np.cos(y * 47.1 / h) * 0.4 + 0.5) * 255).astype(np.uint8)
        del x, y
        src = tdp / f"{name}.png"
        cv2.imwrite(str(src), img)
        del img
        t = time.perf_counter()
        out[f"{name}_rss_mb"] = peak_rss_mb(src, tdp / f"{name}.colour.png")
        out[f"{name}_s"] = time.perf_counter() - t
        out[f"{name}_mpx"] = w * h / 1e6
        src.unlink()
    extra = out["large_rss_mb"] - out["small_rss_mb"]
    out["bytes_per_pixel"] = extra * 2**20 / ((out["large_mpx"] - out["small_mpx"]) * 1e6)
    print(f"still 1200x900: peak RSS {out['small_rss_mb']:.0f} MB in {out['small_s']:.1f} s; "
          f"12000x9000 (108 Mpx): {out['large_rss_mb']:.0f} MB in {out['large_s']:.1f} s "
          f"(about {out['bytes_per_pixel']:.0f} bytes per extra pixel; before #17: 12.4 GB)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 s clip only, no 120 s RSS run")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--long-seconds", type=float, default=120.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--jobs", action="store_true", help="also time previews and chunked jobs")
    ap.add_argument("--jobs-seconds", type=float, default=120.0, help="clip length for --jobs")
    ap.add_argument("--chunk-frames", type=int, default=2000, help="chunk size for --jobs")
    ap.add_argument("--model", help="model for --jobs (default: the default model)")
    ap.add_argument("--jobs-only", action="store_true", help="only the --jobs figures")
    ap.add_argument("--ray", action="store_true",
                    help="only the Ray figures (#16): plain vs --ray with 1 and 2 local workers")
    ap.add_argument("--guided-only", action="store_true",
                    help="only the guidance figures (#12: reference and hints against unguided)")
    ap.add_argument("--large-photo", action="store_true",
                    help="only the large-still figures (#17): peak memory of a 12000x9000 scan")
    args = ap.parse_args(argv)
    from filmcolor.config import RunConfig

    res: dict = {}
    with tempfile.TemporaryDirectory() as td:
        tdp = Path(td)
        if args.jobs_only:
            args.jobs = True
            return _jobs_report(tdp, args, res)
        if args.ray:
            return _ray_report(tdp, args, res)
        if args.large_photo:
            res["large_photo"] = large_photo_figures(tdp)
            if args.json:
                args.json.write_text(json.dumps(res, indent=2))
            return 0
        if args.guided_only:
            clip = tdp / "clip.mp4"
            make_clip(clip, 8.0 if args.quick else args.seconds)
            g = res["guidance"] = guidance_figures(clip, tdp)
            print(f"guidance (#12), model stage per frame (render 256, batch 8, fastest of 7): unguided "
                  f"{g['model_unguided_ms']:.1f} ms, reference {g['model_reference_ms']:.1f} ms, "
                  f"hints {g['model_hints_ms']:.1f} ms")
            print(f"guidance end to end: unguided {g['end_to_end_unguided_s']:.1f} s, reference "
                  f"{g['end_to_end_reference_s']:.1f} s ({100 * g['reference_cost']:+.0f}%), hints "
                  f"{g['end_to_end_hints_s']:.1f} s ({100 * g['hints_cost']:+.0f}%) (target <= +30%)")
            if args.json:
                args.json.write_text(json.dumps(res, indent=2))
            return 0
        secs = 8.0 if args.quick else args.seconds
        clip = tdp / "clip.mp4"
        make_clip(clip, secs)
        cfg = RunConfig(input=clip, quiet=True)
        res["model_ms_per_frame_256_b8"] = model_ms_per_frame()
        res["ffmpeg_s"] = ffmpeg_transcode(clip, tdp / "ff.mp4", cfg.preset, cfg.crf)
        import filmcolor

        t = time.perf_counter()
        summary = filmcolor.colorize(clip, tdp / "cli.mp4", quiet=True)  # what the CLI runs
        res["end_to_end_s"] = time.perf_counter() - t
        res["frames"] = summary.frames
        res["end_to_end_fps"] = summary.frames / res["end_to_end_s"]
        res["ffmpeg_fps"] = summary.frames / res["ffmpeg_s"]
        res["ratio_vs_ffmpeg"] = res["end_to_end_fps"] / res["ffmpeg_fps"]
        ours = staged_run(clip, tdp / "ours.mp4", cfg)
        res["single_pass"] = ours
        print(f"clip: 640x480, {secs:.0f} s, {summary.frames} frames at 24000/1001 fps, preset {cfg.preset}, crf {cfg.crf}")
        print(f"model alone (render 256, batch 8, fastest of 7 batches): {res['model_ms_per_frame_256_b8']:.1f} ms/frame (target <= 40)")
        print(f"ffmpeg -c:v libx264: {res['ffmpeg_fps']:.1f} fps")
        print(f"filmcolor end to end (as the CLI runs it, model load included): {res['end_to_end_fps']:.2f} fps"
              f"  -> ratio {res['ratio_vs_ffmpeg']:.3f}x (target >= 0.10x)")
        tot = sum(ours["stages_s"].values())
        print(f"single pass, per stage ({ours['fps']:.2f} fps): "
              + ", ".join(f"{k} {v:.1f} s ({100 * v / tot:.0f}%)" for k, v in ours["stages_s"].items()))
        if not args.quick:
            cf = colour_figures(clip, tdp)
            res["colour"] = cf
            print(f"colour (#13): end to end with the default colour settings {cf['end_to_end_default_s']:.1f} s "
                  f"vs 0.1's (--temporal window --upsample bilinear) {cf['end_to_end_v01_s']:.1f} s "
                  f"-> speed {cf['speed_vs_v01']:.2f}x (target >= 0.9x)")
            print(f"chroma merge of a 1920x1080 frame: bilateral {cf['merge_1080p_bilateral_ms']:.1f} ms, "
                  f"bilinear {cf['merge_1080p_bilinear_ms']:.1f} ms")
            print(f"temporal stages per frame: window {cf['temporal_window_480p_ms']:.2f} ms, "
                  f"window + flow hold {cf['temporal_flow_480p_ms']:.2f} ms (640x480); "
                  f"{cf['temporal_window_1080p_ms']:.2f} / {cf['temporal_flow_1080p_ms']:.2f} ms (1920x1080)")
            long_clip = tdp / "long.mp4"
            make_clip(long_clip, args.long_seconds, seed=1)
            r20 = peak_rss_mb(clip, tdp / "r20.mp4")
            r120 = peak_rss_mb(long_clip, tdp / "r120.mp4")
            res.update(rss_20s_mb=r20, rss_120s_mb=r120, rss_ratio=r120 / r20)
            print(f"peak RSS: {secs:.0f} s clip {r20:.0f} MB, {args.long_seconds:.0f} s clip {r120:.0f} MB -> ratio {r120 / r20:.3f} (target <= 1.15)")
        if args.jobs:
            return _jobs_report(tdp, args, res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


def _jobs_report(tdp: Path, args: argparse.Namespace, res: dict) -> int:
    jf = jobs_figures(tdp, args.jobs_seconds, args.model, args.chunk_frames)
    res["jobs"] = jf
    print(f"5 s preview on a {args.jobs_seconds:.0f} s clip: start {jf['preview_start_s']:.2f} s, "
          f"near the end {jf['preview_end_s']:.2f} s -> ratio {jf['preview_ratio']:.2f}x (target <= 1.5x)")
    n, spf = jf["preview_frames"], jf["single_pass_s_per_frame"]
    print(f"5 s preview ({n} frames) {jf['preview_start_s']:.1f} s vs colouring them in the single pass "
          f"({n} x {spf:.3f} s = {n * spf:.1f} s) -> ratio {jf['preview_vs_colouring']:.2f}x "
          f"(near the end {jf['preview_end_vs_colouring']:.2f}x; target: about the time it takes "
          "to colour them)")
    print(f"chunked job {jf['job_s']:.1f} s vs single pass {jf['single_pass_s']:.1f} s "
          f"-> overhead {jf['job_overhead']:.3f}x (target <= 1.10x)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
