"""Fault soak of resumable film jobs (#4): random SIGKILLs in every phase, then the run is
finished, and the film must equal an uninterrupted run's, frame for frame.

    python pipelines/fault_soak.py                    # 30 rounds, seed 0
    python pipelines/fault_soak.py --rounds 200 --seed 7 --frames 240 --cuts 60,150

Generates a grey test film (:func:`tests.media.make_clip`, with sound), colours it once
without faults (the reference), then for each of ``--rounds`` rounds:

* runs ``python -m filmcolor FILM -o OUT --model tiny --chunk-frames N -q`` with
  ``FILMCOLOR_KILL_AT`` set to a random point of a random phase (``planning:N``, ``chunk:N``,
  ``done:N``, ``join:N``, ``remux:0|1|2``, N valid for the film; see
  :mod:`filmcolor.jobs.faults`), so the process SIGKILLs itself there;
* runs it again, killed again at another random point, up to ``--max-kills`` times in a round
  (a point the run does not reach, e.g. ``chunk:100`` when only 40 frames are left, does not
  fire: that run just finishes);
* finishes the job with the same command or ``filmcolor resume JOB`` (chosen at random) if it
  is not finished yet;
* checks: every killed run died by SIGKILL and left no file at the output path; the last run
  exited 0; the output decodes (rgb24) to exactly the reference's frames, timestamps and a sound
  track; no hidden temporary is left beside the output and the job folder is gone.

Prints one line per round and a summary: rounds, kills tried, kills that fired, frames lost or
changed (must be 0), leftovers (must be 0), failures, seconds. Exits 1 on any failure.
``OMP_NUM_THREADS`` (``--threads``, default 1) only makes runs faster on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np

from filmcolor.jobs import faults, folder
from tests.media import Film, decode_film, make_clip

PHASES = ("planning", "chunk", "done", "join", "remux")


@dataclass
class Totals:
    rounds: int = 0
    kills: int = 0
    fired: int = 0
    frames_lost: int = 0
    frames_changed: int = 0
    leftovers: int = 0
    failures: list[str] = field(default_factory=list)


class Soak:
    """The film, the reference, and how to run the CLI on them."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.rng = random.Random(args.seed)
        self.cli_args = ["--model", args.model, "--chunk-frames", str(args.chunk_frames), "-q"]
        cuts = tuple(int(c) for c in args.cuts.split(",") if c.strip())
        self.clip = make_clip(work / "film.mp4", width=args.width, height=args.height,
                              n_frames=args.frames, cuts=cuts)
        self.reference, self.n_chunks = self._reference()

    def env(self, kill: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in (faults.KILL_ENV, faults.KILL_ONCE_ENV)}
        env.update(FILMCOLOR_DEBUG="1", OMP_NUM_THREADS=str(self.args.threads))
        if kill is not None:
            env[faults.KILL_ENV] = kill
        return env

    def film_cmd(self, out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "filmcolor", str(self.clip.path), "-o", str(out),
                *self.cli_args, *extra]

    def run(self, cmd: list[str], kill: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, env=self.env(kill), cwd=REPO, capture_output=True, text=True,
                              timeout=self.args.timeout, check=False)

    def _reference(self) -> tuple[Film, int]:
        """The uninterrupted run's frames, and the number of chunks of its plan."""
        out = self.work / "reference" / "film.colour.mp4"
        out.parent.mkdir()
        r = self.run(self.film_cmd(out, "--keep-chunks"))
        if r.returncode != 0:
            raise SystemExit(f"the reference run failed (exit {r.returncode}):\n{r.stderr}")
        job = folder.default_job_dir(out)
        n_chunks = len(json.loads((job / "manifest.json").read_text())["chunks"])
        shutil.rmtree(job)
        ref = decode_film(out)
        if len(ref.frames) != self.clip.n_frames or not ref.audio:
            raise SystemExit(f"the reference has {len(ref.frames)} frames, audio {ref.audio}")
        return ref, n_chunks

    def random_point(self) -> str:
        """A kill point of a random phase, with an N the film reaches in a whole run."""
        n = self.clip.n_frames
        phase = self.rng.choice(PHASES)
        number = {
            "planning": lambda: self.rng.randrange(n),  # frame index
            "chunk": lambda: self.rng.randint(1, n),  # N-th frame encoded by the process
            "done": lambda: self.rng.randrange(self.n_chunks),  # chunk index
            "join": lambda: self.rng.randint(1, n),  # N-th packet joined
            "remux": lambda: self.rng.randint(0, 2),
        }[phase]()
        return f"{phase}:{number}"

    def round(self, index: int, totals: Totals) -> str:
        """One round; returns its report line (failures are added to ``totals``)."""
        folder_ = self.work / f"round{index:03d}"
        folder_.mkdir()
        out = folder_ / "film.colour.mp4"
        job = folder.default_job_dir(out)
        cmd = self.film_cmd(out)
        notes: list[str] = []
        failures: list[str] = []
        finished = False
        for _ in range(self.rng.randint(1, self.args.max_kills)):
            point = self.random_point()
            totals.kills += 1
            r = self.run(cmd, kill=point)
            if r.returncode == -9:
                totals.fired += 1
                notes.append(f"{point} fired")
                if out.exists():
                    failures.append(f"a file at the output path after the kill at {point}")
                continue
            if r.returncode == 0:
                notes.append(f"{point} not reached")
                finished = True
                break
            failures.append(f"exit {r.returncode} with kill point {point}: "
                            f"{r.stderr.strip()[-2000:]}")
            break
        if not finished and not failures:
            if (job / "manifest.json").is_file() and self.rng.random() < 0.5:
                how, again = "resume", [sys.executable, "-m", "filmcolor", "resume", str(job),
                                        "-q"]
            else:
                how, again = "same command", cmd
            r = self.run(again)
            notes.append(f"then {how}")
            if r.returncode != 0:
                failures.append(f"{how}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
        if not failures:
            failures += self.check(out, job, totals)
        totals.rounds += 1
        if failures:
            totals.failures += [f"round {index}: {f}" for f in failures]
        else:
            shutil.rmtree(folder_)
        verdict = "ok" if not failures else "FAILED: " + "; ".join(failures)
        return ", ".join(notes) + f" -> {verdict}"

    def check(self, out: Path, job: Path, totals: Totals) -> list[str]:
        problems: list[str] = []
        if not out.is_file():
            return ["no output after a successful run"]
        got, ref = decode_film(out), self.reference
        lost = max(0, len(ref.frames) - len(got.frames))
        changed = sum(1 for a, b in zip(got.frames, ref.frames) if not np.array_equal(a, b))
        changed += max(0, len(got.frames) - len(ref.frames))  # extra frames count as changed
        totals.frames_lost += lost
        totals.frames_changed += changed
        if lost or changed:
            problems.append(f"{lost} frames lost, {changed} changed")
        if got.pts != ref.pts:
            problems.append("timestamps differ from the reference")
        if not got.audio:
            problems.append("no sound track")
        left = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
        if job.exists():
            left.append(job.name + "/")
        totals.leftovers += len(left)
        if left:
            problems.append(f"left behind: {', '.join(sorted(left))}")
        return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30, help="rounds (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill points (default 0)")
    ap.add_argument("--max-kills", type=int, default=3, help="most kills per round (default 3)")
    ap.add_argument("--frames", type=int, default=120, help="frames of the test film (120)")
    ap.add_argument("--cuts", default="40,80", help="shot starts of the test film (40,80)")
    ap.add_argument("--width", type=int, default=160, help="frame width (160)")
    ap.add_argument("--height", type=int, default=120, help="frame height (120)")
    ap.add_argument("--chunk-frames", type=int, default=24, help="--chunk-frames (24)")
    ap.add_argument("--model", default="tiny", help="--model (tiny)")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (1)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run (600)")
    ap.add_argument("--work", type=Path, help="folder for the film and the runs (default: a "
                    "temporary one, deleted at the end); a failed round's folder is kept")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.max_kills < 1:
        ap.error("--rounds and --max-kills must be at least 1")

    t0 = time.perf_counter()
    tmp = args.work is None
    if tmp:
        work = Path(tempfile.mkdtemp(prefix="fault-soak-"))
    else:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)
        if any(work.iterdir()):
            ap.error(f"--work {work} is not empty")
    totals = Totals()
    try:
        soak = Soak(args, work)
        print(f"film: {soak.clip.n_frames} frames, cuts {list(soak.clip.cuts)}, "
              f"{soak.n_chunks} chunks; reference done in {time.perf_counter() - t0:.1f} s",
              flush=True)
        for i in range(args.rounds):
            r0 = time.perf_counter()
            line = soak.round(i, totals)
            print(f"round {i + 1}/{args.rounds}: {line} ({time.perf_counter() - r0:.1f} s)",
                  flush=True)
    finally:
        if tmp and not totals.failures:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    print(f"summary: rounds {totals.rounds}, kills {totals.kills}, kills that fired "
          f"{totals.fired}, frames lost or changed {totals.frames_lost + totals.frames_changed}, "
          f"leftovers {totals.leftovers}, failures {len(totals.failures)}, {seconds:.0f} s")
    for f in totals.failures:
        print(f"  {f}")
    if totals.failures and tmp:
        print(f"  (work folder kept: {work})")
    ok = not totals.failures and totals.frames_lost + totals.frames_changed == 0 \
        and totals.leftovers == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
