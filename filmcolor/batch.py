"""``filmcolor batch IN_DIR -o OUT_DIR``: every film and photo of a folder, each a resumable job.

Names are kept (``reel1.avi`` -> ``OUT_DIR/reel1.mp4``, or ``.mkv`` where MP4 cannot hold the
film's sound or subtitles as they are; ``photo.jpg`` -> ``OUT_DIR/photo.jpg``). A file whose
output is already there is skipped (coloured by an earlier batch); a film whose job was stopped
is resumed from its finished chunks. One bad file fails alone, with its one-line error, and the
others go on. Without Ray the films run one after the other; with ``--ray`` several run at once
and their chunks share the cluster (Ray's scheduler interleaves them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from filmcolor.config import RunConfig, is_own_output
from filmcolor.errors import FilmcolorError, JobInterrupted, SourceOpenError
from filmcolor.io.containers import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from filmcolor.jobs import events as ev
from filmcolor.jobs.folder import JOB_DIR_SUFFIX

CONCURRENT_FILMS: int = 4
"""Films a Ray batch drives at once (their chunks queue on the cluster together)."""


@dataclass
class BatchItem:
    """One file of the batch and what became of it.

    Attributes:
        source, output: the file and where its colour version goes.
        state: ``"done"``, ``"skipped"`` (the output was already there) or ``"failed"``.
        error: the one-line error of a failed file.
        frames, seconds: what the run did.
    """

    source: Path
    output: Path
    state: str = "pending"
    error: str | None = None
    frames: int = 0
    seconds: float = 0.0


@dataclass
class BatchSummary:
    """What a batch did, file by file (printed by the CLI)."""

    items: list[BatchItem] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, state: str) -> list[BatchItem]:
        return [i for i in self.items if i.state == state]

    def lines(self) -> list[str]:
        """The summary: counts, then each failed file with its error."""
        done, skipped, failed = self.of("done"), self.of("skipped"), self.of("failed")
        out = [(f"{len(done)} done, {len(skipped)} skipped (already coloured), "
                f"{len(failed)} failed, in {self.seconds:.1f} s")]
        out += [f"  done     {i.source.name} -> {i.output}" for i in done]
        out += [f"  skipped  {i.source.name} ({i.output} exists)" for i in skipped]
        out += [f"  failed   {i.source.name}: {i.error}" for i in failed]
        return out


def batch_items(in_dir: Path, out_dir: Path) -> list[BatchItem]:
    """The films and photos directly in ``in_dir`` (natural name order), with their outputs.

    Raises:
        SourceOpenError: ``in_dir`` is not a folder, or holds nothing to colour.
    """
    from filmcolor.io.probe import list_images

    if not in_dir.is_dir():
        raise SourceOpenError(f"no such folder: '{in_dir}'")
    images = list_images(in_dir)
    films = sorted(p for p in in_dir.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in VIDEO_SUFFIXES and not is_own_output(p))
    if not films and not images:
        raise SourceOpenError(f"no films or images found in folder {in_dir}")
    items, taken = [], set()
    for src in [*films, *images]:
        out = out_dir / (src.name if src.suffix.lower() in IMAGE_SUFFIXES else src.stem + ".mp4")
        if out.name in taken:  # reel.avi and reel.mov: the second keeps its suffix in the name
            out = out_dir / (src.name + out.suffix)
        taken.add(out.name)
        items.append(BatchItem(src, out))
    return items


def _settle_container(item: BatchItem) -> None:
    """A film's output: ``.mp4``, or ``.mkv`` when MP4 cannot keep its streams as they are."""
    from filmcolor.io.output import choose_video_output
    from filmcolor.io.probe import probe

    if item.source.suffix.lower() in IMAGE_SUFFIXES:
        return
    info = probe(item.source)
    default = choose_video_output(item.source, info, None)
    item.output = item.output.with_suffix(default.suffix)


def _colour_one(item: BatchItem, cfg: RunConfig, sink: ev.EventSink) -> None:
    from filmcolor.api import run

    t0 = time.perf_counter()
    try:
        _settle_container(item)
        job = Path(str(item.output) + JOB_DIR_SUFFIX)
        if item.output.exists() and not job.exists() and not cfg.overwrite:
            item.state = "skipped"
            return
        summary = run(replace(cfg, input=item.source, output=item.output, job_dir=None),
                      on_event=sink)
        item.state, item.frames = "done", summary.frames
    except JobInterrupted:
        raise
    except FilmcolorError as exc:
        item.state, item.error = "failed", str(exc)
    item.seconds = time.perf_counter() - t0


def run_batch(
    cfg: RunConfig,
    in_dir: Path,
    out_dir: Path,
    sink_for: Callable[[BatchItem, int], ev.EventSink] | None = None,
) -> BatchSummary:
    """Colour every film and photo of ``in_dir`` into ``out_dir`` (see the module docstring).

    Args:
        cfg: the run settings for every file (``input``/``output`` are replaced per file;
            ``ray`` set: films run at once on the cluster).
        in_dir, out_dir: the folders (``out_dir`` is created).
        sink_for: ``(item, slot) -> event sink`` for each file's events (slot: which of the
            films running at once it is, for a progress bar's line).

    Raises:
        SourceOpenError: nothing to colour in ``in_dir``.
        OutputError: ``out_dir`` cannot be created.
        JobInterrupted: Ctrl-C (every job so far is kept and resumes on the next batch).
    """
    from filmcolor.errors import OutputError

    if out_dir.resolve() == in_dir.resolve():
        raise OutputError(f"the output folder is the input folder {in_dir}: the originals would "
                          "be replaced (choose another -o)")
    items = batch_items(in_dir, out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    summary = BatchSummary(items)
    t0 = time.perf_counter()
    sink_for = sink_for or (lambda item, slot: ev.ignore)
    if not cfg.ray:
        for item in items:
            _colour_one(item, cfg, sink_for(item, 0))
    else:
        from filmcolor.jobs.cluster import init_ray

        init_ray(cfg.ray)  # in the main thread, before the films' threads use it
        _run_concurrently(items, cfg, sink_for)
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_concurrently(items: list[BatchItem], cfg: RunConfig, sink_for) -> None:
    """Up to :data:`CONCURRENT_FILMS` films at once, each driven by its own thread."""
    queue = list(reversed(items))
    lock = threading.Lock()

    def worker(slot: int) -> None:
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            _colour_one(item, cfg, sink_for(item, slot))

    # Daemon threads: on Ctrl-C the process leaves without waiting for them; every finished
    # chunk is in its manifest already (as after a SIGKILL), so the next batch resumes them.
    threads = [threading.Thread(target=worker, args=(slot,), daemon=True)
               for slot in range(min(CONCURRENT_FILMS, len(items)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        exc = JobInterrupted(str(items[0].output.parent))
        why = "interrupted; run the same batch command again to go on (finished chunks are kept)"
        exc.args = (why,)
        raise exc from None
