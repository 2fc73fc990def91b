"""Load test of the web studio (#15): a burst of uploads, a kill in the middle, the round trip.

    python pipelines/load_test.py                      # 50 uploads, --queue 4 --workers 1
    python pipelines/load_test.py -n 200 --queue 8 --workers 2 --no-kill-restart

Starts its own ``filmcolor serve`` (:class:`tests.studio.StudioServer`) on a loopback port with
a temporary data folder, and measures:

* **Burst.** ``-n`` uploads of one small grey photo fired at once from ``-n`` threads (httpx,
  each with ``--timeout``): how many are accepted (202), refused with 429 (queue full), answered
  with anything else, or time out / lose their connection.
* **Completion.** Every accepted job must finish ``done``, and its result must be byte-identical
  to what ``python -m filmcolor photo.png -o out.png`` writes for the same photo and settings
  (the CLI is run once for the reference).
* **Kill and restart** (``--kill-restart``, on by default). Once the first job is done and
  others still wait, the server gets SIGKILL and is started again on the same data folder: every
  accepted job must still complete ("lost after restart" counts those that do not).
* **Round trip.** Upload -> events until done -> result of one photo through an idle server,
  the first one (fresh server, cold file cache) and a later one (best of ``--repeat``), against
  the CLI's wall time on the same photo (``time.perf_counter`` around ``subprocess.run``; cold,
  then best of ``--repeat``). Each studio job runs in a fresh worker process, as the CLI does, so
  the difference is the studio's own cost: upload, queue, process start-up and event latency.

Targets (exit status 1 if one fails): no 5xx, no other unexpected status, no timeouts; every
accepted job completed and identical to the CLI's output, none lost after the restart; the later
round trip adds at most ``--max-added`` (1.5) s to the warm CLI time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx

from tests.media import make_image
from tests.studio import StudioServer

FINAL = ("done", "failed", "cancelled")


def cli_run(photo: Path, out: Path, settings: list[str]) -> float:
    """Colour ``photo`` with the CLI; its wall time in seconds."""
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "filmcolor", str(photo), "-o", str(out),
                           *settings], cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the CLI failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def upload(client: httpx.Client, photo: Path, fields: dict[str, str]) -> httpx.Response:
    with open(photo, "rb") as f:
        return client.post("/api/jobs", files={"file": (photo.name, f, "image/png")}, data=fields)


def round_trip(url: str, photo: Path, fields: dict[str, str], timeout: float
               ) -> tuple[float, bytes]:
    """Upload -> server-sent events until the job is over -> result; (seconds, result bytes)."""
    with httpx.Client(base_url=url, timeout=timeout) as c:
        t0 = time.perf_counter()
        r = upload(c, photo, fields)
        if r.status_code != 202:
            raise SystemExit(f"round trip: upload answered {r.status_code}: {r.text}")
        job_id = r.json()["id"]
        last: dict = {}
        with c.stream("GET", f"/api/jobs/{job_id}/events") as ev:
            for line in ev.iter_lines():
                if line.startswith("data:"):
                    last = json.loads(line[5:])
        if last.get("state") != "done":
            raise SystemExit(f"round trip: job {job_id} ended {last.get('state')}: {last}")
        res = c.get(f"/api/jobs/{job_id}/result")
        elapsed = time.perf_counter() - t0
        if res.status_code != 200:
            raise SystemExit(f"round trip: result answered {res.status_code}")
        return elapsed, res.content


def burst(url: str, photo: Path, fields: dict[str, str], n: int, timeout: float
          ) -> tuple[Counter, list[str], list[str]]:
    """``n`` uploads at once; (status counts, accepted ids, descriptions of failures)."""
    counts: Counter = Counter()
    accepted: list[str] = []
    problems: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def one(i: int) -> None:
        with httpx.Client(base_url=url, timeout=timeout) as c:
            go.wait()
            try:
                r = upload(c, photo, fields)
            except httpx.TimeoutException as exc:
                with lock:
                    counts["timeout"] += 1
                    problems.append(f"upload {i}: timeout ({type(exc).__name__})")
                return
            except httpx.TransportError as exc:
                with lock:
                    counts["error"] += 1
                    problems.append(f"upload {i}: {type(exc).__name__}: {exc}")
                return
            with lock:
                counts[r.status_code] += 1
                if r.status_code == 202:
                    accepted.append(r.json()["id"])
                elif r.status_code == 429:
                    wait = r.headers.get("retry-after", "")
                    if not (wait.isdigit() and int(wait) >= 1):
                        problems.append(f"upload {i}: 429 with Retry-After {wait!r}")
                else:
                    problems.append(f"upload {i}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # every thread waiting at the gate
    go.set()
    for t in threads:
        t.join(timeout + 30)
    return counts, accepted, problems


def job_states(client: httpx.Client) -> dict[str, str]:
    return {j["id"]: j["state"] for j in client.get("/api/jobs").json()["jobs"]}


def wait_all(url: str, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll until every job in ``ids`` is final (or gone); their last states."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30) as c:
        while True:
            states = job_states(c)
            last = {i: states.get(i, "missing") for i in ids}
            if all(s in FINAL or s == "missing" for s in last.values()):
                return last
            if time.monotonic() > deadline:
                return last
            time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--uploads", type=int, default=50, help="uploads in the burst")
    ap.add_argument("--queue", type=int, default=4, help="the server's --queue")
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers")
    ap.add_argument("--size", default="320x240", help="the photo's WIDTHxHEIGHT")
    ap.add_argument("--vividness", default="1.2", help="setting sent with every upload")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    ap.add_argument("--job-timeout", type=float, default=600.0,
                    help="seconds for every accepted job to finish")
    ap.add_argument("--kill-restart", action=argparse.BooleanOptionalAction, default=True,
                    help="SIGKILL the server mid-queue and restart it on the same data")
    ap.add_argument("--repeat", type=int, default=2,
                    help="later round trips and warm CLI runs (the best counts)")
    ap.add_argument("--max-added", type=float, default=1.5,
                    help="most seconds the studio's round trip may add to the CLI's")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="filmcolor-load-"))
    width, height = (int(v) for v in args.size.lower().split("x"))
    photo = tmp / "photo.png"
    make_image(photo, width, height)
    fields = {"vividness": args.vividness}
    cli_settings = ["--vividness", args.vividness]
    server = StudioServer(tmp / "data", args=["--queue", str(args.queue),
                                               "--workers", str(args.workers)])
    failures: list[str] = []
    try:
        print(f"photo {width}x{height} grey PNG; server --queue {args.queue} --workers "
              f"{args.workers}; {args.uploads} uploads; data {server.data}", flush=True)
        reference = tmp / "cli.png"
        cli_first = cli_run(photo, reference, cli_settings)
        ref_bytes = reference.read_bytes()
        server.start()

        rt_first, content = round_trip(server.url, photo, fields, args.timeout)
        if content != ref_bytes:
            failures.append("the first round trip's result differs from the CLI's")

        t0 = time.perf_counter()
        counts, accepted, problems = burst(server.url, photo, fields, args.uploads, args.timeout)
        burst_s = time.perf_counter() - t0
        print(f"burst: {dict(counts)} in {burst_s:.1f} s", flush=True)

        killed_at = None
        if args.kill_restart and accepted:
            # Kill once the first job is done while others still wait (or run).
            deadline = time.monotonic() + args.job_timeout
            with httpx.Client(base_url=server.url, timeout=30) as c:
                while time.monotonic() < deadline:
                    states = job_states(c)
                    mine = [states.get(i) for i in accepted]
                    if "done" in mine or all(s in FINAL for s in mine):
                        break
                    time.sleep(0.1)
            killed_at = Counter(mine)
            server.kill()
            print(f"SIGKILL with jobs {dict(killed_at)}; restarting", flush=True)
            server.start()

        final = wait_all(server.url, accepted, args.job_timeout)
        done = [i for i, s in final.items() if s == "done"]
        identical = 0
        with httpx.Client(base_url=server.url, timeout=args.timeout) as c:
            for job_id in done:
                r = c.get(f"/api/jobs/{job_id}/result")
                if r.status_code == 200 and r.content == ref_bytes:
                    identical += 1
                else:
                    problems.append(f"job {job_id}: result {r.status_code}, not the CLI's bytes")
        lost = len(accepted) - len(done) if killed_at is not None else 0
        for job_id, state in final.items():
            if state != "done":
                problems.append(f"job {job_id}: {state}")

        rt_later = min(round_trip(server.url, photo, fields, args.timeout)[0]
                       for _ in range(max(1, args.repeat)))
        cli_warm = min(cli_run(photo, tmp / "cli_again.png", cli_settings)
                       for _ in range(max(1, args.repeat)))
    finally:
        server.stop()

    five = sum(v for k, v in counts.items() if isinstance(k, int) and k >= 500)
    other = sum(v for k, v in counts.items() if k not in (202, 429, "timeout"))
    rows = [
        ("uploads", args.uploads, ""),
        ("accepted (202)", counts[202], ""),
        ("queue full (429)", counts[429], ""),
        ("other statuses / errors", other, f"0 (5xx: {five})"),
        ("timeouts", counts["timeout"], "0"),
        ("completed", len(done), f"{len(accepted)}"),
        ("identical to CLI", identical, f"{len(accepted)}"),
        ("lost after restart", lost if killed_at is not None else "-", "0"),
        ("round trip, first (s)", f"{rt_first:.2f}", ""),
        ("CLI, first (s)", f"{cli_first:.2f}", ""),
        ("difference, first (s)", f"{rt_first - cli_first:+.2f}", ""),
        ("round trip, later (s)", f"{rt_later:.2f}", f"best of {args.repeat}"),
        ("CLI, warm (s)", f"{cli_warm:.2f}", f"best of {args.repeat}"),
        ("difference, later (s)", f"{rt_later - cli_warm:+.2f}", f"<= {args.max_added:+.2f}"),
    ]
    print()
    print(f"{'figure':<26}{'value':>10}   target")
    for name, value, target in rows:
        print(f"{name:<26}{value!s:>10}   {target}")

    if other or counts["timeout"]:
        failures.append(f"{other} unexpected answers/errors, {counts['timeout']} timeouts")
    if not accepted:
        failures.append("no upload was accepted")
    if len(done) != len(accepted) or identical != len(accepted):
        failures.append(f"{len(done)}/{len(accepted)} accepted jobs done, {identical} identical")
    if rt_later - cli_warm > args.max_added:
        failures.append(f"the round trip adds {rt_later - cli_warm:.2f} s to the CLI's "
                        f"(target <= {args.max_added} s)")
    for p in problems[:20]:
        print(f"  {p}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
