"""Command line: parse options into a :class:`RunConfig` and hand it to the library. No logic here.

``filmcolor INPUT`` is shorthand for ``filmcolor run INPUT``. Heavy modules (torch, av) are
imported inside the commands so ``--help`` starts instantly.

The ``run`` and ``preview`` options are built from :class:`RunConfig`'s field metadata
(:func:`run_options`): a setting's default, bounds and help are declared once, in
:mod:`filmcolor.config`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field
from typing import Any

import click

from filmcolor import __version__
from filmcolor.config import RunConfig, Setting, settings

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
      filmcolor batch reels/ -o coloured/ every film and photo of a folder
      filmcolor models                    list the colourisation models
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# -- run settings as click options, built from RunConfig's field metadata --------------------------
# Defaults, bounds and help live once, on RunConfig (filmcolor.config); these helpers only turn
# them into click options so `run`, `preview` and `RunConfig(...)` cannot disagree.

_SETTINGS: dict[str, tuple[Field, Setting]] = {f.name: (f, s) for f, s in settings()}


def _setting(name: str) -> Setting:
    return _SETTINGS[name][1]


def _click_type(s: Setting) -> click.ParamType | type:
    """The click type of a setting: a choice, a path, a bounded or a plain number, or text."""
    if s.choices is not None:
        return click.Choice(s.choices)
    if s.type == "path":
        return click.Path(path_type=str)
    if s.type in (int, float) and (s.lo is not None or s.hi is not None):
        cast = s.type
        # Cast the bounds so the help reads "0.0<=x<=1.0" for a float setting declared as 0..1.
        lo = None if s.lo is None else cast(s.lo)
        hi = None if s.hi is None else cast(s.hi)
        return click.IntRange(lo, hi) if cast is int else click.FloatRange(lo, hi)
    return s.type


def setting_option(name: str, **overrides: Any) -> Callable[[Callable], Callable]:
    """The click option of RunConfig field ``name``; ``overrides`` replace click arguments.

    The click parameter is named like the field, so the command gets keyword arguments that
    ``RunConfig(**kwargs)`` takes as they are.
    """
    f, s = _SETTINGS[name]
    names = [n for n in (s.short, s.flag) if n]
    kw: dict[str, Any] = {"help": s.help, "default": f.default}
    if s.type is bool:
        kw["is_flag"] = True
        if s.negate:
            kw["flag_value"] = False  # --no-scene-detect gives scene_detect=False
    else:
        kw.update(type=_click_type(s), multiple=s.multiple, metavar=s.metavar)
        show = s.show_default if s.show_default is not None else f.default not in (None, ())
        kw["show_default"] = show
    kw.update(overrides)
    return click.option(*names, name, **kw)


def run_options(
    exclude: Iterable[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    after: Mapping[str, Callable[[Callable], Callable]] | None = None,
) -> Callable[[Callable], Callable]:
    """A decorator adding one option per RunConfig setting, in field order.

    Args:
        exclude: field names to leave out.
        overrides: click arguments per field name (e.g. a command-specific ``help``).
        after: an extra option to list right after a field's own (``--no-smoothing``).
    """
    exclude, overrides, after = set(exclude), dict(overrides or {}), dict(after or {})
    unknown = (exclude | set(overrides) | set(after)) - set(_SETTINGS)
    if unknown:  # a typo would silently drop or keep an option
        raise ValueError(f"not RunConfig settings: {', '.join(sorted(unknown))}")
    opts: list[Callable[[Callable], Callable]] = []
    for name in _SETTINGS:
        if name not in exclude:
            opts.append(setting_option(name, **overrides.get(name, {})))
            if name in after:
                opts.append(after[name])

    def decorate(fn: Callable) -> Callable:
        for opt in reversed(opts):  # click lists options in decorator order, top first
            fn = opt(fn)
        return fn

    return decorate


@main.command("run", context_settings=CONTEXT_SETTINGS)
@click.argument("input", type=click.Path(path_type=str))
@run_options(after={"smoothing": click.option(
    "--no-smoothing", is_flag=True, help="Disable temporal smoothing (same as --smoothing 0).")})
def run_cmd(no_smoothing: bool, **options: Any) -> None:
    """Colourise INPUT: a video file, an image, or a folder of images.

    A video is coloured as a resumable job: if it is stopped (Ctrl-C, a crash, a reboot),
    running the same command again, or `filmcolor resume JOB_DIR`, redoes only what is missing.
    """
    if no_smoothing:
        options["smoothing"] = 0.0
    cfg = RunConfig(**options)  # validated before the heavy imports: a bad value fails at once

    _run_with_progress(cfg)


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
    from filmcolor.models.catalog import load_catalog
    from filmcolor.models.listing import weights_status_lines

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
    from filmcolor.models.fetch import fetch

    path = fetch(name, dest=dest, url=url, progress=not quiet)
    if not quiet:
        click.echo(f"{name}: {path}")


def _run_with_progress(cfg) -> None:
    """Run ``cfg`` through the library with bars on the terminal; print the summary line.

    Raises:
        SourceOpenError: images of a folder were skipped (after the rest were coloured).
    """
    from filmcolor.api import run
    from filmcolor.terminal import TerminalProgress

    with TerminalProgress(enabled=not cfg.quiet) as progress:
        summary = run(cfg, on_event=progress)
    if not cfg.quiet:
        click.echo(str(summary))
    if summary.skipped:
        from filmcolor.errors import SourceOpenError

        names = ", ".join(p.name for p in summary.skipped[:3])
        more = f" and {len(summary.skipped) - 3} more" if len(summary.skipped) > 3 else ""
        raise SourceOpenError(
            f"{len(summary.skipped)} image(s) could not be read and were skipped: {names}{more}"
        )


@main.command("batch", context_settings=CONTEXT_SETTINGS)
@click.argument("in_dir", type=click.Path(path_type=str))
@run_options(exclude=("output", "job_dir"), overrides={
    "overwrite": {"help": "Colour files whose output exists again (default: skip them)."},
})
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Folder for the coloured files (created; names kept).")
def batch_cmd(in_dir: str, out_dir: str, **options: Any) -> None:
    """Colour every film and photo in IN_DIR into OUT_DIR, each a resumable job.

    Files already coloured are skipped and stopped jobs resume, so the same command can be run
    again after an interruption. With --ray, several films run at once on the cluster.
    """
    from pathlib import Path

    from filmcolor.batch import run_batch
    from filmcolor.errors import FilmcolorError
    from filmcolor.terminal import TerminalProgress

    cfg = RunConfig(input=in_dir, **options)
    with TerminalProgress(enabled=not cfg.quiet) as bars:
        summary = run_batch(cfg, Path(in_dir), Path(out_dir), sink_for=bars.for_item)
    failed = summary.of("failed")
    lines = summary.lines()
    for line in lines if not cfg.quiet else lines[-len(failed):] if failed else []:
        click.echo(line, err=line.startswith("  failed"))
    if failed:
        raise FilmcolorError(f"{len(failed)} of {len(summary.items)} file(s) failed (listed above)")


@main.command("resume", context_settings=CONTEXT_SETTINGS)
@click.argument("job_dir", type=click.Path(path_type=str))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@setting_option("ray")
@setting_option("ray_storage")
def resume_cmd(job_dir: str, quiet: bool, ray: str | None, ray_storage: str) -> None:
    """Finish the job in JOB_DIR with the settings it was started with.

    The chunks left run here, or on a Ray cluster with --ray (whatever ran the others).
    """
    from dataclasses import replace
    from pathlib import Path

    from filmcolor.jobs.spec import load_config

    cfg = load_config(Path(job_dir), quiet=quiet)
    _run_with_progress(replace(cfg, ray=ray, ray_storage=ray_storage))


@main.command("serve", context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (any other than a loopback address needs --token).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--data", type=click.Path(path_type=str), default=None,
              help="Folder for uploads, jobs and results. Default: the user's data folder "
                   "(~/.local/share/filmcolor/studio).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Jobs coloured at once.")
@click.option("--queue", "queue_size", default=16, show_default=True,
              type=click.IntRange(0, 100000), help="Most jobs waiting; more uploads get HTTP 429.")
@click.option("--max-upload", default="4G", show_default=True, metavar="SIZE",
              help="Largest upload (4G, 500M, bytes); larger ones get HTTP 413.")
@click.option("--token", default=None, envvar="FILMCOLOR_TOKEN", show_envvar=True,
              help="Every request must carry it (required unless --host is a loopback address).")
@setting_option("chunk_frames", help="Most frames per chunk of a film job (a restart loses at "
                "most one chunk per running film).")
def serve_cmd(host: str, port: int, data: str | None, workers: int, queue_size: int,
              max_upload: str, token: str | None, chunk_frames: int) -> None:
    """Run the web studio: a page and a JSON API with a queue (pip install "filmcolor[serve]").

    Jobs and results live in the data folder: stopping the server (Ctrl-C, SIGTERM, even a
    kill) and starting it again continues every queued and running job.
    """
    from filmcolor.serve import serve

    serve(host=host, port=port, data=data, workers=workers, queue=queue_size,
          max_upload=max_upload, token=token, chunk_frames=chunk_frames)


@main.command("status", context_settings=CONTEXT_SETTINGS)
@click.argument("job_dir", type=click.Path(path_type=str))
def status_cmd(job_dir: str) -> None:
    """Show the progress of the job in JOB_DIR (chunks, frames, estimated time left)."""
    from pathlib import Path

    from filmcolor.jobs.status import status_lines

    for line in status_lines(Path(job_dir)):
        click.echo(line)


def _number_list(name: str, example: str) -> Callable[..., list]:
    """A click callback parsing ``"a,b,c"`` into values of setting ``name``, within its bounds."""
    s = _setting(name)

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> list:
        if not value:
            return []
        try:
            vals = [s.type(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a list like {example}") from None
        if any((s.lo is not None and v < s.lo) or (s.hi is not None and v > s.hi) for v in vals):
            raise click.BadParameter(f"values must be {s.bounds_text()}")
        return vals

    return parse


def _str_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def sweep_option(name: str, help: str, **kw: Any) -> Callable[[Callable], Callable]:
    """A ``preview`` option comparing several values of RunConfig setting ``name``.

    Flag and metavar come from the setting; the value is a comma list (``callback``) or a repeated
    option (``multiple``), so the type, help and default are the sweep's own.
    """
    s = _setting(name)
    return click.option(s.flag, name, help=help, metavar=s.metavar, **kw)


def _one(values: list) -> Any:
    """A sweep's single value, for the RunConfig; None (the default) for zero or several."""
    return values[0] if len(values) == 1 else None


# Job settings and the output path are not the preview's: its -o names the clip.
_PREVIEW_EXCLUDED = [name for name, (_, s) in _SETTINGS.items() if s.sweep or not s.preview]


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
@sweep_option("render_size", callback=_number_list("render_size", "192,256,320"),
              help="Render size, or a comma list to compare (e.g. 192,256,320: sheet only).")
@sweep_option("model", callback=_str_list,
              help="Model name, or a comma list to compare (sheet only).")
@sweep_option("vividness", callback=_number_list("vividness", "1,1.5,2"),
              help="Colour strength (see `filmcolor run --help`), or a comma list to compare "
                   "(e.g. 1,1.5,2: sheet only).")
@sweep_option("references", multiple=True,
              help="Reference still (see `filmcolor run --help`); repeatable. A comma list "
                   "(a.jpg,b.jpg) compares the alternatives in a sweep sheet.")
@sweep_option("hints", multiple=True, type=click.Path(path_type=str),
              help="Colour hints file; give two or more to compare them in a sweep sheet.")
@click.option("--before-after", is_flag=True,
              help="With guidance: a sheet with the unguided colours above the guided ones.")
@run_options(exclude=_PREVIEW_EXCLUDED, overrides={
    "batch_size": {"help": "Frames per forward pass (use the full run's value for identical "
                           "frames)."},
    "overwrite": {"help": "Replace existing outputs."},
    "quiet": {"help": "No summary."},
})
def preview_cmd(start: str | None, end: str | None, frames: str | None, output: str | None,
                side_by_side: bool, sheet: int, render_size: list[int], model: list[str],
                vividness: list[float], references: tuple[str, ...], hints: tuple[str, ...],
                before_after: bool, **options: Any) -> None:
    """Colour a few seconds of INPUT, anywhere in the film, as the full run would colour them."""
    # One value of a sweep option is a plain setting; several are compared in one sheet.
    cfg = RunConfig(model=_one(model), render_size=_one(render_size),
                    vividness=_one(vividness), **options)

    from filmcolor.preview import PreviewRequest, guidance_sweep, preview

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
    if not cfg.quiet:
        click.echo(str(summary))
