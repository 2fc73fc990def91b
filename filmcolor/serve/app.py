"""The studio's HTTP face: a JSON API, server-sent events and the page, over :class:`Studio`.

Routes (the README's "Web studio" has the table; ``/docs`` the OpenAPI):

    POST   /api/jobs                 upload + settings -> 202 {"id", "state", "position"}
    GET    /api/jobs                 every job
    GET    /api/jobs/{id}            one job's state and progress
    GET    /api/jobs/{id}/events     the same as server-sent events, until the job is over
    GET    /api/jobs/{id}/result     the coloured file (409 until done)
    GET    /api/jobs/{id}/preview    a side-by-side still (409 until done)
    DELETE /api/jobs/{id}            cancel and remove its files
    GET    /                         the page

An upload is refused before it is queued, with the status a client can act on: 429 and
``Retry-After`` when the queue is full (checked before the body is read, and again atomically
when the job is added), 413 over ``--max-upload``, 415 when filmcolor cannot read the file (it
is probed first), 400 for a bad setting, worded as the command line words it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from filmcolor.config import Setting, settings
from filmcolor.io.containers import IMAGE_SUFFIXES
from filmcolor.serve.queue import Studio
from filmcolor.serve.store import FINAL_STATES, JobRecord
from filmcolor.serve.uploads import Form, FormReceiver, UploadError

STATIC = Path(__file__).parent / "static"

TOKEN_COOKIE = "filmcolor_token"

_UPLOAD_SETTINGS: tuple[str, ...] = (
    "render_size", "vividness", "fade_unsure", "smoothing", "model", "temporal", "upsample", "scene_detect",
)
# Types, bounds and choices come from RunConfig's own metadata, so the studio checks and
# documents each setting exactly as the command line does, and a new bound cannot miss it.
_SETTINGS: dict[str, Setting] = {f.name: s for f, s in settings() if f.name in _UPLOAD_SETTINGS}

SETTING_FIELDS: dict[str, type] = {name: _SETTINGS[name].type for name in _UPLOAD_SETTINGS}
"""Run settings an upload may carry (RunConfig field names), with their types."""


def _setting_schema(s: Setting) -> dict:
    """The OpenAPI schema of one run setting of the upload form."""
    kind = {int: "integer", float: "number", str: "string", bool: "boolean"}[s.type]
    schema: dict = {"type": kind}
    if s.lo is not None:
        schema["minimum"] = s.lo
    if s.hi is not None:
        schema["maximum"] = s.hi
    if s.choices:
        schema["enum"] = list(s.choices)
    return schema

PREVIEW_FIELDS: tuple[str, ...] = ("start", "end", "side_by_side")
GUIDE_FIELDS: tuple[str, ...] = ("hints", "reference_at")
FILE_FIELDS: tuple[str, ...] = ("file", "reference")

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, ".png"),
    (b"II*\x00", 0, ".tif"),
    (b"MM\x00*", 0, ".tif"),
    (b"BM", 0, ".bmp"),
    (b"WEBP", 8, ".webp"),
)


def sniff_image_suffix(path: Path) -> str | None:
    """The still-image suffix the file's first bytes announce (None: not a still we read).

    A photo is stored and coloured under the suffix of what it is, whatever the client called
    it; the result keeps that format.
    """
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, offset, suffix in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return suffix
    return None


_ID = re.compile(r"^[0-9a-f]{16}$")
_DRAIN_LIMIT = 16 << 20  # a refused body this small is read to its end, so the client sees the answer


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _parse_bool(value: str, field: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise UploadError(400, f"{field} must be true or false (got {value!r})")


def parse_settings(form: Form) -> dict:
    """The run settings of a form, checked as the command line checks them.

    Raises:
        UploadError: 400 with the CLI's one-line message.
    """
    from filmcolor.config import RunConfig
    from filmcolor.errors import FilmcolorError

    unknown = set(form.fields) - set(SETTING_FIELDS) - set(PREVIEW_FIELDS) - set(GUIDE_FIELDS)
    unknown |= {f.field for f in form.files} - set(FILE_FIELDS)
    if unknown:
        raise UploadError(400, f"unknown form field {min(unknown)!r}")
    out: dict = {}
    for name, cast in SETTING_FIELDS.items():
        values = form.fields.get(name)
        if not values or values[-1].strip() == "":
            continue
        raw = values[-1].strip()
        try:
            if cast is bool:
                out[name] = _parse_bool(raw, _flag(name))
            else:
                out[name] = cast(raw)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(cast, "text")
            raise UploadError(400, f"{_flag(name)} must be {kind} (got {raw!r})") from None
    try:
        RunConfig(input=".", **out)  # bounds and choices, with the CLI's messages
        if "model" in out:
            from filmcolor.models.registry import get_model_cfg

            get_model_cfg(out["model"])
    except FilmcolorError as exc:
        raise UploadError(400, str(exc)) from None
    return out


def _field(form: Form, name: str) -> str | None:
    values = form.fields.get(name)
    return values[-1].strip() if values and values[-1].strip() else None


def _display_name(name: str) -> str:
    """The client's file name, reduced to a safe display name (never used as a path)."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "_", base).strip(" .") or "upload"
    return base[:120]


class Api:
    """Builds :class:`Studio` jobs out of forms (the HTTP-free part of ``POST /api/jobs``)."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def accept(self, form: Form) -> JobRecord:
        """Check a received form and move its files into place; the job, not yet queued.

        Whatever is refused leaves no file behind.

        Raises:
            UploadError: 400 (settings, guidance, fields), 415 (not a readable image or film).
        """
        moves: list[tuple[Path, Path]] = []
        try:
            return self._accept(form, moves)
        except BaseException:
            self._undo(moves)
            raise

    def _accept(self, form: Form, moves: list[tuple[Path, Path]]) -> JobRecord:
        # Each file moved into place is appended to ``moves``; accept() removes them all if
        # this raises, so no refusal here needs to clean up after itself.
        from filmcolor.errors import FilmcolorError, SourceOpenError
        from filmcolor.io.probe import probe

        main = [f for f in form.files if f.field == "file"]
        if len(main) != 1:
            raise UploadError(400, "send exactly one file in the form field 'file'")
        upload = main[0]
        if upload.size == 0:
            raise UploadError(415, f"'{_display_name(upload.filename)}' is empty")
        settings = parse_settings(form)
        job_id = secrets.token_hex(8)
        data = self.studio.data
        name = _display_name(upload.filename)
        # The stored name is generated; its suffix comes from the content for a photo (what
        # decides how filmcolor reads it) and from the client's name for a film (FFmpeg probes
        # the content anyway).
        suffix = sniff_image_suffix(upload.path)
        if suffix is None:
            suffix = Path(name).suffix.lower()
            suffix = "" if suffix in IMAGE_SUFFIXES or not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else suffix
        upload_path = data / "uploads" / f"{job_id}{suffix}"
        upload.path.replace(upload_path)
        moves.append((upload.path, upload_path))
        try:
            info = probe(upload_path)
        except FilmcolorError as exc:
            if isinstance(exc, SourceOpenError):
                exc = SourceOpenError(f"'{name}' is not an image or a film filmcolor can read")
            raise UploadError(415, str(exc)) from None
        start, end = _field(form, "start"), _field(form, "end")
        side_by_side = _parse_bool(_field(form, "side_by_side") or "", "side_by_side")
        kind = "photo" if info.kind == "image" else ("preview" if start or end else "film")
        if info.kind == "image" and (start or end):
            raise UploadError(400, "start and end (a preview) need a film, and this is a photo")
        preview = None
        if kind == "photo":
            result = data / "results" / f"{job_id}.colour{suffix}"
        elif kind == "film":
            from filmcolor.errors import OutputError
            from filmcolor.io.output import choose_video_output

            try:
                chosen = choose_video_output(upload_path, info, None)
            except OutputError as exc:
                raise UploadError(415, str(exc)) from None
            result = data / "results" / f"{job_id}.colour{chosen.suffix}"
        else:
            preview = {"start": start, "end": end, "side_by_side": side_by_side}
            result = data / "results" / f"{job_id}.preview.mp4"
        # Guidance: reference stills (each may name the moment of its shot) and a hints list.
        refs = [f for f in form.files if f.field == "reference"]
        ats = form.fields.get("reference_at", [])
        ref_files = []
        for k, ref in enumerate(refs):
            rsuffix = sniff_image_suffix(ref.path) or Path(ref.filename).suffix.lower()
            rsuffix = rsuffix if rsuffix in IMAGE_SUFFIXES else ""
            dst = data / "uploads" / f"{job_id}.ref{k}{rsuffix}"
            moves.append((ref.path, dst))
            at = ats[k].strip() if k < len(ats) and ats[k].strip() else None
            ref_files.append({"path": self.studio.rel(dst), "at": at})
        hints = _field(form, "hints")
        hints_path = None
        if hints is not None:
            hints_path = data / "uploads" / f"{job_id}.hints.json"
        # Check the guidance as a run would, on the files where the job will use them.
        for src, dst in moves[1:]:
            src.replace(dst)
        if hints_path is not None:
            try:
                parsed = json.loads(hints)
            except ValueError as exc:
                raise UploadError(400, f"hints: not valid JSON: {exc}") from None
            if isinstance(parsed, list):
                parsed = {"hints": parsed}
            moves.append((hints_path, hints_path))  # removed again if the job is refused
            hints_path.write_text(json.dumps(parsed), encoding="utf-8")
        try:
            if ref_files or hints_path is not None:
                from filmcolor.guide.spec import load_guidance

                load_guidance(
                    [str(data / r["path"]) + (f"@{r['at']}" if r["at"] else "") for r in ref_files],
                    hints_path,
                )
        except FilmcolorError as exc:
            message = str(exc)
            for ref, stored in zip(refs, ref_files, strict=True):
                message = message.replace(str(data / stored["path"]), _display_name(ref.filename))
            if hints_path is not None:
                message = message.replace(str(hints_path), "hints")
            message = message.replace(str(data / "uploads") + "/", "")
            raise UploadError(400, message) from None
        if ref_files:
            settings["reference_files"] = ref_files
        if hints_path is not None:
            settings["hints"] = self.studio.rel(hints_path)
        frames_total = 1 if kind == "photo" else info.frame_count
        return JobRecord(
            id=job_id, kind=kind, state="queued", name=name,
            upload=self.studio.rel(upload_path), result=self.studio.rel(result),
            settings=settings, preview=preview, frames_total=frames_total,
        )

    @staticmethod
    def _undo(moves: list[tuple[Path, Path]]) -> None:
        for _, dst in moves:
            dst.unlink(missing_ok=True)


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "a photo or a film"},
                **{name: _setting_schema(_SETTINGS[name]) for name in _UPLOAD_SETTINGS},
                "start": {"type": "string", "description": "preview: start (HH:MM:SS.fff, "
                          "seconds or 17280f)"},
                "end": {"type": "string", "description": "preview: end (exclusive)"},
                "side_by_side": {"type": "boolean", "description": "preview: original | colour"},
                "reference": {"type": "array", "items": {"type": "string", "format": "binary"},
                              "description": "colour reference stills"},
                "reference_at": {"type": "array", "items": {"type": "string"},
                                 "description": "for each reference, a moment of its shot "
                                 "(empty: every shot)"},
                "hints": {"type": "string", "description": 'JSON: [{"x": 0.4, "y": 0.6, '
                          '"color": "#a03020", "frame": 0}]'},
            },
        }}},
    },
    "responses": {
        "202": {"description": "queued: {\"id\", \"state\": \"queued\", \"position\"}"},
        "400": {"description": "a bad setting (the command line's message)"},
        "413": {"description": "larger than --max-upload"},
        "415": {"description": "not an image or a film filmcolor can read"},
        "429": {"description": "the queue is full; see Retry-After"},
    },
}


def create_app(studio: Studio, max_upload: int = 4 << 30, token: str | None = None) -> FastAPI:
    """The FastAPI application over ``studio`` (started and stopped with the app).

    Args:
        studio: the queue and data folder.
        max_upload: most bytes of files in one upload.
        token: when set, every request must carry it (``Authorization: Bearer``, the
            ``filmcolor_token`` cookie that ``/?token=`` sets, or a ``token`` query parameter).
    """
    api = Api(studio)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        studio.start()
        try:
            yield
        finally:
            # In a thread: stopping waits for the jobs' processes to stop cleanly.
            await asyncio.to_thread(studio.stop)

    app = FastAPI(title="filmcolor studio", version=_version(), lifespan=lifespan,
                  description="Colour black-and-white photos and films. See the README's "
                              "'Web studio'.")

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        given = request.headers.get("authorization", "")
        given = given[7:] if given.lower().startswith("bearer ") else ""
        given = given or request.cookies.get(TOKEN_COOKIE, "") or request.query_params.get("token", "")
        return hmac.compare_digest(given.encode(), token.encode())

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if not authorised(request):
            if request.url.path == "/":
                return HTMLResponse(
                    "<!doctype html><title>filmcolor studio</title><p>This studio needs its "
                    "token: open <code>/?token=...</code> with the token it was started with.",
                    status_code=401)
            return JSONResponse({"detail": "missing or wrong token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        response = await call_next(request)
        if token is not None and request.query_params.get("token") and request.url.path == "/":
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    def job_or_404(job_id: str) -> JobRecord:
        job = studio.store.get(job_id) if _ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    async def drain(request: Request) -> None:
        """Read a small refused body to its end, so the client is listening for the answer."""
        length = int(request.headers.get("content-length") or 0)
        if 0 < length <= _DRAIN_LIMIT:
            async for _ in request.stream():
                pass

    def queue_full() -> JSONResponse:
        wait = studio.retry_after()
        return JSONResponse({"detail": f"the queue is full ({studio.queue_size} jobs waiting); "
                             f"try again in {wait} s"}, status_code=429,
                            headers={"Retry-After": str(wait)})

    def cannot_store(exc: OSError) -> JSONResponse:
        return JSONResponse({"detail": f"the server cannot store the upload: "
                             f"{exc.strerror or exc}"}, status_code=507)

    @app.post("/api/jobs", status_code=202, openapi_extra=_UPLOAD_DOC,
              summary="Upload a photo or film to colour")
    async def create_job(request: Request):
        if studio.store.count("queued") >= studio.queue_size:
            await drain(request)
            return queue_full()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload + (1 << 20):
            return JSONResponse({"detail": f"the upload is larger than this server accepts "
                                 f"({_size(max_upload)})"}, status_code=413,
                                headers={"Connection": "close"})
        try:
            receiver = FormReceiver(request.headers.get("content-type", ""),
                                    studio.data / "incoming", max_upload)
        except UploadError as exc:
            await drain(request)
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        try:
            async for chunk in request.stream():
                receiver.write(chunk)
            form = receiver.finish()
        except UploadError as exc:
            msg = str(exc) + (f" ({_size(max_upload)})" if exc.status == 413 else "")
            return JSONResponse({"detail": msg}, status_code=exc.status,
                                headers={"Connection": "close"} if exc.status == 413 else None)
        except OSError as exc:  # e.g. the disk filled while a part was being closed
            receiver.close()
            receiver.form.discard()
            return cannot_store(exc)
        except BaseException:  # the client went away mid-upload: keep nothing of it
            receiver.close()
            receiver.form.discard()
            raise
        try:
            job = await asyncio.to_thread(api.accept, form)
        except UploadError as exc:
            form.discard()
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        except OSError as exc:
            form.discard()
            return cannot_store(exc)
        position = await asyncio.to_thread(studio.submit, job)
        if position is None:  # filled up while this upload arrived
            await asyncio.to_thread(studio.remove_files, job)
            return queue_full()
        return JSONResponse({"id": job.id, "state": "queued", "position": position},
                            status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs", summary="Every job, oldest first")
    def list_jobs() -> dict:
        positions = studio.store.positions()
        return {
            "jobs": [studio.view(j, positions) for j in studio.store.all()],
            "workers": studio.workers,
            "queue": studio.queue_size,
            "max_upload": max_upload,
        }

    @app.get("/api/jobs/{job_id}", summary="One job's state and progress")
    def get_job(job_id: str) -> dict:
        return studio.view(job_or_404(job_id))

    @app.get("/api/jobs/{job_id}/events", summary="The job's state as server-sent events")
    async def job_events(job_id: str, request: Request):
        job_or_404(job_id)

        async def stream():
            last = None
            idle = time.monotonic()
            while True:
                job = studio.store.get(job_id)
                if job is None:
                    yield "event: gone\ndata: {}\n\n"
                    return
                view = studio.view(job)
                text = json.dumps(view)
                if text != last:
                    last = text
                    idle = time.monotonic()
                    yield f"data: {text}\n\n"
                    if job.state in FINAL_STATES:
                        return
                elif time.monotonic() - idle > 15:
                    idle = time.monotonic()
                    yield ": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _done_file(job: JobRecord, path: Path | None) -> Path:
        if job.state != "done":
            raise HTTPException(409, f"job {job.id} is {job.state}, not done")
        if path is None or not path.is_file():
            raise HTTPException(404, f"job {job.id} has no such file")
        return path

    @app.get("/api/jobs/{job_id}/result", summary="The coloured file (409 until done)")
    def job_result(job_id: str, download: bool = False):
        job = job_or_404(job_id)
        path = _done_file(job, studio.path(job.result))
        stem = Path(job.name).stem or "film"
        tag = ".preview" if job.kind == "preview" else ".colour"
        return FileResponse(path, filename=f"{stem}{tag}{path.suffix}",
                            content_disposition_type="attachment" if download else "inline")

    @app.get("/api/jobs/{job_id}/preview", summary="A side-by-side still (409 until done)")
    def job_preview(job_id: str):
        job = job_or_404(job_id)
        return FileResponse(_done_file(job, studio.still_path(job.id)), media_type="image/png")

    @app.get("/api/jobs/{job_id}/source", summary="The uploaded photo (for the page's slider)")
    def job_source(job_id: str):
        job = job_or_404(job_id)
        path = studio.path(job.upload)
        if job.kind != "photo" or path is None or not path.is_file():
            raise HTTPException(404, f"job {job_id} has no source photo to show")
        return FileResponse(path)

    @app.delete("/api/jobs/{job_id}", status_code=204, summary="Cancel a job, remove its files")
    async def delete_job(job_id: str):
        job_or_404(job_id)
        await asyncio.to_thread(studio.cancel, job_id)
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _version() -> str:
    from filmcolor import __version__

    return __version__


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:g} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return str(n)
