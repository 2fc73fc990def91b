"""``filmcolor.colorize`` and ``filmcolor run``: one input (film, image or folder) to its output.

A thin front over the library: it checks the input and the output before any work, then hands
a film to the job engine (:mod:`filmcolor.jobs`) and stills to the model stage
(:func:`filmcolor.pipeline.colour_image`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from filmcolor.config import RunConfig, default_output
from filmcolor.errors import OutputError, SourceOpenError
from filmcolor.io.output import (
    check_image_output,
    check_output,
    choose_video_output,
    write_image,
)
from filmcolor.jobs import events as ev
from filmcolor.pipeline import attach_guide, build_colorizer, colour_image, load_guidance
from filmcolor.summary import RunSummary

logger = logging.getLogger("filmcolor")


def colorize_images(
    cfg: RunConfig,
    pairs: list[tuple[Path, Path]],
    colorizer=None,
    on_image=None,
) -> RunSummary:
    """Colour still images (one or a folder's worth); each output written atomically.

    For a folder (more than one pair), an image that cannot be read is skipped with a warning
    and listed in :attr:`RunSummary.skipped`, so one damaged scan does not stop a folder of
    hundreds; a single image that cannot be read raises.

    Args:
        cfg: the run's settings.
        pairs: ``(source, destination)`` for each image.
        colorizer: the model stage with guidance attached (built here when ``None``).
        on_image: called with ``(images done, images in all)`` after each image.

    Raises:
        SourceOpenError: a single image cannot be read.
        OutputError: an output image cannot be written.
    """
    from filmcolor.io.decode import decode_image

    if colorizer is None:
        colorizer = build_colorizer(cfg, footage=False)
        attach_guide(colorizer, load_guidance(cfg))
    t0 = time.perf_counter()
    skipped: list[Path] = []
    for n, (src, dst) in enumerate(pairs, 1):
        try:
            image = decode_image(src)
        except SourceOpenError as exc:
            if len(pairs) == 1:
                raise
            logger.warning("skipped %s: %s", src.name, exc)
            skipped.append(src)
        else:
            write_image(dst, colour_image(colorizer, image, cfg.upsample))
        if on_image is not None:
            on_image(n, len(pairs))
    out = pairs[0][1] if len(pairs) == 1 else pairs[0][1].parent
    return RunSummary(out, len(pairs) - len(skipped), time.perf_counter() - t0, tuple(skipped))


def _folder_pairs(cfg: RunConfig, src: Path) -> tuple[Path, list[tuple[Path, Path]]]:
    from filmcolor.io.probe import list_images

    images = list_images(src)
    if not images:
        raise SourceOpenError(f"no images found in folder {src}")
    out_dir = Path(cfg.output) if cfg.output else default_output(src, "folder")
    if out_dir.resolve() == src.resolve():
        raise OutputError(f"the output folder is the input folder {src}: the originals would be "
                          "replaced (choose another -o)")
    check_output(out_dir, cfg.overwrite, is_dir=True)
    pairs = [(p, out_dir / p.name) for p in images]
    existing = [d for _, d in pairs if d.exists()]
    if existing and not cfg.overwrite:
        raise OutputError(
            f"{len(existing)} output image(s) exist in {out_dir}, e.g. {existing[0].name} "
            "(use --overwrite to replace them)"
        )
    return out_dir, pairs


def run(cfg: RunConfig, on_event: ev.EventSink = ev.ignore, executor=None) -> RunSummary:
    """Colour ``cfg.input`` (video, image or folder of images) into ``cfg.output``.

    Args:
        cfg: the run's settings.
        on_event: called with the job's events (:mod:`filmcolor.jobs.events`) for a film, and
            with :class:`~filmcolor.jobs.events.FramesDone` per image for a folder.
        executor: runs a film's chunks (when ``None``: :func:`executor_for` ``cfg``).

    Raises:
        FilmcolorError: any input, model, output or encoding problem (one-line message).
    """
    from filmcolor.io.probe import probe

    src = Path(cfg.input)
    if src.is_dir():
        out_dir, pairs = _folder_pairs(cfg, src)
        spec = load_guidance(cfg)
        colorizer = build_colorizer(cfg, footage=False)  # a bad model leaves no empty folder
        attach_guide(colorizer, spec)  # every image is a one-frame "film" of its own
        try:
            out_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
        job = str(out_dir)
        n = len(pairs)
        on_event(ev.Planned(job, n, chunks=1, shots=n, frames_todo=n, chunks_todo=1, unit="image"))
        return colorize_images(cfg, pairs, colorizer,
                               lambda n, total: on_event(ev.FramesDone(job, n - 1, 1, n, total)))
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
    from filmcolor.jobs import JobSpec, run_job

    spec = JobSpec.create(cfg, src, out, info)
    return run_job(spec, executor=executor or executor_for(cfg), on_event=on_event)


def executor_for(cfg: RunConfig):  # -> Executor | None
    """The executor ``cfg`` asks for: a :class:`~filmcolor.jobs.cluster.RayExecutor` with
    ``--ray``, else ``None`` (the engine's local one)."""
    if not cfg.ray:
        return None
    from filmcolor.jobs.cluster import RayExecutor, init_ray

    init_ray(cfg.ray)  # a wrong address fails now, not after the planning pass
    return RayExecutor(cfg.ray, cfg.ray_storage)
