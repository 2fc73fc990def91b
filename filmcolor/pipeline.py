"""The one place the stages are wired together.

    frames = decode(src)                     # bounded background thread
    frames = scenecut.annotate(frames)       # marks frame.scene_start
    frames = colorizer(frames)               # batched model -> frame.ab
    frames = temporal(frames)                # a/b over time (window + flow hold), never across a cut
    frames = VideoMerger(upsample)(frames)   # Cb/Cr for the source's own luma plane (edge-aware)
    encode(frames, tmp_video, info)          # the sink pulls everything through
    run_remux(...)                           # original audio/subtitles copied

Outputs are written under a temporary name beside the final path and renamed only once complete
and verified, so an error or Ctrl-C never leaves a half-written file at the output path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from filmcolor._progress import Progress, logging_redirect
from filmcolor.config import RunConfig, default_output
from filmcolor.errors import OutputError, SourceOpenError
from filmcolor.frames import Frame

logger = logging.getLogger("filmcolor")


@dataclass
class RunSummary:
    """What a run did (printed by the CLI as one line)."""

    output: Path
    frames: int
    seconds: float
    skipped: tuple[Path, ...] = field(default=())
    """Images of a folder that could not be read and were left out (the rest were coloured)."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.2f} fps) -> {self.output}"


def build_colorizer(cfg: RunConfig, footage: bool = True):  # -> Colorizer (lazy torch import)
    """Model + device + batching from the run settings.

    Args:
        cfg: the run settings.
        footage: colouring a film (its default vividness; see :class:`Colorizer`), not stills.
    """
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models import create_model
    from filmcolor.models.registry import DEFAULT_MODEL

    model = create_model(cfg.model or DEFAULT_MODEL, weights=cfg.weights)
    return Colorizer(model, cfg.device, cfg.batch_size, cfg.render_size, vividness=cfg.vividness,
                     footage=footage)


def load_guidance(cfg: RunConfig):  # -> GuidanceSpec
    """The run's references and hints, parsed and checked (before anything is coloured).

    Raises:
        ConfigError: a missing or unreadable image, or a bad hints file (one line).
    """
    from filmcolor.guide.spec import load_guidance as _load

    return _load(cfg.references, cfg.hints)


def attach_guide(colorizer, spec, src: Path | None = None, rate=None, total: int | None = None,
                 cuts: list[int] | None = None) -> None:
    """Resolve ``spec`` for one source and hand it to the model stage (nothing when empty).

    Raises:
        ConfigError: the model takes no guidance, or a position lies outside the source.
    """
    from filmcolor.guide.guider import prepare_guide

    guide = prepare_guide(spec, colorizer, src, rate, total)
    if guide is not None and cuts is not None:
        guide.set_cuts(cuts)
    colorizer.set_guide(guide)


def temp_path(final: Path, tag: str = "tmp") -> Path:
    """A hidden sibling of ``final`` with the same suffix (so muxers pick the same container)."""
    return final.with_name(f".{final.stem}.{tag}-{os.getpid()}{final.suffix}")


def check_output(out: Path, overwrite: bool, is_dir: bool = False) -> None:
    """Refuse to overwrite, and fail early on a destination that cannot be written.

    Writability is tested by creating (and removing) a scratch file in the folder: permission
    bits say nothing about read-only mounts or pseudo file systems, and hours of colouring must
    not end in a failed rename.

    Raises:
        OutputError: exists without ``overwrite``, or its folder is missing/unwritable.
    """
    if out.exists() and not overwrite and not is_dir:
        raise OutputError(f"output exists: {out} (use --overwrite to replace it)")
    if is_dir and out.exists() and not out.is_dir():
        raise OutputError(f"output folder is a file: {out}")
    parent = out if is_dir and out.exists() else out.parent
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".filmcolor-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to {parent}: {exc.strerror or exc}") from None


def check_image_output(out: Path) -> None:
    """Refuse an image output whose suffix OpenCV cannot write (before any colouring).

    Raises:
        OutputError: not an image suffix, or no writer for it in this OpenCV build.
    """
    from filmcolor.io.containers import IMAGE_SUFFIXES

    if out.suffix.lower() not in IMAGE_SUFFIXES or not cv2.haveImageWriter(str(out)):
        known = ", ".join(sorted(IMAGE_SUFFIXES))
        raise OutputError(f"cannot write image '{out.name}': unknown image format (use {known})")


def choose_video_output(src: Path, info, output: str | None) -> Path:
    """The output path of a video run, checked against what the source carries.

    The default is ``<stem>.colour.mp4``, or ``.mkv`` when MP4 could not take every audio and
    subtitle stream of the source as it is (bitmap subtitles, some PCM audio on older FFmpeg, or
    text subtitles MP4 would convert): nothing the film had is lost by default. An explicit
    MP4/MOV output that cannot hold a stream is refused now, not after hours of colouring.

    Raises:
        OutputError: the suffix names no video container filmcolor writes, or the container
            cannot hold one of the source's streams.
    """
    from filmcolor.errors import RemuxError
    from filmcolor.io.remux import ffmpeg_exe, unfit_streams

    out = Path(output) if output else default_output(src, info.kind)
    try:
        unfit = unfit_streams(info, out, ffmpeg_exe())
    except RemuxError as exc:
        raise OutputError(str(exc)) from None
    if not output and unfit:
        mkv = out.with_suffix(".mkv")
        logger.info("writing %s: MP4 cannot keep %s as it is",
                    mkv.name, ", ".join(unfit.refused + unfit.converted))
        return mkv
    if unfit.refused:
        raise OutputError(
            f"'{out.name}' cannot hold the source's {', '.join(unfit.refused)}: "
            f"use an .mkv output (-o {out.with_suffix('.mkv').name})"
        )
    return out


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``final`` on success, delete it on any failure."""
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def mark_cuts(frames: Iterator[Frame], cuts: Collection[int]) -> Iterator[Frame]:
    """Stage: set ``frame.scene_start`` from a cut list made by a planning pass."""
    starts = frozenset(cuts)
    for fr in frames:
        fr.scene_start = fr.index in starts
        yield fr


def _from_index(frames: Iterator[Frame], first: int) -> Iterator[Frame]:
    for fr in frames:
        if fr.index >= first:
            yield fr


def video_stages(
    frames: Iterator[Frame],
    cfg: RunConfig,
    colorizer,
    cuts: Collection[int] | None = None,
    colour_from: int = 0,
) -> Iterator[Frame]:
    """decode output -> scene cuts -> model -> temporal -> merge (shared by jobs and previews).

    Args:
        frames: decoded frames (a whole film, a chunk with its context, or a preview range).
        cfg: run settings.
        colorizer: the model stage (:func:`build_colorizer`).
        cuts: shot starts from a planning pass. Chunks must use these rather than run the
            detector again: its history at a chunk's first frame would differ from that of an
            uninterrupted run. ``None`` runs the detector on ``frames`` (if ``cfg.scene_detect``).
        colour_from: frames before this index only go through the scene-cut stage (a preview's
            look-back warms the detector up; colouring it would be wasted work).
    """
    from filmcolor.infer.merge import VideoMerger
    from filmcolor.temporal.chain import build_temporal
    from filmcolor.temporal.scenecut import SceneCutDetector

    if cuts is not None:
        frames = mark_cuts(frames, cuts)
    elif cfg.scene_detect:
        frames = SceneCutDetector().annotate(frames)
    if colour_from > 0:
        frames = _from_index(frames, colour_from)
    frames = colorizer(frames)
    frames = build_temporal(cfg.smoothing, cfg.temporal)(frames)
    return VideoMerger(cfg.upsample)(frames)


def colorize_video(cfg: RunConfig, src: Path, out: Path, info) -> RunSummary:
    """Colour a whole video file into ``out`` (audio and subtitles copied)."""
    from filmcolor.io.decode import decode
    from filmcolor.io.encode import encode
    from filmcolor.io.remux import build_remux_args, ffmpeg_exe, run_remux, verify_output

    colorizer = build_colorizer(cfg)
    t0 = time.perf_counter()
    progress = Progress(info.frame_count, enabled=not cfg.quiet)
    # MP4 keeps the source time base exactly (MKV would round timestamps to 1 ms).
    video_tmp = temp_path(out, "video").with_suffix(".mp4")
    try:
        with logging_redirect(not cfg.quiet):
            frames = progress(video_stages(decode(src), cfg, colorizer))
            stats = encode(frames, video_tmp, info, codec=cfg.codec, crf=cfg.crf, preset=cfg.preset)
        progress.close()
        with atomic_output(out) as tmp:
            run_remux(build_remux_args(video_tmp, src, tmp, info, ffmpeg=ffmpeg_exe()))
            # Verify against what was encoded: a container's duration may include longer audio.
            verify_output(tmp, stats.frames, stats.duration)
    finally:
        progress.close()
        with contextlib.suppress(FileNotFoundError):
            video_tmp.unlink()
    return RunSummary(out, progress.count, time.perf_counter() - t0)


def _write_image(path: Path, rgb) -> None:
    ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"cannot write image {path}")


def colorize_images(cfg: RunConfig, pairs: list[tuple[Path, Path]], colorizer=None) -> RunSummary:
    """Colour still images (one or a folder's worth); each output written atomically.

    For a folder (more than one pair), an image that cannot be read is skipped with a warning
    and listed in :attr:`RunSummary.skipped`, so one damaged scan does not stop a folder of
    hundreds; a single image that cannot be read raises.

    Raises:
        SourceOpenError: a single image cannot be read.
        OutputError: an output image cannot be written.
    """
    from filmcolor.infer.merge import merge_rgb
    from filmcolor.io.decode import decode_image

    if colorizer is None:
        colorizer = build_colorizer(cfg, footage=False)
        attach_guide(colorizer, load_guidance(cfg))
    t0 = time.perf_counter()
    progress = Progress(len(pairs), enabled=not cfg.quiet and len(pairs) > 1, desc="images")
    skipped: list[Path] = []
    # Stills differ in size, so each goes through the model on its own.
    with logging_redirect(not cfg.quiet):
        for src, dst in progress(iter(pairs)):
            try:
                image = decode_image(src)
            except SourceOpenError as exc:
                if len(pairs) == 1:
                    raise
                logger.warning("skipped %s: %s", src.name, exc)
                skipped.append(src)
                continue
            frame = colorizer.colorize_batch([image])[0]
            with atomic_output(dst) as tmp:
                _write_image(tmp, merge_rgb(frame, cfg.upsample))
    progress.close()
    out = pairs[0][1] if len(pairs) == 1 else pairs[0][1].parent
    return RunSummary(out, len(pairs) - len(skipped), time.perf_counter() - t0, tuple(skipped))


def run(cfg: RunConfig) -> RunSummary:
    """Colour ``cfg.input`` (video, image or folder of images) into ``cfg.output``.

    Raises:
        FilmcolorError: any input, model, output or encoding problem (one-line message).
    """
    from filmcolor.io.probe import list_images, probe

    src = Path(cfg.input)
    if src.is_dir():
        images = list_images(src)
        if not images:
            raise SourceOpenError(f"no images found in folder {src}")
        out_dir = Path(cfg.output) if cfg.output else default_output(src, "folder")
        check_output(out_dir, cfg.overwrite, is_dir=True)
        pairs = [(p, out_dir / p.name) for p in images]
        existing = [d for _, d in pairs if d.exists()]
        if existing and not cfg.overwrite:
            raise OutputError(
                f"{len(existing)} output image(s) exist in {out_dir}, e.g. {existing[0].name} "
                "(use --overwrite to replace them)"
            )
        spec = load_guidance(cfg)
        colorizer = build_colorizer(cfg, footage=False)  # a bad model leaves no empty folder
        attach_guide(colorizer, spec)  # every image is a one-frame "film" of its own
        try:
            out_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
        return colorize_images(cfg, pairs, colorizer)
    info = probe(src)
    if info.kind == "image":
        out = Path(cfg.output) if cfg.output else default_output(src, info.kind)
        check_image_output(out)
    else:
        out = choose_video_output(src, info, cfg.output)
    if out.resolve() == src.resolve():
        raise OutputError(f"output would overwrite the input {src}")
    check_output(out, cfg.overwrite)
    load_guidance(cfg)  # bad guidance is refused before any work
    if info.kind == "image":
        return colorize_images(cfg, [(src, out)])
    # Every film run is a resumable job (#4); colorize_video stays as the single-pass reference
    # (the benchmark measures the jobs' overhead against it).
    from filmcolor.jobs.chunked import run_job

    return run_job(cfg, src, out, info)
