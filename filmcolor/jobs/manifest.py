"""The job manifest: what a resumable job is, how far it got, and the lock that guards it (#4).

A job directory holds ``manifest.json`` (this module), a ``lock`` file, and the chunk files
(``chunk_0007.mp4`` once complete, ``chunk_0007.mp4.tmp`` while being written), plus
``joined-<pid>.mp4.tmp`` during the join; a job deletes nothing else there. The manifest is
the single source of truth for resuming: a chunk counts as done only once its file has been
renamed into place *and* the manifest saying so has been written, so a crash between the two
just redoes that chunk.

Every write is atomic (temporary file, ``fsync``, ``os.replace``, then an ``fsync`` of the
folder), so a SIGKILL or a power cut leaves either the old manifest or the new one, never a torn
one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filmcolor.config import StrPath
from filmcolor.errors import JobStateError

MANIFEST_NAME: str = "manifest.json"
"""File name of the manifest inside a job directory."""

LOCK_NAME: str = "lock"
"""File a running job holds an exclusive ``flock`` on."""

FORMAT_VERSION: int = 1
"""Bumped when the manifest's layout changes incompatibly."""

HASH_SPAN: int = 1 << 20
"""Bytes hashed at the head and at the tail of the source (a full hash of a film takes minutes)."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


DIGEST_KEY: str = "digest"
"""Key of the manifest's seal: the sha256 of the rest of its content (see ``to_json``)."""


def _digest(data: dict) -> str:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def source_identity(path: StrPath) -> dict:
    """Size, modification time and a sha256 of the first and last :data:`HASH_SPAN` bytes."""
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(HASH_SPAN))
        if st.st_size > HASH_SPAN:
            f.seek(max(HASH_SPAN, st.st_size - HASH_SPAN))
            h.update(f.read(HASH_SPAN))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head_tail": h.hexdigest()}


NOT_RECORDED: object = object()
"""Stands for a setting the manifest has no entry for (a job started by an older filmcolor,
before that setting was recorded, e.g. ``device`` and ``dtype``)."""


def describe_change(field_name: str, old: object, new: object) -> str:
    """``"smoothing 0.5 -> 1.0"``: one changed item, for the one-line refusal (``None``, an
    unset option, reads as ``default``; :data:`NOT_RECORDED` as ``not recorded``)."""

    def show(v: object) -> str:
        if v is NOT_RECORDED:
            return "not recorded"
        return "default" if v is None else repr(v)

    if field_name == "guidance":
        # Files with their digests: name what changed, not two screens of hex.
        return f"guidance {_guidance_text(old)} -> {_guidance_text(new)}"
    return f"{field_name} {show(old)} -> {show(new)}"


def _guidance_text(v: object) -> str:
    """``"ref a.jpg@2.0 (3f9a21c0), hints h.json (77ab01de)"`` from recorded guidance settings."""
    if not isinstance(v, dict) or not v:
        return "none"
    parts = [
        f"ref {r.get('file')}" + (f"@{r['at']}" if r.get("at") else "") + f" ({str(r.get('sha256'))[:8]})"
        for r in v.get("references", [])
    ]
    if v.get("hints"):
        parts.append(f"hints {v['hints'].get('file')} ({str(v['hints'].get('sha256'))[:8]})")
    return ", ".join(parts)


@dataclass
class Chunk:
    """One chunk of a job: frames ``[start, end)`` written, ``[decode_start, decode_end)`` decoded.

    The extra frames decoded on each side are the warm-up context (the smoother's radius,
    rounded out to whole model batches) that make the chunk's frames bit-identical to those of
    an uninterrupted run; they are coloured but not written.

    Attributes:
        index: position in the plan (0-based); also names the file.
        start, end: frames written to this chunk's file.
        decode_start, decode_end: frames decoded and run through the stages.
        seek_pts: pts of frame ``decode_start`` (from the planning pass), so decoding can seek.
        done: the chunk's file is complete and renamed into place.
        seconds: wall time the chunk took (for ``status``' estimate).
        bytes: size of the chunk's file.
        first_pts, last_pts, duration: from the encoder, to verify the joined film.
    """

    index: int
    start: int
    end: int
    decode_start: int
    decode_end: int
    seek_pts: int | None = None
    done: bool = False
    seconds: float = 0.0
    bytes: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    duration: float | None = None

    @property
    def frames(self) -> int:
        return self.end - self.start

    def filename(self, suffix: str = ".mp4") -> str:
        """``chunk_0007.mp4``: the chunk's file name once complete."""
        return f"chunk_{self.index:04d}{suffix}"


@dataclass
class JobManifest:
    """Everything needed to resume a job and to refuse resuming it with other inputs.

    Attributes:
        source: :func:`source_identity` of the input.
        settings: the settings that change output pixels (compared on resume).
        config: every :class:`~filmcolor.config.RunConfig` field, so ``resume`` needs no options.
        total_frames: frames in the film (``None`` until the planning pass has run).
        cuts: shot starts found by the planning pass (``0`` included).
        chunks: the plan.
        created: Unix time the job was created.
        version: :data:`FORMAT_VERSION`.
    """

    source: dict
    settings: dict
    config: dict
    total_frames: int | None = None
    cuts: list[int] | None = None
    chunks: list[Chunk] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    version: int = FORMAT_VERSION

    @property
    def planned(self) -> bool:
        return self.total_frames is not None and bool(self.chunks)

    @property
    def frames_done(self) -> int:
        return sum(c.frames for c in self.chunks if c.done)

    @property
    def chunks_done(self) -> int:
        return sum(1 for c in self.chunks if c.done)

    def seconds_left(self) -> float | None:
        """Estimated seconds to finish, from the recorded speed of finished chunks."""
        done = [c for c in self.chunks if c.done and c.seconds > 0]
        if not done or self.total_frames is None:
            return None
        per_frame = sum(c.seconds for c in done) / sum(c.frames for c in done)
        return per_frame * (self.total_frames - self.frames_done)

    def mismatch(self, source: dict, settings: dict) -> str | None:
        """One line naming what differs from ``source``/``settings``, or ``None`` if nothing.

        The modification time alone is not a change when size and content hash agree (a copy
        or a ``touch`` does not change a single pixel).
        """
        for key in ("size", "sha256_head_tail"):
            if self.source.get(key) != source.get(key):
                what = "size" if key == "size" else "content"
                return f"the source file changed ({what}) since the job started"
        keys = sorted(set(self.settings) | set(settings))
        changes = [
            describe_change(
                k, self.settings.get(k, NOT_RECORDED), settings.get(k, NOT_RECORDED)
            )
            for k in keys
            if self.settings.get(k, NOT_RECORDED) != settings.get(k, NOT_RECORDED)
        ]
        if not changes:
            return None
        line = "settings changed since the job started: " + ", ".join(changes)
        if any(k not in self.settings for k in settings):
            # An older filmcolor did not record every setting (the device and precision came
            # later): the job's pixels cannot be proven to match, so it is refused, but say why.
            line += " (the job was started by an older filmcolor)"
        return line

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> str:
        """The manifest as JSON, sealed with a sha256 of its own content (``digest``)."""
        data = asdict(self)
        data[DIGEST_KEY] = _digest(data)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobManifest:
        """Parse :meth:`to_json`'s output.

        Raises:
            ValueError: not JSON, or the content does not match its ``digest`` (edited by hand:
                a resume would trust timing and plan fields that no check can verify).
            TypeError: not a manifest's fields.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("the manifest is not a JSON object")
        digest = data.pop(DIGEST_KEY, None)
        # A manifest written before the seal existed has none and is read as it is.
        if digest is not None and digest != _digest(data):
            raise ValueError("its content does not match its digest: edited by hand?")
        chunks = [Chunk(**c) for c in data.pop("chunks", [])]
        return cls(**data, chunks=chunks)

    def plan_problem(self) -> str | None:
        """What makes the recorded job impossible (a damaged or hand-edited manifest), or ``None``.

        Fields must have their types, and the chunks must be numbered in order and cover
        ``[0, total_frames)`` edge to edge, each decode range holding its chunk: a resume trusts
        the plan (the chunks left are coloured from it and the finished ones joined as they
        are), so a plan that does not add up would give a film with frames missing or twice.
        """
        for name in ("source", "settings", "config"):
            if not isinstance(getattr(self, name), dict):
                return f"{name} is not an object"
        if self.total_frames is not None and not (_is_int(self.total_frames)
                                                  and self.total_frames > 0):
            return f"total_frames is {self.total_frames!r}"
        if self.cuts is not None and not (
            isinstance(self.cuts, list) and all(_is_int(c) for c in self.cuts)
        ):
            return "cuts is not a list of frame numbers"
        if not self.chunks:
            return None
        if self.total_frames is None:
            return "chunks without a frame count"
        start = 0
        for i, c in enumerate(self.chunks):
            ints = (c.index, c.start, c.end, c.decode_start, c.decode_end, c.bytes)
            optional = (c.seek_pts, c.first_pts, c.last_pts)
            if (
                not all(_is_int(v) for v in ints)
                or not all(v is None or _is_int(v) for v in optional)
                or not isinstance(c.done, bool)
                or not _is_number(c.seconds)
                or not (c.duration is None or _is_number(c.duration))
            ):
                return f"chunk {i} has a field of the wrong type"
            if c.index != i:
                return f"chunk {i} is numbered {c.index}"
            if c.start != start or c.end <= c.start:
                return f"chunk {i} holds frames {c.start}-{c.end}, after frame {start}"
            if not (0 <= c.decode_start <= c.start and c.end <= c.decode_end <= self.total_frames):
                return f"chunk {i} decodes frames {c.decode_start}-{c.decode_end}"
            start = c.end
        if start != self.total_frames:
            return f"the chunks end at frame {start} of {self.total_frames}"
        return None

    def save(self, job_dir: StrPath) -> None:
        """Write ``manifest.json`` atomically (tmp + fsync + rename + fsync of the folder)."""
        folder = Path(job_dir)
        final = folder / MANIFEST_NAME
        tmp = folder / (MANIFEST_NAME + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            # A full disk fails the write or the fsync: the old manifest stays in force, and no
            # torn temporary is left behind.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(folder)

    @classmethod
    def load(cls, job_dir: StrPath) -> JobManifest:
        """Read a job's manifest.

        Raises:
            JobStateError: no manifest, or one that cannot be read.
        """
        path = Path(job_dir) / MANIFEST_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise JobStateError(f"no job in {job_dir} (no {MANIFEST_NAME})") from None
        try:
            # Decoded here, not by read_text: bytes that are not UTF-8 are a ValueError too.
            manifest = cls.from_json(raw.decode("utf-8"))
        except (ValueError, TypeError) as exc:
            why = (str(exc).splitlines() or [exc.__class__.__name__])[0][:120]
            raise JobStateError(
                f"the job manifest {path} is unreadable or was edited ({why}); "
                "run the command again with --restart"
            ) from exc
        if manifest.version != FORMAT_VERSION:
            raise JobStateError(
                f"the job in {job_dir} was made by another filmcolor version; use --restart"
            )
        problem = manifest.plan_problem()
        if problem is not None:
            raise JobStateError(
                f"the job manifest {path} is damaged or was edited ({problem}); "
                "run the command again with --restart"
            )
        return manifest


def commit_file(tmp: Path, final: Path) -> None:
    """Make a finished temporary durable and put it in place: fsync, rename, fsync the folder.

    After a crash at any point, ``final`` is either absent (or the old file) or complete.
    """
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def job_lock(job_dir: StrPath) -> Iterator[None]:
    """Hold an exclusive lock on a job directory for the whole run.

    ``flock`` is released by the kernel when the process dies, even by SIGKILL, so a stale lock
    never blocks a resume.

    Raises:
        JobStateError: another process holds the lock.
    """
    path = Path(job_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise JobStateError(
                f"the job in {job_dir} is in use by another filmcolor process (pid {owner}); "
                "wait for it to finish or stop it first"
            ) from None
        # The pid only names the holder in another process's refusal: a full disk must not
        # stop the job here (its first manifest write then says "disk full" in one line).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
