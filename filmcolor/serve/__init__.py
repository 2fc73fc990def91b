"""filmcolor studio: ``filmcolor serve``, a web page and a JSON API with a queue (#15).

A front end over the library like the command line: every job runs as the CLI would run it
(:mod:`filmcolor.serve.worker`), films through the job engine, so results are the CLI's, bit for
bit, and a film survives a server restart by resuming from its finished chunks.

    store.py    jobs in SQLite in the data folder (nothing only in memory)
    queue.py    Studio: the queue, the worker processes, live progress, cancel
    uploads.py  multipart uploads streamed into the data folder with a size limit
    app.py      FastAPI routes, the token check, server-sent events, the page
    worker.py   one job in a child process
    static/     the page (plain HTML, CSS and a script; no build step, no CDN)

Needs the ``serve`` extra: ``pip install "filmcolor[serve]"``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from pathlib import Path

from filmcolor.errors import ConfigError

DEFAULT_PORT: int = 8000
DEFAULT_QUEUE: int = 16
DEFAULT_MAX_UPLOAD: str = "4G"


def default_data_dir() -> Path:
    """Where the studio keeps its jobs unless ``--data`` says otherwise.

    ``$XDG_DATA_HOME/filmcolor/studio`` (``~/.local/share/...``) on Linux and other Unixes,
    ``~/Library/Application Support/filmcolor/studio`` on macOS, ``%LOCALAPPDATA%`` on Windows.
    """
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "filmcolor" / "studio"


def parse_size(text: str) -> int:
    """``"4G"``, ``"500M"``, ``"1.5GB"``, ``"4GiB"`` or plain bytes -> bytes (units of 1024).

    Raises:
        ConfigError: not a size.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m:
        raise ConfigError(f"--max-upload must be a size such as 4G, 500M or 1048576 (got {text!r})")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")
    if value < 1:
        raise ConfigError(f"--max-upload must be at least 1 byte (got {text!r})")
    return int(value)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    data: str | os.PathLike[str] | None = None,
    workers: int = 1,
    queue: int = DEFAULT_QUEUE,
    max_upload: int | str = DEFAULT_MAX_UPLOAD,
    token: str | None = None,
    chunk_frames: int | None = None,
    log_level: str = "warning",
) -> None:
    """Run the studio until Ctrl-C or SIGTERM (which stop its jobs so that they resume).

    Raises:
        ConfigError: a bad option, or no ``token`` for a host that is not a loopback address.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {workers})")
    if queue < 0:
        raise ConfigError(f"--queue must be >= 0 (got {queue})")
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--token is required when --host is not a loopback address (got {host}): anyone "
            "who can reach the port could otherwise use the server"
        )
    try:
        import uvicorn

        from filmcolor.serve.app import create_app
        from filmcolor.serve.queue import Studio
    except ImportError as exc:
        raise ConfigError(
            f'the web studio needs the serve extra: pip install "filmcolor[serve]" ({exc.name} '
            "is missing)"
        ) from None
    limit = parse_size(max_upload) if isinstance(max_upload, str) else int(max_upload)
    folder = Path(data) if data else default_data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--data {folder}: cannot create it: {exc.strerror or exc}") from None
    job_settings = {"chunk_frames": chunk_frames} if chunk_frames else {}
    studio = Studio(folder, workers=workers, queue=queue, job_settings=job_settings)
    app = create_app(studio, max_upload=limit, token=token)
    shown = f"[{host}]" if ":" in host else host
    print(f"filmcolor studio on http://{shown}:{port}/  (data: {folder}; Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)
