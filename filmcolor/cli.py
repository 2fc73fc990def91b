"""Command line: parse options into a :class:`RunConfig` and hand it to the library. No logic here.

``filmcolor INPUT`` is shorthand for ``filmcolor run INPUT``. Heavy modules (torch, av) are
imported inside the commands so ``--help`` starts instantly.
"""

from __future__ import annotations

import click

from filmcolor import __version__

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
@click.option("--smoothing", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Temporal colour smoothing strength (never crosses a scene cut).")
@click.option("--no-smoothing", is_flag=True, help="Disable temporal smoothing (same as --smoothing 0).")
@click.option("--no-scene-detect", is_flag=True, help="Do not detect scene cuts.")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder (FFmpeg name).")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
              help="Quality for x264/x265 (lower = better, bigger).")
@click.option("--preset", default="medium", show_default=True, help="Encoder speed preset.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def run_cmd(input: str, output: str | None, overwrite: bool, model: str | None,
            weights: str | None, device: str, batch_size: int, render_size: int | None,
            smoothing: float, no_smoothing: bool, no_scene_detect: bool, codec: str, crf: int,
            preset: str, quiet: bool) -> None:
    """Colourise INPUT: a video file, an image, or a folder of images."""
    from filmcolor.config import RunConfig
    from filmcolor.pipeline import run

    cfg = RunConfig(
        input=input, output=output, overwrite=overwrite, model=model, weights=weights,
        device=device, batch_size=batch_size, render_size=render_size,
        smoothing=0.0 if no_smoothing else smoothing, scene_detect=not no_scene_detect,
        codec=codec, crf=crf, preset=preset, quiet=quiet,
    )
    summary = run(cfg)
    if not quiet:
        click.echo(str(summary))


@main.command("models", context_settings=CONTEXT_SETTINGS)
@click.option("--all", "show_all", is_flag=True, help="Include test-only models.")
def models_cmd(show_all: bool) -> None:
    """List the colourisation models."""
    from filmcolor.models import list_models
    from filmcolor.models.registry import DEFAULT_MODEL

    for cfg in list_models(include_test=show_all):
        mark = "*" if cfg.name == DEFAULT_MODEL else " "
        click.echo(f"{mark} {cfg.name:<20} render {cfg.render_size:<4} {cfg.description}")
