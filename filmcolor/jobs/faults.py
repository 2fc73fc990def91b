"""Deterministic fault injection for the kill-and-resume tests (never set in normal use)."""

from __future__ import annotations

import os
import signal

KILL_ENV: str = "FILMCOLOR_KILL_AT"
"""Test hook: ``planning:N``, ``chunk:N``, ``done:N``, ``join:N`` or ``remux:N`` makes the
process SIGKILL itself at that point (planning frame N, N-th frame encoded by this process, after
chunk N is marked done, N-th packet joined; remux 0 before FFmpeg runs, 1 after it wrote the
temporary, 2 after the check, before the rename), so kill-and-resume tests are deterministic; a
``/TERM`` suffix sends SIGTERM instead."""

KILL_ONCE_ENV: str = "FILMCOLOR_KILL_ONCE"
"""Test hook: a file path; with it, the kill of :data:`KILL_ENV` happens in one process only
(the first to create the file), so a retried task (a new worker process) runs through."""


def kill_point(point: str, n: int) -> None:
    """Kill this process if :data:`KILL_ENV` names ``point:n`` (see there)."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    where, _, sig = spec.partition("/")
    if where != f"{point}:{n}":
        return
    once = os.environ.get(KILL_ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGTERM if sig == "TERM" else signal.SIGKILL)
