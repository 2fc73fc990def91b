"""A real ``filmcolor serve`` process on a loopback port, for the studio's tests and scripts.

Tests talk to it over HTTP as a user's browser or script would; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nothing listens on now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudioServer:
    """``python -m filmcolor serve`` on ``127.0.0.1:port`` with its data in ``data``.

    Use as a context manager (started on entry, SIGTERM on exit) or call :meth:`start`,
    :meth:`kill` (SIGKILL) and :meth:`stop` yourself; a restart reuses the same port and data.
    """

    def __init__(self, data: Path, args: Sequence[str] = (), port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data = Path(data)
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = self.data.parent / f"{self.data.name}.server.log"

    def start(self, timeout: float = 60.0) -> StudioServer:
        self.data.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "filmcolor", "serve", "--port", str(self.port),
               "--data", str(self.data), *self.args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()}")
            try:
                r = httpx.get(self.url + "/api/jobs", timeout=2, headers=self.auth_headers())
                if r.status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer in {timeout} s: {self.log_text()}")

    def auth_headers(self) -> dict[str, str]:
        if "--token" in self.args:
            return {"Authorization": f"Bearer {self.args[self.args.index('--token') + 1]}"}
        return {}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the jobs' processes die with it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def __enter__(self) -> StudioServer:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(client: httpx.Client, job_id: str, states: Sequence[str] = ("done", "failed", "cancelled"),
             timeout: float = 240.0) -> dict:
    """Poll ``GET /api/jobs/{id}`` until the job is in one of ``states``; its last view."""
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        view = client.get(f"/api/jobs/{job_id}").json()
        if view.get("state") in states:
            return view
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {view.get('state')} after {timeout} s: {view}")
