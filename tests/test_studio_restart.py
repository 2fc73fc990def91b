"""The studio loses nothing: a server killed mid-film (SIGKILL) and started again finishes the
film from its finished chunks, with frames identical to an uninterrupted run (#15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from tests.media import make_clip
from tests.studio import StudioServer, wait_for

pytestmark = pytest.mark.slow


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited, which is what counts here.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_sigkill_mid_film_then_restart_gives_identical_frames(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "reel.mp4", n_frames=240, cuts=(60, 150), width=160, height=120)
    data = tmp_path / "data"
    server = StudioServer(data, args=["--chunk-frames", "24"]).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            with open(clip.path, "rb") as f:
                r = client.post("/api/jobs", files={"file": ("reel.mp4", f, "video/mp4")},
                                data={"model": "tiny"})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            manifest = data / "jobs" / job_id / "manifest.json"
            # Kill once at least one chunk is finished and recorded, and before the last.
            deadline = time.monotonic() + 120
            done = 0
            while time.monotonic() < deadline:
                try:
                    chunks = json.loads(manifest.read_text())["chunks"]
                    done = sum(1 for c in chunks if c["done"])
                except (OSError, ValueError, KeyError, TypeError):
                    chunks = []
                if done >= 1:
                    break
                time.sleep(0.02)
            assert 1 <= done < len(chunks), f"no kill point: {done} of {len(chunks)} chunks done"
            worker_pid = int((data / "jobs" / job_id / "lock").read_text())
        server.kill()
        # The job's process dies with the server: no orphan keeps the job's lock.
        deadline = time.monotonic() + 10
        while _pid_alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _pid_alive(worker_pid)

        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            view = wait_for(client, job_id, timeout=180)
            assert view["state"] == "done", view
            assert view["frames_done"] == view["frames_total"] == 240
            result = client.get(f"/api/jobs/{job_id}/result")
            assert result.status_code == 200
        out = tmp_path / "served.mp4"
        out.write_bytes(result.content)
    finally:
        server.stop()
    assert not (data / "jobs" / job_id).exists()  # the job folder goes once the film is done

    # The same job run by the command line, uninterrupted (the same chunk plan: chunks are
    # encoded separately, so the plan is part of what the frames are).
    ref = tmp_path / "cli.mp4"
    subprocess.run([sys.executable, "-m", "filmcolor", str(clip.path), "-o", str(ref),
                    "--model", "tiny", "--chunk-frames", "24", "-q"], check=True)
    served, expected = _frames(out), _frames(ref)
    assert len(served) == len(expected) == 240
    for i, (a, b) in enumerate(zip(served, expected, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs"
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1
