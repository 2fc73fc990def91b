"""The web studio's JSON API (#15), over HTTP against real ``filmcolor serve`` processes.

Nothing is mocked: each server is a child process on a loopback port (:mod:`tests.studio`), and
each job runs in the server's own worker process as the CLI would run it. Films use the
test-only ``tiny`` model. Servers are shared per purpose (module-scoped fixtures):

* ``studio``: the default server (one worker): photo, film and preview round trips, refusals
  (400, 415), 404s, results/stills answering 409 until done.
* ``small_studio``: ``--max-upload 1K`` (413).
* ``full_studio``: ``--queue 1 --workers 1`` (429 with ``Retry-After``; cancelling queued and
  running jobs).
* ``token_studio``: ``--token`` (401 / 200).
* The restart test starts and stops its own server on one data folder.
* One test drives :class:`filmcolor.serve.queue.Studio` in process, to see a job's exit status
  when the studio stops (a clean stop, not a SIGKILL).

Runtime here (2 cores): about a minute; every test that runs a job is marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from tests.media import Clip, make_clip, make_image
from tests.studio import StudioServer, free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
JOB_TIMEOUT = 180.0


# -- helpers ----------------------------------------------------------------------------------
def post_job(client: httpx.Client, path: Path, name: str | None = None,
             content: bytes | None = None, **fields: str) -> httpx.Response:
    """``POST /api/jobs`` with ``path`` (or ``content``) as the form's ``file``."""
    body = path.read_bytes() if content is None else content
    return client.post("/api/jobs", files={"file": (name or path.name, body)}, data=fields)


def submit(client: httpx.Client, path: Path, **fields: str) -> str:
    """Post a job that must be accepted; its id."""
    r = post_job(client, path, **fields)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def sse_events(client: httpx.Client, job_id: str) -> list[dict]:
    """Every ``data:`` event of ``GET /api/jobs/{id}/events`` until the server ends the stream."""
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=JOB_TIMEOUT) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[len("data:"):].strip()))
    return events


def video_facts(path: Path) -> tuple[int, int, int, bool]:
    """``(frames, width, height, has_audio)`` of a film, frames counted by decoding."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
        return n, v.codec_context.width, v.codec_context.height, len(c.streams.audio) > 0


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of PNG bytes (and that they are a PNG)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None
    return img.shape[1], img.shape[0]


def worker_pids(job_id: str) -> list[int]:
    """Live ``filmcolor.serve.worker`` processes whose task names ``job_id`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if b"filmcolor.serve.worker" in cmd and job_id.encode() in cmd and ") Z" not in stat:
            pids.append(int(entry.name))
    return pids


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not after {timeout} s")


def files_of(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "filmcolor", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


# -- media and servers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("studio_media")


@pytest.fixture(scope="module")
def photo(media: Path) -> Path:
    """A grey 8-bit PNG, 160x120."""
    path = media / "photo.png"
    make_image(path, 160, 120)
    return path


@pytest.fixture(scope="module")
def long_clip(media: Path) -> Clip:
    """240 frames (10 s at 23.976 fps): a tiny-model job long enough to still be running."""
    return make_clip(media / "long.mp4", n_frames=240, cuts=(80, 160))


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str]
            ) -> Iterator[StudioServer]:
    server = StudioServer(tmp_path_factory.mktemp(name) / "data", args=args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    yield from _server(tmp_path_factory, "studio", ["--workers", "1"])


@pytest.fixture(scope="module")
def client(studio: StudioServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=studio.url, timeout=TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module")
def full_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    yield from _server(tmp_path_factory, "full", ["--queue", "1", "--workers", "1"])


@pytest.fixture(scope="module")
def full_client(full_studio: StudioServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=full_studio.url, timeout=TIMEOUT) as c:
        yield c


# -- photos -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_photo_round_trip_equals_cli(client: httpx.Client, studio: StudioServer, photo: Path,
                                     tmp_path: Path) -> None:
    """202 with a position; events end at done; the result is the CLI's PNG, byte for byte."""
    cli_out = tmp_path / "cli.png"
    cli: dict = {}
    # The CLI's run overlaps the server's (2 cores here): same photo, same settings.
    t = threading.Thread(target=lambda: cli.update(p=run_cli(photo, "-o", cli_out,
                                                             "--vividness", "1.2")))
    t.start()
    try:
        r = post_job(client, photo, vividness="1.2")
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["state"] == "queued"
        assert isinstance(body["position"], int) and body["position"] >= 1
        assert r.headers["location"] == f"/api/jobs/{body['id']}"
        job_id = body["id"]

        events = sse_events(client, job_id)
        assert events, "the event stream sent nothing"
        assert all(e["id"] == job_id and e["kind"] == "photo" for e in events)
        assert events[-1]["state"] == "done"
        assert events[-1]["progress"] == 1.0
        assert events[-1]["error"] is None
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress), progress
        assert events[-1]["settings"] == {"vividness": 1.2}

        view = client.get(f"/api/jobs/{job_id}").json()
        assert view["state"] == "done" and view["progress"] == 1.0
        assert view["frames_done"] == view["frames_total"] == 1

        res = client.get(f"/api/jobs/{job_id}/result")
        assert res.status_code == 200
        assert res.headers["content-type"] == "image/png"
    finally:
        t.join(300)
    assert cli["p"].returncode == 0, cli["p"].stderr

    img = cv2.imdecode(np.frombuffer(res.content, np.uint8), cv2.IMREAD_UNCHANGED)
    src = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.ndim == 3 and img.shape[:2] == src.shape[:2]
    chroma = np.abs(img.astype(int) - img.astype(int).mean(axis=2, keepdims=True)).mean()
    assert chroma > 1.0, f"the result is still grey (mean chroma {chroma:.3f})"
    ref = cv2.imread(str(cli_out), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(img, ref), "the studio's pixels differ from the CLI's"
    assert res.content == cli_out.read_bytes(), "same pixels, but not the CLI's file"

    still = client.get(f"/api/jobs/{job_id}/preview")
    assert still.status_code == 200
    assert png_size(still.content) == (2 * src.shape[1], src.shape[0])

    # Deleting a finished job forgets it and removes its files.
    result_files = {n for n in files_of(studio.data / "results") if n.startswith(job_id)}
    assert result_files
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/result").status_code == 404
    assert not {n for n in files_of(studio.data / "results") if job_id in n}
    assert not {n for n in files_of(studio.data / "uploads") if job_id in n}


# -- films and previews -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def film_and_preview(client: httpx.Client, clip_ntsc: Clip) -> dict:
    """A film job and a preview job behind it (one worker), and what their files said at once.

    The preview is queued while the film runs, so its result and still must answer 409.
    """
    film = submit(client, clip_ntsc.path, model="tiny")
    prev = submit(client, clip_ntsc.path, model="tiny", start="0.5", end="1.0",
                  side_by_side="true")
    early = {
        "preview_state": client.get(f"/api/jobs/{prev}").json()["state"],
        "preview_result": client.get(f"/api/jobs/{prev}/result"),
        "preview_still": client.get(f"/api/jobs/{prev}/preview"),
        "film_state": client.get(f"/api/jobs/{film}").json()["state"],
        "film_result": client.get(f"/api/jobs/{film}/result"),
    }
    return {"film": film, "preview": prev, "early": early}


@pytest.mark.slow
def test_result_is_409_until_done(film_and_preview: dict) -> None:
    early = film_and_preview["early"]
    assert early["preview_state"] == "queued"
    for key in ("preview_result", "preview_still"):
        r = early[key]
        assert r.status_code == 409, (key, r.status_code, r.text)
        assert "not done" in r.json()["detail"]
    assert early["film_state"] in ("queued", "running")
    assert early["film_result"].status_code == 409


@pytest.mark.slow
def test_film_job(client: httpx.Client, film_and_preview: dict, clip_ntsc: Clip,
                  tmp_path: Path, studio: StudioServer) -> None:
    """Every frame coloured, the sound kept, a side-by-side still; the job folder cleaned up."""
    job_id = film_and_preview["film"]
    view = wait_for(client, job_id, timeout=JOB_TIMEOUT)
    assert view["state"] == "done", view
    assert view["kind"] == "film"
    assert view["frames_done"] == view["frames_total"] == clip_ntsc.n_frames
    res = client.get(f"/api/jobs/{job_id}/result")
    assert res.status_code == 200
    out = tmp_path / f"film{Path(clip_ntsc.path).suffix}"
    out.write_bytes(res.content)
    frames, width, height, audio = video_facts(out)
    assert frames == clip_ntsc.n_frames
    assert (width, height) == (clip_ntsc.width, clip_ntsc.height)
    assert audio, "the result lost the sound track"
    still = client.get(f"/api/jobs/{job_id}/preview")
    assert still.status_code == 200
    assert still.headers["content-type"] == "image/png"
    w, h = png_size(still.content)
    assert w > clip_ntsc.width and w == 2 * clip_ntsc.width and h == clip_ntsc.height
    assert not (studio.data / "jobs" / job_id).exists()


@pytest.mark.slow
def test_preview_job(client: httpx.Client, film_and_preview: dict, clip_ntsc: Clip,
                     tmp_path: Path) -> None:
    """start 0.5 s, end 1.0 s: the frames of that range (as `filmcolor preview` counts), 2x wide."""
    from filmcolor.preview import PreviewRequest, resolve_range

    assert clip_ntsc.rate == Fraction(24000, 1001) and clip_ntsc.n_frames == 48
    job_id = film_and_preview["preview"]
    view = wait_for(client, job_id, timeout=JOB_TIMEOUT)
    assert view["state"] == "done", view
    assert view["kind"] == "preview"
    assert view["preview"] == {"start": "0.5", "end": "1.0", "side_by_side": True}
    expected = len(resolve_range(PreviewRequest(start="0.5", end="1.0"), clip_ntsc.rate,
                                 clip_ntsc.n_frames))
    # 0.5 s to 1.0 s at 24000/1001 fps: frames 12..23 (the first frame at or after each time).
    assert expected == 12
    res = client.get(f"/api/jobs/{job_id}/result")
    assert res.status_code == 200
    out = tmp_path / "preview.mp4"
    out.write_bytes(res.content)
    frames, width, height, _ = video_facts(out)
    assert 0 < frames < clip_ntsc.n_frames
    assert frames == expected
    assert (width, height) == (2 * clip_ntsc.width, clip_ntsc.height)
    still = client.get(f"/api/jobs/{job_id}/preview")
    assert still.status_code == 200
    assert png_size(still.content) == (2 * clip_ntsc.width, clip_ntsc.height)


def test_the_api_documents_each_settings_bounds_as_the_cli_checks_them(client: httpx.Client) -> None:
    """The upload's OpenAPI schema takes every bound and choice from RunConfig itself."""
    from filmcolor.config import settings

    r = client.get("/openapi.json")
    assert r.status_code == 200
    body = r.json()["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    props = body["schema"]["properties"]
    cli = {f.name: s for f, s in settings()}
    for name in ("render_size", "vividness", "fade_unsure", "smoothing", "temporal", "upsample"):
        s = cli[name]
        assert props[name].get("minimum") == s.lo and props[name].get("maximum") == s.hi, name
        assert props[name].get("enum") == (list(s.choices) if s.choices else None), name
    assert props["fade_unsure"] == {"type": "number", "minimum": 0, "maximum": 64}
    assert props["scene_detect"] == {"type": "boolean"}


# -- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "needle"), [
    ({"vividness": "9"}, "--vividness"),
    ({"fade_unsure": "-2"}, "--fade-unsure"),
    ({"render_size": "abc"}, "--render-size"),
    ({"render_size": "5"}, "--render-size"),
    ({"smoothing": "-1"}, "--smoothing"),
    ({"model": "no-such-model"}, "no-such-model"),
    ({"colour": "red"}, "'colour'"),
    ({"start": "0.5"}, "need a film"),
])
def test_bad_setting_is_400(client: httpx.Client, studio: StudioServer, photo: Path,
                            fields: dict, needle: str) -> None:
    before = files_of(studio.data / "uploads")
    r = post_job(client, photo, **fields)
    assert r.status_code == 400, (r.status_code, r.text)
    assert needle in r.json()["detail"], r.json()
    assert files_of(studio.data / "uploads") == before, "a refused upload left a file"
    assert not files_of(studio.data / "incoming")


@pytest.mark.parametrize(("name", "content"), [
    ("notes.txt", b"this is not a photo\n" * 20),
    # FFmpeg's tty demuxer reads any .txt (and .ans, .nfo...) as "ansi" video: still not a film.
    ("hello.txt", b"hello\n" * 100),
    ("art.ans", b"this is not a photo\n" * 20),
    ("fake.png", b"plain text called .png\n" * 20),
    ("empty.png", b""),
])
def test_unreadable_upload_is_415(client: httpx.Client, studio: StudioServer, photo: Path,
                                  name: str, content: bytes) -> None:
    before = files_of(studio.data / "uploads")
    r = post_job(client, photo, name=name, content=content)
    assert r.status_code == 415, (r.status_code, r.text)
    assert name in r.json()["detail"]
    assert files_of(studio.data / "uploads") == before
    assert not files_of(studio.data / "incoming")


def test_not_a_form_is_415(client: httpx.Client) -> None:
    r = client.post("/api/jobs", content=b"\x89PNG\r\n\x1a\n",
                    headers={"content-type": "image/png"})
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["detail"]


def test_no_file_is_400(client: httpx.Client) -> None:
    r = client.post("/api/jobs", files={"reference": ("r.png", b"x")}, data={"vividness": "1"})
    assert r.status_code == 400
    assert "'file'" in r.json()["detail"]


def test_over_max_upload_is_413(tmp_path_factory: pytest.TempPathFactory) -> None:
    for server in _server(tmp_path_factory, "small", ["--max-upload", "1K"]):
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            r = c.post("/api/jobs", files={"file": ("big.png", os.urandom(5 * 1024))})
            assert r.status_code == 413, r.text
            assert "larger than this server accepts" in r.json()["detail"]
            assert "1 KB" in r.json()["detail"]
            # Under the limit, the same server reads the file (and refuses it for what it is).
            r = c.post("/api/jobs", files={"file": ("small.txt", b"hello\n" * 100)})
            assert r.status_code == 415, r.text
            assert c.get("/api/jobs").json()["jobs"] == []
        assert not files_of(server.data / "incoming")
        assert not files_of(server.data / "uploads")


def test_unknown_or_malformed_id_is_404(client: httpx.Client) -> None:
    unknown = "0123456789abcdef"
    for method, path in [("GET", ""), ("GET", "/result"), ("GET", "/preview"),
                         ("GET", "/events"), ("DELETE", "")]:
        r = client.request(method, f"/api/jobs/{unknown}{path}")
        assert r.status_code == 404, (method, path, r.status_code)
    for bad in ("..%2Fetc", "%2E%2E", "..", "..%2F..%2Fstudio.db", "ABCDEF0123456789"):
        for method, path in [("GET", ""), ("GET", "/result"), ("DELETE", "")]:
            r = client.request(method, f"/api/jobs/{bad}{path}")
            assert r.status_code == 404, (bad, method, path, r.status_code)
    assert client.get("/api/jobs").status_code == 200  # the server is still fine


# -- the queue: 429, cancelling ---------------------------------------------------------------
@pytest.mark.slow
def test_full_queue_is_429(full_client: httpx.Client, full_studio: StudioServer,
                           long_clip: Clip) -> None:
    """Three films at once, room for one running and one waiting: the rest get 429."""
    answers = [post_job(full_client, long_clip.path, model="tiny") for _ in range(3)]
    try:
        codes = [r.status_code for r in answers]
        assert codes[0] == 202
        assert set(codes) <= {202, 429}, codes
        assert 429 in codes, codes
        for r in answers:
            if r.status_code == 429:
                wait = r.headers.get("retry-after")
                assert wait is not None and wait.isdigit() and int(wait) >= 1, wait
                assert "queue is full" in r.json()["detail"]
        queued = full_client.get("/api/jobs").json()
        assert queued["queue"] == 1
        assert sum(j["state"] == "queued" for j in queued["jobs"]) <= 1
        # Refused uploads leave nothing behind.
        accepted = {r.json()["id"] for r in answers if r.status_code == 202}
        uploads = files_of(full_studio.data / "uploads")
        assert {n.split(".")[0] for n in uploads} == accepted
    finally:
        for r in answers:
            if r.status_code == 202:
                full_client.delete(f"/api/jobs/{r.json()['id']}")


@pytest.mark.slow
def test_cancel_queued_and_running(full_client: httpx.Client, full_studio: StudioServer,
                                   long_clip: Clip) -> None:
    data = full_studio.data
    running = submit(full_client, long_clip.path, model="tiny")
    wait_for(full_client, running, states=("running",), timeout=60)
    # Wait until the film has a job folder and a worker process: cancelling must stop both.
    wait_until(lambda: (data / "jobs" / running).is_dir(), 60, "job folder")
    pids = worker_pids(running)
    assert len(pids) == 1, pids

    queued = submit(full_client, long_clip.path, model="tiny")
    view = full_client.get(f"/api/jobs/{queued}").json()
    assert view["state"] == "queued" and view["position"] == 1
    assert any(n.startswith(queued) for n in files_of(data / "uploads"))

    # A queued job: 204, then cancelled (still listed), its upload gone.
    r = full_client.delete(f"/api/jobs/{queued}")
    assert r.status_code == 204 and r.content == b""
    view = full_client.get(f"/api/jobs/{queued}").json()
    assert view["state"] == "cancelled", view
    assert not any(queued in n for n in files_of(data / "uploads"))
    assert not worker_pids(queued)

    # A running film: 204 once its process has stopped; its job folder and files removed.
    r = full_client.delete(f"/api/jobs/{running}")
    assert r.status_code == 204
    assert not worker_pids(running), "the job's process still runs after DELETE"
    assert not any(Path(f"/proc/{p}").exists() and ") Z" not in
                   Path(f"/proc/{p}/stat").read_text() for p in pids)
    assert not (data / "jobs" / running).exists()
    assert not any(running in n for n in files_of(data / "uploads"))
    assert not any(running in n for n in files_of(data / "results"))
    view = full_client.get(f"/api/jobs/{running}").json()
    assert view["state"] == "cancelled", view
    assert full_client.get(f"/api/jobs/{running}/result").status_code == 409
    # It stays cancelled (the job's reader must not turn it into "failed" later).
    time.sleep(1.0)
    assert full_client.get(f"/api/jobs/{running}").json()["state"] == "cancelled"

    # Deleting a cancelled (final) job forgets it.
    for job_id in (queued, running):
        assert full_client.delete(f"/api/jobs/{job_id}").status_code == 204
        assert full_client.get(f"/api/jobs/{job_id}").status_code == 404
    assert not files_of(data / "jobs")


# -- the token ----------------------------------------------------------------------------------
def test_token_required(tmp_path_factory: pytest.TempPathFactory, photo: Path) -> None:
    token = "s3cret-token"
    for server in _server(tmp_path_factory, "token", ["--token", token]):
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            r = c.get("/api/jobs")
            assert r.status_code == 401
            assert r.headers.get("www-authenticate") == "Bearer"
            assert c.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert c.get("/api/jobs/0123456789abcdef").status_code == 401
            r = c.post("/api/jobs", files={"file": ("p.png", photo.read_bytes())})
            assert r.status_code == 401
            assert not files_of(server.data / "uploads")
            r = c.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["jobs"] == []
            assert c.get("/api/jobs", params={"token": token}).status_code == 200
            # The page sets a cookie from ?token= that later requests carry.
            assert c.get("/", params={"token": token}).status_code == 200
            assert c.get("/api/jobs").status_code == 200


def test_public_host_without_token_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FILMCOLOR_TOKEN"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "filmcolor", "serve", "--host", "0.0.0.0", "--port",
         str(free_port()), "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO, check=False)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--token" in lines[0] and lines[0].startswith("filmcolor: error:")
    assert proc.stdout == ""
    assert elapsed < 20, elapsed
    assert not (tmp_path / "data").exists()


# -- persistence --------------------------------------------------------------------------------
@pytest.mark.slow
def test_jobs_survive_a_restart(tmp_path: Path, long_clip: Clip) -> None:
    """Queue a film and photos, SIGTERM the server mid-film, start it again: all of them finish.

    Uploads are stored under generated names, never the client's.
    """
    photo = tmp_path / "photo.png"
    make_image(photo, 128, 96)
    server = StudioServer(tmp_path / "data", args=["--workers", "1", "--chunk-frames", "24"])
    data = server.data
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            film = submit(c, long_clip.path, model="tiny")
            r = post_job(c, photo, name="my holiday photo.png", model="tiny")
            assert r.status_code == 202, r.text
            holiday = r.json()["id"]
            assert r.json()["position"] >= 1
            other = submit(c, photo, model="tiny")
            assert c.get(f"/api/jobs/{holiday}").json()["name"] == "my holiday photo.png"
            names = [p.name for p in (data / "uploads").iterdir()]
            assert len(names) == 3
            assert not any("holiday" in n.lower() or "photo" in n.lower() for n in names), names
            assert {n.split(".")[0] for n in names} == {film, holiday, other}
            wait_for(c, film, states=("running",), timeout=60)
            wait_until(lambda: (data / "jobs" / film).is_dir(), 60, "job folder")
            assert c.get(f"/api/jobs/{holiday}").json()["state"] == "queued"
        # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (exit status -15).
        t0 = time.monotonic()
        assert server.stop() in (0, -signal.SIGTERM), server.log_text()
        assert time.monotonic() - t0 < 15, "SIGTERM took the server too long to stop"
        assert not worker_pids(film), "the film's process outlived the server"

        server.start()
        assert "resuming 1 job(s)" in server.log_text()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            states = {j["id"]: j["state"] for j in c.get("/api/jobs").json()["jobs"]}
            assert set(states) == {film, holiday, other}
            assert set(states.values()) <= {"queued", "running"}, states
            for job_id in (film, holiday, other):
                view = wait_for(c, job_id, timeout=JOB_TIMEOUT)
                assert view["state"] == "done", view
            res = c.get(f"/api/jobs/{film}/result")
            assert res.status_code == 200
            out = tmp_path / "film.mp4"
            out.write_bytes(res.content)
            frames, _, _, audio = video_facts(out)
            assert frames == long_clip.n_frames and audio
            for job_id in (holiday, other):
                res = c.get(f"/api/jobs/{job_id}/result")
                assert res.status_code == 200
                img = cv2.imdecode(np.frombuffer(res.content, np.uint8), cv2.IMREAD_UNCHANGED)
                assert img.shape == (96, 128, 3)
            # Nothing in the data folder is named after the client's file.
            assert not [p for p in data.rglob("*") if "holiday" in p.name.lower()]
            assert not (data / "jobs" / film).exists()
    finally:
        server.stop()


@pytest.mark.slow
def test_stop_lets_running_jobs_stop_cleanly(tmp_path: Path, long_clip: Clip) -> None:
    """``Studio.stop()`` SIGTERMs a running film, which the job engine ends cleanly (exit 130).

    In process (no HTTP): the job's exit status is what shows it. The workers die with the
    thread that started them (PR_SET_PDEATHSIG is per thread), so the dispatcher must outlive
    them; when it returned first, they were SIGKILLed (-9) and lost their chunk in progress.
    """
    import shutil

    from filmcolor.serve.app import Api
    from filmcolor.serve.queue import Studio
    from filmcolor.serve.uploads import FilePart, Form

    studio = Studio(tmp_path / "data", job_settings={"chunk_frames": 24})
    studio.start()
    try:
        part = studio.data / "incoming" / "upload.part"
        shutil.copy(long_clip.path, part)
        form = Form(fields={"model": ["tiny"]},
                    files=[FilePart("file", "film.mp4", part, part.stat().st_size)])
        job = Api(studio).accept(form)
        assert studio.submit(job) == 1

        def colouring() -> bool:
            live = studio.live.get(job.id)
            return live is not None and live.proc is not None and live.frames_done > 0

        wait_until(colouring, 120, "the film colouring")
        proc = studio.live[job.id].proc
    finally:
        studio.stop()
    assert proc.returncode == 130, f"the job's process ended with {proc.returncode}"
    assert studio.store.get(job.id).state == "running"  # resumed by the next start
