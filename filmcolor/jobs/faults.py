"""Deterministic fault injection for the kill-and-resume tests (never set in normal use)."""

from __future__ import annotations

import os
import signal

KILL_ENV: str = "FILMCOLOR_KILL_AT"
"""Test hook: ``planning:N``, ``chunk:N``, ``done:N`` or ``join:N`` makes the process SIGKILL
itself at that point (planning frame N, N-th frame encoded by this process, after chunk N is
marked done, N-th packet joined), so kill-and-resume tests are deterministic; a ``/TERM`` suffix
sends SIGTERM instead."""


def kill_point(point: str, n: int) -> None:
    """Kill this process if :data:`KILL_ENV` names ``point:n`` (see there)."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    where, _, sig = spec.partition("/")
    if where == f"{point}:{n}":
        os.kill(os.getpid(), signal.SIGTERM if sig == "TERM" else signal.SIGKILL)
