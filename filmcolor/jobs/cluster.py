"""Chunks on a Ray cluster: :class:`RayExecutor` (``--ray ADDRESS``, #16).

The engine plans the film once and records every finished chunk in the manifest, as for a local
run; this executor only decides where a chunk runs. Each chunk is one Ray task (``num_gpus=1``
where the cluster has GPUs, else one CPU), so Ray's scheduler spreads chunks over the nodes,
retries a task whose worker process or node died (``max_retries``), and an autoscaler can add
machines. A chunk's file is written under a temporary name and renamed, so a retried chunk is
written once, whole.

Two data layouts (``storage``):

* ``"shared"``: every node sees the source and the job folder at the same paths (NFS, a
  cluster file system, one machine). A worker reads the frames it needs from the source and
  writes its chunk file straight into the job folder; only the small task and its result travel.
* ``"object-store"``: nodes share nothing but Ray. The driver puts the source (and guidance
  files) in Ray's object store once per film; a worker copies them to a local scratch folder
  (once per node), colours its chunk there and returns the chunk file's bytes, which the driver
  writes into the job folder (synced, renamed). Costs one transfer of the film per node and
  one of each chunk back.

Identical frames. A worker process uses as many intra-op threads as the driver would (Ray
starts workers with one): PyTorch's CPU kernels sum in a different order with another thread
count, which moved a/b by ~3e-7 and could change an encoded bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from filmcolor.config import RAY_STORAGE
from filmcolor.errors import ConfigError, FilmcolorError
from filmcolor.jobs.chunk import ChunkResult, build_job_colorizer, run_chunk
from filmcolor.jobs.executor import ChunkOutcome, ChunkTask, Executor
from filmcolor.jobs.folder import CHUNK_SUFFIX
from filmcolor.jobs.manifest import commit_file

MAX_RETRIES: int = 3
"""Times Ray reruns a chunk whose worker process or node was lost."""


def init_ray(address: str) -> None:
    """Connect to (or, for ``"local"``, start) a Ray runtime, once per process.

    Raises:
        ConfigError: Ray is not installed, or the address cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            'Ray is not installed: pip install "filmcolor[ray]" (or run without --ray)'
        ) from None
    if ray.is_initialized():
        return
    _probe(address)
    try:
        # "local" starts a runtime on this machine, even where RAY_ADDRESS names a cluster (Ray
        # resolves address=None through it); anything else is ray.init's own address ("auto",
        # "ray://host:10001", "host:6379").
        ray.init(address=address, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {first}") from None


PROBE_TIMEOUT_S: float = 5.0
"""Seconds to wait for a cluster's port to answer before giving up on it."""


def _probe(address: str) -> None:
    """Fail at once on a ``host:port`` nobody listens on.

    ``ray.init`` retries an unreachable head for about 14 minutes (20 attempts, measured here)
    before it gives up; a mistyped address deserves one line now.

    Raises:
        ConfigError: the port does not answer within :data:`PROBE_TIMEOUT_S`.
    """
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or "/" in target:
        return  # "local", "auto": Ray's own resolution, which fails fast
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc} (is Ray "
            "running there? `ray status` on the head says)"
        ) from None


@dataclass(frozen=True)
class _Shipped:
    """Files of a job put in the object store: name -> object ref, and their digest."""

    refs: dict
    key: str


_colorizers: dict = {}
"""Per worker process: the model stage of each job seen (a worker runs many chunks)."""


def _worker_colorizer(task: ChunkTask, local: ChunkTask | None = None):
    """The model stage for ``task``'s job, built once per worker process (from ``local``, the
    task with this node's copies of the files, where the files were shipped)."""
    key = (str(task.spec.job_dir), repr(task.spec.config))
    colorizer = _colorizers.get(key)
    if colorizer is None:
        _colorizers.clear()  # one job at a time per worker is the common case; bound memory
        built = local or task
        colorizer = build_job_colorizer(built.spec, built.plan)
        _colorizers[key] = colorizer
    elif colorizer.guide is not None:
        colorizer.guide.set_cuts(task.plan.cuts)
    return colorizer


def _colour_shared(task: ChunkTask, threads: int) -> ChunkResult:
    """Ray task body, shared file system: the chunk file goes straight into the job folder."""
    import torch

    torch.set_num_threads(threads)
    return run_chunk(task.spec, task.plan, task.index, _worker_colorizer(task))


def _materialise(shipped: _Shipped) -> Path:
    """Write the shipped files to this node's scratch folder (once per node); return it."""
    import ray

    folder = Path(tempfile.gettempdir()) / f"filmcolor-ray-{shipped.key}"
    done = folder / ".complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name, ref in shipped.refs.items():
            data = ray.get(ref)
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
        done.touch()
    return folder


def _colour_shipped(task: ChunkTask, threads: int, shipped: _Shipped, files: dict) -> tuple:
    """Ray task body, object store: colour in a local scratch folder, return the file's bytes."""
    import torch

    torch.set_num_threads(threads)
    folder = _materialise(shipped)
    cfg = task.spec.config
    local = {orig: str(folder / name) for orig, name in files.items()}
    refs = tuple(_relocate_reference(r, local) for r in cfg.references)
    hints = local.get(str(cfg.hints)) if cfg.hints is not None else None
    job_dir = Path(tempfile.mkdtemp(prefix="filmcolor-chunk-"))
    try:
        spec = replace(task.spec, source=Path(local[str(task.spec.source)]), job_dir=job_dir,
                       config=replace(cfg, references=refs, hints=hints))
        local_task = ChunkTask(spec, task.plan, task.index)
        result = run_chunk(spec, task.plan, task.index, _worker_colorizer(task, local_task))
        data = (job_dir / task.plan.chunks[task.index].filename(CHUNK_SUFFIX)).read_bytes()
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    return result, data


def _relocate_reference(text: str, local: dict) -> str:
    from filmcolor.guide.spec import ReferenceSpec, parse_reference

    ref = parse_reference(text)
    return str(ReferenceSpec(Path(local[str(ref.path)]), ref.at))


def _guidance_files(cfg) -> list[str]:
    from filmcolor.guide.spec import parse_reference

    files = [str(parse_reference(r).path) for r in cfg.references]
    if cfg.hints is not None:
        files.append(str(cfg.hints))
    return files


class RayExecutor(Executor):
    """Runs each chunk as a Ray task (see the module docstring).

    Args:
        address: ``"local"`` (start a runtime here) or an address for ``ray.init``.
        storage: ``"shared"`` or ``"object-store"``.
        max_retries: reruns of a chunk whose worker or node was lost.
    """

    def __init__(self, address: str = "local", storage: str = "shared",
                 max_retries: int = MAX_RETRIES) -> None:
        if storage not in RAY_STORAGE:
            raise ConfigError(f"--ray-storage must be one of {', '.join(RAY_STORAGE)} "
                              f"(got {storage!r})")
        self.address = address
        self.storage = storage
        self.max_retries = max_retries
        self.slots = 1
        self._pending: dict = {}
        self._remote = None
        self._shipped: dict[str, tuple[_Shipped, dict]] = {}

    def open(self, report) -> None:
        import ray
        import torch

        init_ray(self.address)
        super().open(report)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        # One chunk per GPU where there are GPUs, else one per CPU; a few more in flight keep
        # every worker busy while the driver records finished chunks.
        self._options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        self.slots = max(1, gpus or int(resources.get("CPU", 1)))
        self._threads = torch.get_num_threads()
        body = _colour_shared if self.storage == "shared" else _colour_shipped
        self._remote = ray.remote(max_retries=self.max_retries)(body)

    def _ship(self, task: ChunkTask) -> tuple[_Shipped, dict]:
        import ray

        spec = task.spec
        key = str(spec.job_dir)
        if key not in self._shipped:
            paths = [str(spec.source), *_guidance_files(spec.config)]
            digest = hashlib.sha256()
            files: dict[str, str] = {}
            refs: dict[str, object] = {}
            for i, p in enumerate(paths):
                data = Path(p).read_bytes()
                digest.update(data)
                name = f"{i}{Path(p).suffix}"
                files[p] = name
                refs[name] = ray.put(data)
            self._shipped[key] = (_Shipped(refs, digest.hexdigest()[:16]), files)
        return self._shipped[key]

    def submit(self, task: ChunkTask) -> None:
        assert self._remote is not None, "open() first"
        remote = self._remote.options(**self._options)
        if self.storage == "shared":
            ref = remote.remote(task, self._threads)
        else:
            shipped, files = self._ship(task)
            ref = remote.remote(task, self._threads, shipped, files)
        self._pending[ref] = task

    def next_done(self) -> ChunkOutcome:
        import ray

        ready, _ = ray.wait(list(self._pending), num_returns=1)
        task = self._pending.pop(ready[0])
        try:
            value = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, FilmcolorError):
                # The worker's own typed error (its one line and exit code), not Ray's wrapper.
                return ChunkOutcome(task.index, error=cause)
            text = str(cause if cause is not None else exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            return ChunkOutcome(task.index, error=FilmcolorError(
                f"chunk {task.index} failed on the cluster: {first}"))
        except ray.exceptions.RayError as exc:  # worker or node lost beyond the retries
            return ChunkOutcome(task.index, error=FilmcolorError(
                f"chunk {task.index} failed on the cluster: {str(exc).splitlines()[0]}"))
        if self.storage == "shared":
            return ChunkOutcome(task.index, result=value)
        result, data = value
        _write_chunk(task.spec.job_dir / task.plan.chunks[task.index].filename(CHUNK_SUFFIX), data)
        return ChunkOutcome(task.index, result=result)

    def close(self) -> None:
        import ray

        for ref in list(self._pending):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self._pending.clear()


def _write_chunk(path: Path, data: bytes) -> None:
    """A chunk file shipped back from a worker, written as a local chunk is (tmp, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        commit_file(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
