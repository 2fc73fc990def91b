"""Command line: parse options into a :class:`RunConfig` and hand it to the library. No logic here.

``filmcolor INPUT`` is shorthand for ``filmcolor run INPUT``. Heavy modules (torch, av) are
imported inside the commands so ``--help`` starts instantly.
"""

from __future__ import annotations

import click

from filmcolor import __version__
from filmcolor.config import TEMPORAL_METHODS, UPSAMPLE_METHODS

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a sub-command, goes to ``run``."""

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The group's own options (--debug) may come anywhere; everything else belongs to the
        # sub-command, which is `run` unless the first positional word names another one.
        group_opts = [a for a in args if a == "--debug"]
        rest = [a for a in args if a != "--debug"]
        first = next((a for a in rest if not a.startswith("-")), None)
        wants_help = not rest or rest[0] in ("-h", "--help", "--version")
        if not wants_help and first not in self.commands:
            return super().parse_args(ctx, [*group_opts, self.default_command, *rest])
        return super().parse_args(ctx, [*group_opts, *rest])


@click.group(cls=DefaultGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="filmcolor")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Colourise black-and-white films, photos and folders of photos.

    \b
      filmcolor movie.mp4                 -> movie.colour.mp4 (with the original sound)
      filmcolor photo.jpg -o out.png
      filmcolor models                    list the colourisation models
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@main.command("run", context_settings=CONTEXT_SETTINGS)
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str),
              help="Output file (folder for a folder input). Default: <stem>.colour.<ext> beside the input.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--model", help="Model name (see `filmcolor models`). Default: filmcolor-lite0.")
@click.option("--weights", type=click.Path(path_type=str), help="Weights file for the model.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="Frames per forward pass (halved automatically if the GPU runs out of memory).")
@click.option("--render-size", type=click.IntRange(32, 2048),
              help="Short side (px) the model sees; chroma only, the luminance stays full-res. "
                   "Default: the model's own (256 for filmcolor-lite0).")
@click.option("--vividness", type=click.FloatRange(0.0, 4.0),
              help="Colour strength: 1 = the colours as the model predicts them; above 1 more "
                   "vivid (boosted only where the model is sure of the hue); below 1 paler. "
                   "Default: the model's own.")
@click.option("--smoothing", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Temporal colour smoothing strength (never crosses a scene cut).")
@click.option("--no-smoothing", is_flag=True, help="Disable temporal smoothing (same as --smoothing 0).")
@click.option("--temporal", type=click.Choice(TEMPORAL_METHODS), default=TEMPORAL_METHODS[0],
              show_default=True,
              help="flow: the window plus a colour hold that follows the motion (steady colour in "
                   "still regions); window: the 9-frame window alone.")
@click.option("--upsample", type=click.Choice(UPSAMPLE_METHODS), default=UPSAMPLE_METHODS[0],
              show_default=True,
              help="How the model's low-resolution colour is brought to full size: bilateral "
                   "stops it at the film's edges; bilinear is plain interpolation.")
@click.option("--no-scene-detect", is_flag=True, help="Do not detect scene cuts.")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder (FFmpeg name).")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
              help="Quality for x264/x265 (lower = better, bigger).")
@click.option("--preset", default="medium", show_default=True, help="Encoder speed preset.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--job-dir", type=click.Path(path_type=str),
              help="Job directory of a video run (resumable). Default: <output>.filmcolor-job "
                   "beside the output.")
@click.option("--chunk-frames", type=click.IntRange(1), default=2000, show_default=True,
              help="Most frames per chunk of a job (a kill loses at most one chunk).")
@click.option("--keep-chunks", is_flag=True,
              help="Keep the job directory and its chunk files after success.")
@click.option("--restart", is_flag=True,
              help="Start the job over if its directory holds one with other settings.")
@click.option("--reference", "references", multiple=True, metavar="IMAGE[@T]",
              help="A colour still to take colours from: for every shot, or with @T (00:12:03.5, "
                   "723.5, 17280f) for the shot holding T. Repeatable.")
@click.option("--hints", type=click.Path(path_type=str), metavar="FILE",
              help='Colour hints (JSON or TOML): {"hints": [{"x": 0.4, "y": 0.6, "color": '
                   '"#a03020", "frame": 1200}]}; see README, "Guiding the colours".')
def run_cmd(input: str, output: str | None, overwrite: bool, model: str | None,
            weights: str | None, device: str, batch_size: int, render_size: int | None,
            vividness: float | None, smoothing: float, no_smoothing: bool, temporal: str,
            upsample: str, no_scene_detect: bool, codec: str, crf: int, preset: str, quiet: bool,
            job_dir: str | None, chunk_frames: int, keep_chunks: bool, restart: bool,
            references: tuple[str, ...], hints: str | None) -> None:
    """Colourise INPUT: a video file, an image, or a folder of images.

    A video is coloured as a resumable job: if it is stopped (Ctrl-C, a crash, a reboot),
    running the same command again, or `filmcolor resume JOB_DIR`, redoes only what is missing.
    """
    from filmcolor.config import RunConfig
    from filmcolor.pipeline import run

    cfg = RunConfig(
        input=input, output=output, overwrite=overwrite, model=model, weights=weights,
        device=device, batch_size=batch_size, render_size=render_size, vividness=vividness,
        smoothing=0.0 if no_smoothing else smoothing, temporal=temporal, upsample=upsample,
        scene_detect=not no_scene_detect, codec=codec, crf=crf, preset=preset, quiet=quiet, job_dir=job_dir,
        chunk_frames=chunk_frames, keep_chunks=keep_chunks, restart=restart,
        references=references, hints=hints,
    )
    summary = run(cfg)
    if not quiet:
        click.echo(str(summary))
    if summary.skipped:
        from filmcolor.errors import SourceOpenError

        names = ", ".join(p.name for p in summary.skipped[:3])
        more = f" and {len(summary.skipped) - 3} more" if len(summary.skipped) > 3 else ""
        raise SourceOpenError(
            f"{len(summary.skipped)} image(s) could not be read and were skipped: {names}{more}"
        )


@main.command("models", context_settings=CONTEXT_SETTINGS)
@click.option("--all", "show_all", is_flag=True, help="Include test-only models.")
def models_cmd(show_all: bool) -> None:
    """List the colourisation models."""
    from filmcolor.models import list_models
    from filmcolor.models.registry import DEFAULT_MODEL

    for cfg in list_models(include_test=show_all):
        mark = "*" if cfg.name == DEFAULT_MODEL else " "
        click.echo(f"{mark} {cfg.name:<20} render {cfg.render_size:<4} {cfg.description}")


@main.group("weights", context_settings=CONTEXT_SETTINGS)
def weights_group() -> None:
    """Third-party weights (DeOldify, Zhang et al.): list them, fetch them."""


@weights_group.command("list")
def weights_list_cmd() -> None:
    """Show each third-party weights file, whether it is here, and where filmcolor looks."""
    from filmcolor.models.thirdparty import load_catalog, weights_status_lines

    for line in weights_status_lines(load_catalog()):
        click.echo(line)


@weights_group.command("fetch")
@click.argument("name")
@click.option("--dest", type=click.Path(path_type=str),
              help="Folder to save into. Default: $FILMCOLOR_HOME, else ~/.cache/filmcolor.")
@click.option("--url", help="Download from this mirror instead of the official URL.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def weights_fetch_cmd(name: str, dest: str | None, url: str | None, quiet: bool) -> None:
    """Download the weights of model NAME (resumable; verified by sha256 where published, else by size and structure)."""
    from filmcolor.models.thirdparty import fetch

    path = fetch(name, dest=dest, url=url, progress=not quiet)
    if not quiet:
        click.echo(f"{name}: {path}")


@main.command("resume", context_settings=CONTEXT_SETTINGS)
@click.argument("job_dir", type=click.Path(path_type=str))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def resume_cmd(job_dir: str, quiet: bool) -> None:
    """Finish the job in JOB_DIR with the settings it was started with."""
    from pathlib import Path

    from filmcolor.jobs.chunked import load_config
    from filmcolor.pipeline import run

    summary = run(load_config(Path(job_dir), quiet=quiet))
    if not quiet:
        click.echo(str(summary))


@main.command("status", context_settings=CONTEXT_SETTINGS)
@click.argument("job_dir", type=click.Path(path_type=str))
def status_cmd(job_dir: str) -> None:
    """Show the progress of the job in JOB_DIR (chunks, frames, estimated time left)."""
    from pathlib import Path

    from filmcolor.jobs.chunked import status_lines

    for line in status_lines(Path(job_dir)):
        click.echo(line)


def _number_list(cast: type, lo: float, hi: float, example: str):
    """A click callback parsing ``"a,b,c"`` into numbers of type ``cast`` in ``[lo, hi]``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> list:
        if not value:
            return []
        try:
            vals = [cast(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a list like {example}") from None
        if any(not lo <= v <= hi for v in vals):
            raise click.BadParameter(f"values must be in {lo:g}..{hi:g}")
        return vals

    return parse


_int_list = _number_list(int, 32, 2048, "192,256,320")
_float_list = _number_list(float, 0.0, 4.0, "1,1.5,2")


def _str_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@main.command("preview", context_settings=CONTEXT_SETTINGS)
@click.argument("input", type=click.Path(path_type=str))
@click.option("--start", help="Start: HH:MM:SS.fff, MM:SS, seconds, or a frame number like 17280f.")
@click.option("--end", help="End (exclusive), same forms as --start. Default: 5 s after --start.")
@click.option("--frames", help="Frame range START-END (end exclusive), instead of --start/--end.")
@click.option("-o", "--output", type=click.Path(path_type=str),
              help="Clip to write. Default: <stem>.preview-<A>-<B>.mp4 beside the input.")
@click.option("--side-by-side", is_flag=True, help="Original | colour in one frame.")
@click.option("--sheet", type=click.IntRange(0, 64), default=0,
              help="Also write a PNG contact sheet of N frames (next to the clip, .png).")
@click.option("--render-size", callback=_int_list,
              help="Render size, or a comma list to compare (e.g. 192,256,320: sheet only).")
@click.option("--model", callback=_str_list,
              help="Model name, or a comma list to compare (sheet only).")
@click.option("--vividness", callback=_float_list,
              help="Colour strength (see `filmcolor run --help`), or a comma list to compare "
                   "(e.g. 1,1.5,2: sheet only).")
@click.option("--weights", type=click.Path(path_type=str), help="Weights file for the model.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="Frames per forward pass (use the full run's value for identical frames).")
@click.option("--smoothing", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Temporal colour smoothing strength.")
@click.option("--temporal", type=click.Choice(TEMPORAL_METHODS), default=TEMPORAL_METHODS[0],
              show_default=True, help="Temporal method (see `filmcolor run --help`).")
@click.option("--upsample", type=click.Choice(UPSAMPLE_METHODS), default=UPSAMPLE_METHODS[0],
              show_default=True, help="Chroma upsampling (see `filmcolor run --help`).")
@click.option("--no-scene-detect", is_flag=True, help="Do not detect scene cuts.")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder.")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True)
@click.option("--preset", default="medium", show_default=True, help="Encoder speed preset.")
@click.option("--reference", "references", multiple=True, metavar="IMAGE[@T]",
              help="Reference still (see `filmcolor run --help`); repeatable. A comma list "
                   "(a.jpg,b.jpg) compares the alternatives in a sweep sheet.")
@click.option("--hints", "hints", multiple=True, type=click.Path(path_type=str), metavar="FILE",
              help="Colour hints file; give two or more to compare them in a sweep sheet.")
@click.option("--before-after", is_flag=True,
              help="With guidance: a sheet with the unguided colours above the guided ones.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def preview_cmd(input: str, start: str | None, end: str | None, frames: str | None,
                output: str | None, side_by_side: bool, sheet: int, render_size: list[int],
                model: list[str], vividness: list[float], weights: str | None, device: str,
                batch_size: int, smoothing: float, temporal: str, upsample: str,
                no_scene_detect: bool, codec: str, crf: int,
                preset: str, references: tuple[str, ...], hints: tuple[str, ...],
                before_after: bool, overwrite: bool, quiet: bool) -> None:
    """Colour a few seconds of INPUT, anywhere in the film, as the full run would colour them."""
    from filmcolor.config import RunConfig
    from filmcolor.preview import PreviewRequest, guidance_sweep, preview

    cfg = RunConfig(
        input=input, overwrite=overwrite, model=model[0] if len(model) == 1 else None,
        weights=weights, device=device, batch_size=batch_size,
        render_size=render_size[0] if len(render_size) == 1 else None,
        vividness=vividness[0] if len(vividness) == 1 else None, smoothing=smoothing,
        temporal=temporal, upsample=upsample, scene_detect=not no_scene_detect, codec=codec, crf=crf, preset=preset, quiet=quiet,
    )
    guidance = guidance_sweep(references, hints)
    if before_after:
        guidance = [((), None), *guidance]
    if len(guidance) == 1:
        cfg.references, cfg.hints = guidance[0]
        guidance = []
    req = PreviewRequest(
        start=start, end=end, frames=frames, output=output, side_by_side=side_by_side,
        sheet=sheet, render_sizes=render_size if len(render_size) > 1 else [],
        models=model if len(model) > 1 else [],
        vividness=vividness if len(vividness) > 1 else [], guidance=guidance,
    )
    summary = preview(cfg, req)
    if not quiet:
        click.echo(str(summary))
