"""What a job is, as data: its spec (source, output, settings) and its plan (cuts, chunks).

Both serialise to the job's manifest (:mod:`filmcolor.jobs.manifest`): the spec as the run's
settings and the settings that change pixels, the plan as the frame count, the shot starts and
the chunks. A chunk can therefore be coloured by any process that has the spec, the plan and the
chunk's index (:func:`filmcolor.jobs.chunk.run_chunk`), which is what lets an executor send
chunks elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from filmcolor.config import RunConfig, StrPath
from filmcolor.jobs.folder import default_job_dir
from filmcolor.jobs.manifest import Chunk, JobManifest


@dataclass
class JobSpec:
    """One film to colour: what goes in, what comes out, and how.

    Attributes:
        config: the run's settings (guidance included).
        source: the film.
        output: the final file.
        job_dir: the job's folder (chunks, manifest, lock).
        info: the source as probed (:class:`~filmcolor.io.probe.SourceInfo`); not stored, a
            resumed run probes again.
    """

    config: RunConfig
    source: Path
    output: Path
    job_dir: Path
    info: object = field(default=None, repr=False, compare=False)

    @classmethod
    def create(cls, cfg: RunConfig, source: StrPath, output: StrPath, info=None) -> JobSpec:
        """The spec of a run: ``cfg.job_dir``, else the default beside the output.

        ``info`` is the source's :class:`~filmcolor.io.probe.SourceInfo` (probed when ``None``).

        Raises:
            SourceOpenError: ``info`` is ``None`` and the source cannot be probed.
        """
        source, output = Path(source), Path(output)
        if info is None:
            from filmcolor.io.probe import probe

            info = probe(source)
        job_dir = Path(cfg.job_dir) if cfg.job_dir else default_job_dir(output)
        return cls(cfg, source, output, job_dir, info)

    def stored_config(self) -> dict:
        """The run's settings as JSON values, with absolute paths, for ``filmcolor resume``."""
        cfg = self.config
        data = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in vars(cfg).items()}
        data.update(input=str(self.source.resolve()), output=str(self.output.resolve()),
                    job_dir=str(self.job_dir.resolve()))
        if cfg.weights is not None:
            data["weights"] = str(Path(cfg.weights).resolve())
        if cfg.references:
            from filmcolor.guide.spec import ReferenceSpec, parse_reference

            refs = [parse_reference(r) for r in cfg.references]
            data["references"] = [str(ReferenceSpec(r.path.resolve(), r.at)) for r in refs]
        if cfg.hints is not None:
            data["hints"] = str(Path(cfg.hints).resolve())
        # Not --restart: `resume` must never throw finished chunks away. --overwrite is kept, so
        # a job started to replace an old output can be resumed while that output is still there.
        data.pop("restart", None)
        return data


@dataclass
class Plan:
    """How a film is cut into chunks (made once, by :func:`filmcolor.jobs.plan.plan_job`).

    Attributes:
        total_frames: frames in the film.
        cuts: shot starts (``0`` included).
        chunks: the chunks, in order, covering ``[0, total_frames)``.
    """

    total_frames: int
    cuts: list[int]
    chunks: list[Chunk]

    @classmethod
    def of(cls, manifest: JobManifest) -> Plan:
        """The plan a manifest records (its chunks are shared, not copied)."""
        return cls(manifest.total_frames or 0, list(manifest.cuts or []), manifest.chunks)


def job_settings(cfg: RunConfig, colorizer=None) -> dict:
    """Settings a resumed job must share with its start to give the same pixels.

    ``RunConfig.pixel_settings()`` plus the resolved model name, the sha256 of its weights file,
    the batch size (batches shift a/b by a few ulp on the CPU), the chunk size (chunks start
    new GOPs, so the encoded frames depend on the plan), and the device type the model runs on
    with its precision: CUDA runs in float16 and the CPU in float32, so the same frame gets
    slightly different colours, and a job resumed elsewhere would change at a chunk seam.

    Args:
        cfg: the run's settings.
        colorizer: the built :class:`~filmcolor.infer.colorize.Colorizer`: its resolved
            ``device`` and ``half``, and the digest its model's weights were loaded with.
            ``None`` (a status tool, a test) resolves and hashes them here.
    """
    from filmcolor.models.digests import sha256sum
    from filmcolor.models.registry import DEFAULT_MODEL, get_model_cfg
    from filmcolor.models.weights import find_weights

    settings = dict(cfg.pixel_settings())
    name = cfg.model or DEFAULT_MODEL
    settings["model"] = name
    # The digest the weights were loaded with: hashing them again could read another file.
    known = getattr(getattr(colorizer, "model", None), "weights_sha256", None)
    if known is None:
        mcfg = get_model_cfg(name)
        weights = None
        if cfg.weights is not None:
            weights = Path(cfg.weights)
        elif mcfg.weights is not None:
            weights = find_weights(str(mcfg.weights))
        known = sha256sum(weights) if weights is not None else None
    settings["weights_sha256"] = known
    settings["batch_size"] = cfg.batch_size
    settings["chunk_frames"] = cfg.chunk_frames
    if colorizer is not None:
        device, half = colorizer.device.type, colorizer.half
    else:
        from filmcolor.infer.device import resolve_device

        device = resolve_device(cfg.device).type
        half = device == "cuda"  # Colorizer's default
    # The type only ("cuda", not "cuda:1"): an index names a slot, not a kind of chip. Two GPU
    # models may still differ in the last bits of float16; that is not detected.
    settings["device"] = device
    settings["dtype"] = "float16" if half else "float32"
    if cfg.references or cfg.hints:
        from filmcolor.guide.spec import load_guidance

        # Files by name, position and content: other guidance is other pixels.
        settings["guidance"] = load_guidance(cfg.references, cfg.hints).settings()
    return settings


def load_config(job_dir: Path, quiet: bool = False) -> RunConfig:
    """The :class:`RunConfig` a job was started with (what ``filmcolor resume`` runs).

    Raises:
        JobStateError: no readable manifest in ``job_dir``.
    """
    from dataclasses import fields

    manifest = JobManifest.load(job_dir)
    # Options a newer filmcolor recorded and this one lacks run with this one's defaults; the
    # settings that change pixels are compared on their own (JobManifest.mismatch).
    known = {f.name for f in fields(RunConfig)}
    stored = {k: v for k, v in manifest.config.items() if k in known}
    return RunConfig(**{**stored, "quiet": quiet})
