"""Third-party weights (#5): the catalogue, `filmcolor weights list/fetch`, safe loading.

Downloads are tested against a local HTTP server on loopback (with and without Range support,
truncating, failing) and an unreachable port; nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from filmcolor.__main__ import main
from filmcolor.errors import WeightsError
from filmcolor.models import list_models, thirdparty
from filmcolor.models.thirdparty import fetch, load_catalog
from filmcolor.models.weights import read_weights

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()
UNREACHABLE = "http://127.0.0.1:9/weights.pth"  # the discard port: connection refused


# -- a loopback server -----------------------------------------------------------------------------
class Server:
    """Serves ``payload`` at any path. ``ranges``: honour Range requests; ``cut``: announce the
    full length but send only this many bytes; ``status``: answer every request with this code."""

    def __init__(self) -> None:
        self.payload = PAYLOAD
        self.ranges = True
        self.cut: int | None = None
        self.status = 200
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                if server.status != 200:
                    self.send_error(server.status)
                    return
                data, start = server.payload, 0
                rng = self.headers.get("Range")
                if rng and server.ranges:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                self.wfile.write(body if server.cut is None else body[: server.cut])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server) -> Path:
    """A catalogue of test entries pointing at the loopback server; downloads go to tmp."""
    path = tmp_path / "weights.toml"
    path.write_text(f"""
[exact]
file = "exact.pth"
url = "{server.url}"
size = {len(PAYLOAD)}
sha256 = "{SHA}"
licence = "test"

[prefix]
file = "prefix.pth"
url = "{server.url}"
approx_size = "1 MB"
sha256 = ""
sha256_prefix = "{SHA[:8]}"
licence = "test"

[unknown]
file = "unknown.pth"
url = "{server.url}"
approx_size = "1 MB"
sha256 = ""
licence = "test"

[offline]
file = "offline.pth"
url = "{UNREACHABLE}"
approx_size = "874 MB"
sha256 = ""
licence = "test"
""")
    monkeypatch.setattr(thirdparty, "CATALOG_PATH", path)
    monkeypatch.setenv("FILMCOLOR_HOME", str(tmp_path / "home"))
    return path


# -- the real catalogue ----------------------------------------------------------------------------
def test_catalog_covers_every_third_party_model() -> None:
    """weights.toml lists each third-party model with its official URL; no digest is invented."""
    entries = load_catalog()
    third = {c.name for c in list_models() if c.extra.get("third_party")}
    assert (
        third
        == set(entries)
        == {
            "deoldify-artistic",
            "deoldify-stable",
            "deoldify-video",
            "zhang-eccv16",
            "zhang-siggraph17",
        }
    )
    for e in entries.values():
        assert e.url.startswith("https://") and e.url.split("?")[0].endswith(e.file)
        assert e.licence and e.approx_size
        assert e.sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert e.size is None  # no exact size is published for any of them
    # Where a prefix is known, it is the one the file name carries (torch.hub convention).
    for name in ("zhang-eccv16", "zhang-siggraph17"):
        e = entries[name]
        assert e.sha256_prefix and e.file.endswith(f"-{e.sha256_prefix}.pth")
    # DeOldify publishes no checksum: nothing claimed.
    assert not any(
        entries[n].sha256 or entries[n].sha256_prefix for n in entries if "deoldify" in n
    )


def test_no_third_party_weights_in_the_repository() -> None:
    repo_weights = Path(__file__).resolve().parents[1] / "weights"
    files = {e.file for e in load_catalog().values()}
    assert not files & {p.name for p in repo_weights.iterdir()}


# -- fetch -----------------------------------------------------------------------------------------
def test_fetch_downloads_verifies_and_renames(catalog: Path, tmp_path: Path) -> None:
    path = fetch("exact", progress=False)
    assert path == tmp_path / "home" / "exact.pth"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == ["exact.pth"]  # no .part left
    # Already there and verified: no second download.
    n = len(thirdparty.load_catalog())
    assert fetch("exact", progress=False) == path and n == 4


def test_fetch_resumes_a_partial_download(catalog: Path, server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "exact.pth.part").write_bytes(PAYLOAD[:300_000])
    path = fetch("exact", dest=dest, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1].get("Range") == "bytes=300000-"


def test_fetch_restarts_when_the_server_ignores_range(
    catalog: Path, server: Server, tmp_path: Path
) -> None:
    server.ranges = False
    (tmp_path / "exact.pth.part").write_bytes(b"stale bytes from another file")
    assert fetch("exact", dest=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_and_resumes(
    catalog: Path, server: Server, tmp_path: Path
) -> None:
    server.cut = 400_000
    with pytest.raises(WeightsError, match=r"stopped at 400000 of \d+ bytes; run the same command"):
        fetch("exact", dest=tmp_path, progress=False)
    assert not (tmp_path / "exact.pth").exists()
    assert (tmp_path / "exact.pth.part").stat().st_size == 400_000
    server.cut = None
    assert fetch("exact", dest=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_bad_checksum_is_refused_and_deleted(catalog: Path, server: Server, tmp_path: Path) -> None:
    server.payload = PAYLOAD[:-4] + b"evil"  # same size, other bytes
    with pytest.raises(WeightsError) as e:
        fetch("exact", dest=tmp_path, progress=False)
    assert f"expected exact.pth ({len(PAYLOAD)} bytes, sha256 {SHA})" in str(e.value)
    assert list(tmp_path.glob("exact.pth*")) == []
    with pytest.raises(WeightsError, match=rf"expected prefix.pth \(about 1 MB, sha256 {SHA[:8]}"):
        fetch("prefix", dest=tmp_path, progress=False)
    server.payload = PAYLOAD
    assert fetch("prefix", dest=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_unpublished_checksum_is_recorded_then_enforced(
    catalog: Path, server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        path = fetch("unknown", dest=tmp_path, progress=False)
    assert "no published sha256 for unknown.pth" in caplog.text
    assert (tmp_path / "unknown.pth.sha256").read_text().split()[0] == SHA
    path.unlink()
    server.payload = b"a different file"
    with pytest.raises(WeightsError, match="accepted before"):
        fetch("unknown", dest=tmp_path, progress=False)
    assert not path.exists()


def test_offline_fails_cleanly_with_instructions(catalog: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as e:
        fetch("offline", dest=tmp_path / "dest", progress=False, timeout=5)
    msg = str(e.value)
    assert "\n" not in msg and "no network?" in msg
    assert (
        f"download {UNREACHABLE} by hand and save it as {tmp_path / 'dest' / 'offline.pth'}" in msg
    )
    assert "--weights PATH" in msg and "offline.pth (about 874 MB, sha256 not published)" in msg
    assert not (tmp_path / "dest").exists()  # nothing created


def test_http_error_and_unknown_name(catalog: Path, server: Server, tmp_path: Path) -> None:
    server.status = 404
    with pytest.raises(WeightsError, match="HTTP 404"):
        fetch("exact", dest=tmp_path, progress=False)
    with pytest.raises(WeightsError, match="no third-party weights for 'nope'; known: exact"):
        fetch("nope", dest=tmp_path, progress=False)


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_weights_list_and_fetch(
    catalog: Path, server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "--weights PATH" in out and str(tmp_path / "home") in out and ".cache/filmcolor" in out
    assert "missing: filmcolor weights fetch exact" in out
    assert main(["weights", "fetch", "exact", "-q"]) == 0
    assert main(["weights", "list"]) == 0
    assert f"found {tmp_path / 'home' / 'exact.pth'}" in capsys.readouterr().out
    # A mirror URL and a destination folder.
    assert (
        main(["weights", "fetch", "unknown", "--url", server.url, "--dest", str(tmp_path / "d")])
        == 0
    )
    assert f"unknown: {tmp_path / 'd' / 'unknown.pth'}" in capsys.readouterr().out


def test_cli_fetch_offline_exit_code(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "fetch", "offline", "-q"]) == 4  # WeightsError
    err = capsys.readouterr().err.strip()
    assert err.startswith("filmcolor: error: cannot download offline.pth") and "\n" not in err


# -- safe loading ----------------------------------------------------------------------------------
def _touch(path: str) -> None:
    Path(path).touch()


class Evil:
    """Pickles into a call of ``_touch``: loading it unsafely would create the marker file."""

    marker: Path

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def test_loading_never_runs_pickled_code(tmp_path: Path) -> None:
    evil = Evil()
    evil.marker = tmp_path / "pwned"
    path = tmp_path / "ColorizeVideo_gen.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "opt": evil}, path)
    with pytest.raises(
        WeightsError,
        match=r"refusing to load .*pickled object \(tests\.test_thirdparty_weights\._touch\)",
    ):
        read_weights(path)
    assert not evil.marker.exists()


def test_fastai_wrapper_with_slices_loads(tmp_path: Path) -> None:
    """fastai's optimiser state holds `slice` objects: the one allow-listed type."""
    path = tmp_path / "wrapped.pth"
    torch.save({"model": {"w": torch.ones(2)}, "opt": {"lr": slice(1e-5, 1e-3, None)}}, path)
    state = read_weights(path)
    assert state["opt"]["lr"] == slice(1e-5, 1e-3, None)
