"""Third-party weights (#5): the catalogue, `filmcolor weights list/fetch`, safe loading.

Downloads are tested against a local HTTP server on loopback (with and without Range support,
truncating, failing) and an unreachable port; nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from filmcolor.__main__ import main
from filmcolor.errors import WeightsError
from filmcolor.models import catalog as weights_catalog
from filmcolor.models import create_model, digests, list_models, verify
from filmcolor.models.catalog import WeightsEntry, load_catalog
from filmcolor.models.digests import store_path
from filmcolor.models.fetch import fetch
from filmcolor.models.weights import read_weights

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()
UNREACHABLE = "http://127.0.0.1:9/weights.pth"  # the discard port: connection refused
SIGN_IN = b"<html>Please sign in</html>\r\n"  # what a file host sends instead of the file


def tiny_file(seed: int = 0, rename: bool = False) -> bytes:
    """A weights file of the test-only ``tiny`` model (a few kB): stands in for a third-party file
    whose structure can be checked. ``rename``: one key renamed, so it no longer fits."""
    sd = create_model("tiny", pretrained=False, seed=seed).state_dict()
    if rename:
        sd["conv9.weight"] = sd.pop("conv1.weight")
    buf = io.BytesIO()
    torch.save({"state_dict": sd}, buf)
    return buf.getvalue()


TINY = tiny_file()
TINY_SHA = hashlib.sha256(TINY).hexdigest()


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

[tiny]
file = "tiny.pth"
url = "{server.url}"
approx_size = "{len(TINY) / 1000:.2f} kB"
sha256 = ""
licence = "test"

[offline]
file = "offline.pth"
url = "{UNREACHABLE}"
approx_size = "874 MB"
sha256 = ""
licence = "test"
""")
    monkeypatch.setattr(weights_catalog, "CATALOG_PATH", path)
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
    # No .part left; beside the file only the sha256 store of $FILMCOLOR_HOME (its digest cache).
    assert sorted(p.name for p in path.parent.iterdir()) == ["exact.pth", "weights-sha256.json"]
    # Already there and verified: no second download.
    n = len(load_catalog())
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


def _accepted() -> dict:
    path = store_path()
    return json.loads(path.read_text())["accepted"] if path.is_file() else {}


def test_unpublished_checksum_is_recorded_then_enforced(
    catalog: Path, server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No digest published: a file whose size and structure fit is accepted and its sha256
    recorded in the store (not beside the file); a later download of that name must match."""
    server.payload = TINY
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        path = fetch("tiny", dest=tmp_path / "dest", progress=False)
    assert "no published sha256 for tiny.pth" in caplog.text
    assert _accepted()["tiny.pth"]["sha256"] == TINY_SHA
    assert _accepted()["tiny.pth"]["first_path"] == str(path.resolve())  # not the .part
    assert store_path() == tmp_path / "home" / "weights-sha256.json"
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.pth"]  # nothing beside it
    path.unlink()
    other = tiny_file(seed=1)  # the same size and structure, other weights
    assert len(other) == len(TINY) and other != TINY
    server.payload = other
    with pytest.raises(WeightsError, match="accepted before"):
        fetch("tiny", dest=tmp_path / "dest", progress=False)
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_fetch_refuses_a_sign_in_page_for_deoldify(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's case, with the real catalogue: a file host answers with a 30-byte HTML
    page. It is refused on its size before anything is recorded or renamed."""
    monkeypatch.setenv("FILMCOLOR_HOME", str(tmp_path / "home"))
    server.payload = SIGN_IN
    dest = tmp_path / "dest"
    with pytest.raises(WeightsError) as e:
        fetch("deoldify-artistic", dest=dest, url=server.url, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"is {len(SIGN_IN)} bytes, not a plausible ColorizeArtistic_gen.pth" in msg
    assert "(127500000-510000000 bytes" in msg  # 0.5x-2x of the published "255 MB"
    assert list(dest.iterdir()) == []  # the .part is deleted, nothing renamed
    assert _accepted() == {}


def test_fetch_checks_structure_before_recording(
    catalog: Path, server: Server, tmp_path: Path
) -> None:
    """Plausible size but not the model's file: refused, nothing recorded, nothing renamed; the
    real file is then accepted (an earlier bad download has not poisoned the record)."""
    dest = tmp_path / "dest"
    bad = [
        (SIGN_IN, "not a plausible tiny.pth"),
        (bytes(len(TINY)), "not a PyTorch weights file"),  # right size, not a weights file
        (tiny_file(rename=True), "does not fit model 'tiny': missing conv1.weight"),
    ]
    for payload, why in bad:
        server.payload = payload
        with pytest.raises(WeightsError, match=why) as e:
            fetch("tiny", dest=dest, progress=False)
        assert "\n" not in str(e.value) and "expected tiny.pth" in str(e.value)
        assert list(dest.iterdir()) == [] and _accepted() == {}
    server.payload = TINY
    assert fetch("tiny", dest=dest, progress=False).read_bytes() == TINY
    assert _accepted()["tiny.pth"]["sha256"] == TINY_SHA


def test_size_window() -> None:
    entry = WeightsEntry("m", "f.pth", "https://x/f.pth", "l", approx_size="874 MB")
    assert entry.approx_bytes() == 874_000_000
    assert verify.SIZE_WINDOW == (0.5, 2.0)
    for text, want in [("1.5 kB", 1500), ("2 MiB", 2 << 20), ("1 GB", 10**9), ("big", None)]:
        assert WeightsEntry("m", "f", "u", "l", approx_size=text).approx_bytes() == want


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
    server.payload = TINY
    assert (
        main(["weights", "fetch", "tiny", "--url", server.url, "--dest", str(tmp_path / "d")])
        == 0
    )
    assert f"tiny: {tmp_path / 'd' / 'tiny.pth'}" in capsys.readouterr().out
    # The search order, numbered; a digest recorded on first use is shown, not "not published".
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    order = ["1. --weights PATH", "2. $FILMCOLOR_HOME", "3. shipped weights/", "4. ~/.cache"]
    assert [out.index(o) for o in order] == sorted(out.index(o) for o in order)
    assert f"tiny.pth (about {len(TINY) / 1000:.2f} kB, sha256 {TINY_SHA[:16]}... as first" in out
    assert "offline.pth (about 874 MB, sha256 not published)" in out


def test_cli_fetch_offline_exit_code(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "fetch", "offline", "-q"]) == 4  # WeightsError
    err = capsys.readouterr().err.strip()
    assert err.startswith("filmcolor: error: cannot download offline.pth") and "\n" not in err


def test_cli_fetch_refused_page_is_one_line(
    catalog: Path, server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.payload = SIGN_IN
    assert main(["weights", "fetch", "tiny", "-q"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("filmcolor: error: ") and "\n" not in err
    assert "not a plausible tiny.pth" in err
    assert list((tmp_path / "home").glob("tiny.pth*")) == []


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


def test_safe_loading_without_scoped_safe_globals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch without the scoped ``safe_globals`` (2.4) falls back to ``add_safe_globals``:
    still ``weights_only``, still only ``slice`` allowed, still no pickled code."""
    ser = torch.serialization
    assert hasattr(ser, "safe_globals")  # pyproject asks for torch >= 2.5, which has it
    before = list(ser.get_safe_globals())
    monkeypatch.delattr(ser, "safe_globals")
    try:
        path = tmp_path / "wrapped.pth"
        torch.save({"model": {"w": torch.ones(2)}, "opt": {"lr": slice(1e-5, 1e-3, None)}}, path)
        assert read_weights(path)["opt"]["lr"] == slice(1e-5, 1e-3, None)
        assert set(ser.get_safe_globals()) - set(before) <= {slice}
        evil = Evil()
        evil.marker = tmp_path / "pwned"
        torch.save({"model": {}, "opt": evil}, tmp_path / "evil.pth")
        with pytest.raises(WeightsError, match="refusing to load"):
            read_weights(tmp_path / "evil.pth")
        assert not evil.marker.exists()
    finally:
        ser.clear_safe_globals()
        ser.add_safe_globals(before)


# -- files the user already has: published digests, trust on first use, the digest cache ----------
@pytest.fixture
def counting_hash(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records each file actually hashed (not answered from the cache)."""
    hashed: list[Path] = []
    real = digests.sha256sum

    def sha256sum(path: Path, *args: object) -> str:
        hashed.append(Path(path))
        return real(path, *args)

    monkeypatch.setattr(digests, "sha256sum", sha256sum)
    return hashed


def _with_prefix(catalog: Path, prefix: str) -> None:
    """Publish ``prefix`` as the tiny entry's sha256 prefix (as Zhang et al.'s file names do)."""
    text = catalog.read_text()
    catalog.write_text(text.replace('[tiny]\n', f'[tiny]\nsha256_prefix = "{prefix}"\n'))


def test_published_prefix_is_checked_on_load(
    catalog: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's file under the released name must carry the published sha256 prefix (error);
    under another name (--weights my_finetune.pth) a mismatch is a loud warning."""
    folder = tmp_path / "mine"
    folder.mkdir()
    released = folder / "tiny.pth"
    released.write_bytes(TINY)
    _with_prefix(catalog, TINY_SHA[:8])
    create_model("tiny", weights=released)  # the published prefix: loads
    catalog.write_text(catalog.read_text().replace(TINY_SHA[:8], "9b330a0b"))
    with pytest.raises(WeightsError) as e:
        create_model("tiny", weights=released)
    msg = str(e.value)
    assert "\n" not in msg and f"{released} has sha256 {TINY_SHA[:16]}..." in msg
    assert f"expected tiny.pth (about {len(TINY) / 1000:.2f} kB, sha256 9b330a0b...)" in msg
    assert "not the released file" in msg and "filmcolor weights fetch tiny" in msg
    own = folder / "my_finetune.pth"
    own.write_bytes(TINY)
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        create_model("tiny", weights=own)
    assert "is not the released tiny.pth; loading it anyway" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == ["my_finetune.pth", "tiny.pth"]


def test_zhang_prefix_mismatch_names_the_real_file(tmp_path: Path, monkeypatch) -> None:
    """The real catalogue: a fake ``siggraph17-df00044c.pth`` fails on its digest, before any load,
    with the expected file, size and sha256 prefix in one line."""
    monkeypatch.setenv("FILMCOLOR_HOME", str(tmp_path / "home"))
    fake = tmp_path / "siggraph17-df00044c.pth"
    fake.write_bytes(TINY)
    with pytest.raises(WeightsError) as e:
        create_model("zhang-siggraph17", weights=fake)
    msg = str(e.value)
    assert "\n" not in msg and "not the released file" in msg
    assert "expected siggraph17-df00044c.pth (about 137 MB, sha256 df00044c...)" in msg


def test_first_use_is_recorded_and_a_later_file_warns(
    catalog: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No digest published (DeOldify): the first file that loads is recorded in the store under
    ``$FILMCOLOR_HOME``, not beside it; a later file of that name with another sha256 warns and
    still loads; a file that fails to load is never recorded."""
    broken = tmp_path / "a" / "tiny.pth"
    broken.parent.mkdir()
    broken.write_bytes(tiny_file(rename=True))
    with pytest.raises(WeightsError, match="do not fit model 'tiny'"):
        create_model("tiny", weights=broken)
    assert _accepted() == {}
    first = tmp_path / "b" / "tiny.pth"
    first.parent.mkdir()
    first.write_bytes(TINY)
    create_model("tiny", weights=first)
    rec = _accepted()["tiny.pth"]
    assert rec["sha256"] == TINY_SHA and rec["first_path"] == str(first.resolve())
    assert sorted(p.name for p in first.parent.iterdir()) == ["tiny.pth"]
    second = tmp_path / "c" / "tiny.pth"
    second.parent.mkdir()
    second.write_bytes(tiny_file(seed=1))
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        create_model("tiny", weights=second)
    assert f"{second} has sha256" in caplog.text and "accepted before" in caplog.text
    assert _accepted()["tiny.pth"]["sha256"] == TINY_SHA  # the first one stays the reference
    # Messages name the recorded digest instead of "not published".
    with pytest.raises(WeightsError) as e:
        create_model("tiny", weights=broken)
    assert f"sha256 {TINY_SHA[:16]}... as first accepted here" in str(e.value)
    assert "not published" not in str(e.value)


def test_digest_is_cached_by_path_size_and_mtime(
    catalog: Path, server: Server, tmp_path: Path, counting_hash: list[Path]
) -> None:
    path = tmp_path / "tiny.pth"
    path.write_bytes(TINY)
    create_model("tiny", weights=path)
    create_model("tiny", weights=path)
    assert counting_hash == [path]  # hashed once
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    create_model("tiny", weights=path)
    assert counting_hash == [path, path]  # touched: hashed again
    # A fetched file was hashed as .part; the rename keeps size and mtime, so no second hash.
    server.payload = TINY
    fetched = fetch("tiny", dest=tmp_path / "dest", progress=False)
    n = len(counting_hash)
    create_model("tiny", weights=fetched)
    assert len(counting_hash) == n


def test_unwritable_store_does_not_stop_a_load(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("FILMCOLOR_HOME", str(blocker))  # mkdir under it fails
    path = tmp_path / "tiny.pth"
    path.write_bytes(TINY)
    create_model("tiny", weights=path)
    assert blocker.read_text() == ""
