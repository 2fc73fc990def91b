"""One studio job in its own process: ``python -m filmcolor.serve.worker '<task json>'``.

The server runs each job in a child process rather than a thread, for three reasons: a job can
be cancelled at once (SIGTERM, which the job engine turns into a clean interruption that keeps
its finished chunks); a job that runs out of memory or disk takes only itself down, never the
server; and the run is exactly the command line's (:func:`filmcolor.api.run`,
:func:`filmcolor.preview.preview`), so a result from the studio equals the CLI's, bit for bit.

The child reports on its standard output, one JSON object per line: the job engine's events
(``{"event": "FramesDone", ...}``), then ``{"event": "Result", ...}`` or
``{"event": "Error", "message": ..., "exit_code": ...}``. Anything else a library prints goes to
standard error (the job's log).

It dies with the server: on Linux through ``PR_SET_PDEATHSIG``, elsewhere when its standard
input (a pipe from the server) reaches end of file. A server killed by SIGKILL therefore leaves
no orphan holding a job's lock when it starts again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from fractions import Fraction
from pathlib import Path

STILL_WIDTH: int = 1600
"""Widest side-by-side still (:func:`write_still`), in pixels."""


def _die_with_parent() -> None:
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(137)

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(1 << 10):
                pass
        os._exit(137)  # like a kill: the job is left exactly as a SIGKILL would leave it

    threading.Thread(target=watch_stdin, daemon=True, name="parent-watch").start()


class _Reporter:
    """Writes JSON lines to the original standard output, flushed one by one."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, kind: str, **data: object) -> None:
        line = json.dumps({"event": kind, **data}, default=str)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def event(self, event) -> None:
        self(type(event).__name__, **dataclasses.asdict(event))


def _frame_at(path: Path, seconds: float):
    """The RGB frame shown at ``seconds`` (the first one at or after it; the last one at worst)."""
    from filmcolor.io.probe import open_container, pick_video_stream

    with open_container(path) as container:
        stream = pick_video_stream(container, path)
        tb = stream.time_base or Fraction(1, 1000)
        with contextlib.suppress(Exception):
            container.seek(max(0, int(seconds / tb)), stream=stream, backward=True)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is not None and frame.time >= seconds:
                break
        if last is None:
            raise ValueError(f"no frame decoded from {path}")
        return last.to_ndarray(format="rgb24")


def write_still(task: dict) -> None:
    """The job's side-by-side still: the black-and-white source left, the colour right.

    For a film, the frame in the middle of the result; for a preview clip, its middle frame
    (already side by side when the preview was).
    """
    import cv2
    import numpy as np

    from filmcolor.io.output import write_image

    src, result, still = Path(task["input"]), Path(task["output"]), Path(task["still"])
    if task["kind"] == "photo":
        from filmcolor.io.probe import read_image

        def rgb8(p: Path) -> np.ndarray:
            img = read_image(p)
            if img.dtype != np.uint8:
                img = (img.astype(np.float64) / np.iinfo(img.dtype).max * 255).round()
                img = img.astype(np.uint8)
            code = cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB
            return cv2.cvtColor(img, code)

        parts = [rgb8(src), rgb8(result)]
    else:
        from filmcolor.io.probe import probe

        info = probe(result)
        middle = (info.duration or 0.0) / 2
        colour = _frame_at(result, middle)
        if task.get("preview", {}).get("side_by_side"):
            parts = [colour]
        else:
            parts = [_frame_at(src, task.get("start_s", 0.0) + middle), colour]
    # One height for all parts, small enough that the row is at most STILL_WIDTH wide: each
    # part is scaled once, straight to its size (a large scan is never concatenated at full size).
    h = min(p.shape[0] for p in parts)
    width = sum(p.shape[1] * h / p.shape[0] for p in parts)
    h = max(1, round(h * min(1.0, STILL_WIDTH / width)))
    parts = [
        p if p.shape[0] == h else cv2.resize(
            p, (max(1, round(p.shape[1] * h / p.shape[0])), h), interpolation=cv2.INTER_AREA)
        for p in parts
    ]
    write_image(still, np.concatenate(parts, axis=1))


def run_task(task: dict, report: _Reporter) -> None:
    """Colour one studio job as the command line would (see the module docstring).

    ``task``: ``kind``, ``input``, ``output``, ``still``, ``settings`` (RunConfig fields),
    ``job_dir`` (films), ``preview`` (``start``, ``end``, ``side_by_side``).
    """
    from filmcolor.config import RunConfig

    cfg = RunConfig(input=task["input"], output=task["output"], quiet=True,
                    job_dir=task.get("job_dir"), **task["settings"])
    if task["kind"] == "preview":
        from filmcolor.io.probe import probe
        from filmcolor.preview import PreviewRequest, preview

        p = task["preview"]
        req = PreviewRequest(start=p.get("start"), end=p.get("end"), output=task["output"],
                             side_by_side=bool(p.get("side_by_side")))
        cfg.overwrite = True  # a retried preview replaces its own earlier attempt
        summary = preview(cfg, req)
        rate = probe(Path(task["input"])).frame_rate or Fraction(25)
        task["start_s"] = float(summary.range.start / rate)
        report("FramesDone", job=task["output"], index=0, frames=len(summary.range),
               frames_done=len(summary.range), frames_todo=len(summary.range))
    else:
        from filmcolor.api import run

        if task["kind"] == "photo":
            report("Planned", job=task["output"], frames_total=1, chunks=1, shots=1,
                   frames_todo=1, chunks_todo=1, unit="image")
        run(cfg, on_event=report.event)
        if task["kind"] == "photo":
            report("FramesDone", job=task["output"], index=0, frames=1, frames_done=1,
                   frames_todo=1)
    with contextlib.suppress(Exception):  # a still is a nicety: never fail a job over it
        write_still(task)
    report("Result", output=task["output"])


def main(argv: list[str] | None = None) -> int:
    """Run the job described by the JSON in ``argv[0]``; returns the CLI's exit code."""
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    # Keep the real stdout for the reports; whatever a library prints goes to the log instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    report = _Reporter(out)
    import logging

    logging.basicConfig(level=logging.WARNING, format="filmcolor: %(levelname)s: %(message)s")
    from filmcolor.errors import FilmcolorError, JobInterrupted

    task = json.loads(argv[0])
    try:
        run_task(task, report)
    except JobInterrupted as exc:
        report("Error", message="interrupted", exit_code=exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        report("Error", message="interrupted", exit_code=130)
        return 130
    except FilmcolorError as exc:
        report("Error", message=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    except MemoryError:
        report("Error", message="out of memory", exit_code=1)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback in the log
        import traceback

        traceback.print_exc()
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report("Error", message=f"unexpected error: {msg}", exit_code=1)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: the thread blocked on stdin would make interpreter shutdown abort.
    os._exit(code)
