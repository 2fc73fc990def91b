"""The studio's page in a real browser (Playwright + Chromium) against a real ``filmcolor serve``.

Upload a photo through the page, watch it through the queue to the before/after slider, move the
slider, download the result; a file that is not a picture is refused with a clear message; a
studio with a token opens from ``/?token=`` and takes uploads with the cookie it sets.

``FILMCOLOR_SCREENSHOT=docs/studio.png`` also writes the README's screenshot of the page.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright (Python) is not installed", allow_module_level=True)

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
if not CHROMIUM:  # pragma: no cover - depends on the environment
    pytest.skip("no Chromium at /usr/bin/chromium or on PATH", allow_module_level=True)

from tests.media import make_image
from tests.studio import StudioServer

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
JOB_TIMEOUT_MS = 120_000  # a photo on CPU; the first job also loads torch
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.page_errors = []  # uncaught script errors: the page must have none
    pg.on("pageerror", lambda exc: pg.page_errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()


def clip_left_percent(locator) -> float:
    """The left inset (%) of the after layer's ``clip-path: inset(...)``."""
    clip = locator.evaluate("e => e.style.clipPath")
    m = re.fullmatch(r"inset\((\S+) (\S+) (\S+) ([\d.]+)%\)", clip)
    assert m, f"unexpected clip-path {clip!r}"
    return float(m.group(4))


@pytest.mark.slow
def test_photo_through_the_page(page, tmp_path: Path) -> None:
    import cv2

    photo = tmp_path / "harbour.png"
    make_image(photo, width=96, height=64)
    with StudioServer(tmp_path / "data", args=["--queue", "4"]) as server:
        page.goto(server.url + "/")
        expect(page.locator("#drop")).to_be_visible()
        expect(page.locator("#queue")).to_be_attached()
        expect(page.locator("#file-input")).to_have_attribute("multiple", "")
        expect(page.locator("#folder-input")).to_have_attribute("webkitdirectory", "")

        page.set_input_files("#file-input", str(photo))
        row = page.locator("#queue > [data-job-id]")
        expect(row).to_have_count(1)
        job_id = row.get_attribute("data-job-id")
        assert job_id and re.fullmatch(r"[0-9a-f]{16}", job_id)
        expect(row.locator(".job-name")).to_have_text("harbour.png")
        expect(row.locator(".job-kind")).to_have_text("photo")

        # Finished: the before/after slider, both pictures loaded.
        slider = row.locator(".compare input[type=range].compare-range")
        expect(slider).to_be_attached(timeout=JOB_TIMEOUT_MS)
        expect(row.locator(".job-state")).to_have_text("done")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.compare img')]"
            ".every(i => i.complete && i.naturalWidth > 0)")
        after = row.locator(".compare .compare-after")
        assert clip_left_percent(after) == 50.0
        box = row.locator(".compare").bounding_box()
        slider.fill("20")
        assert clip_left_percent(after) == 20.0
        slider.fill("80")
        assert clip_left_percent(after) == 80.0
        # Dragging on the picture moves it too (the range lies over the whole picture).
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
        assert 20.0 < clip_left_percent(after) < 40.0
        handle_left = row.locator(".compare-handle").evaluate("e => e.style.left")
        assert handle_left == f"{clip_left_percent(after):g}%"
        slider.fill("50")

        # The download is the result, a colour image of the photo's size.
        link = row.locator("a.download")
        expect(link).to_have_attribute("href", f"/api/jobs/{job_id}/result?download=1")
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == "harbour.colour.png"
        got = Path(download.path()).read_bytes()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            expected = client.get(f"/api/jobs/{job_id}/result")
        assert expected.status_code == 200
        assert got == expected.content
        image = cv2.imdecode(np.frombuffer(got, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape == (64, 96, 3)
        assert (np.any(image[..., 0] != image[..., 1])
                or np.any(image[..., 1] != image[..., 2])), "the result is still grey"

        page.mouse.move(0, 0)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        shot = page.screenshot(full_page=True, path=str(tmp_path / "studio.png"))
        target = os.environ.get("FILMCOLOR_SCREENSHOT")
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_bytes(shot)
        assert shot[:8] == PNG_MAGIC and len(shot) > 20_000
        assert (tmp_path / "studio.png").read_bytes() == shot
        assert page.page_errors == []


@pytest.mark.slow
def test_unreadable_file_is_refused_with_a_message(page, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Reel 4: harbour scenes, 1931.\n", encoding="utf-8")
    with StudioServer(tmp_path / "data", args=["--queue", "4"]) as server:
        page.goto(server.url + "/")
        message = page.locator("#message")
        expect(message).to_be_hidden()
        expect(message).to_have_attribute("role", "alert")
        page.set_input_files("#file-input", str(notes))
        expect(message).to_be_visible()
        expect(message).to_contain_text("not an image or a film")
        expect(message).to_contain_text("notes.txt")
        expect(page.locator("#queue > [data-job-id]")).to_have_count(0)
        # Dropped on the drop area: the same answer.
        page.locator("#drop").evaluate(
            "el => { const dt = new DataTransfer();"
            " dt.items.add(new File(['shopping list'], 'memo.txt', {type: 'text/plain'}));"
            " el.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,"
            " cancelable: true})); }")
        expect(message).to_contain_text("'memo.txt' is not an image or a film")
        expect(page.locator("#queue > [data-job-id]")).to_have_count(0)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/api/jobs").json()["jobs"] == []
        assert page.page_errors == []


@pytest.mark.slow
def test_token_studio_opens_from_its_link(page, tmp_path: Path) -> None:
    photo = tmp_path / "still.png"
    make_image(photo, width=96, height=64)
    with StudioServer(tmp_path / "data", args=["--queue", "4", "--token", "secret"]) as server:
        assert httpx.get(server.url + "/", timeout=30).status_code == 401
        assert httpx.get(server.url + "/static/studio.js", timeout=30).status_code == 401

        page.goto(server.url + "/?token=secret")
        expect(page.locator("#drop")).to_be_visible()
        expect(page.locator("#server-info")).to_contain_text("queue of 4")
        assert "token" not in page.url  # kept in the HttpOnly cookie, out of the address bar
        cookies = page.context.cookies()
        assert [c["httpOnly"] for c in cookies if c["name"] == "filmcolor_token"] == [True]

        page.set_input_files("#file-input", str(photo))
        row = page.locator("#queue > [data-job-id]")
        expect(row).to_have_count(1)
        expect(row.locator(".job-state")).to_have_text(re.compile(r"^(queued|running|done)$"))
        job_id = row.get_attribute("data-job-id")
        with httpx.Client(base_url=server.url, headers=server.auth_headers(), timeout=30) as client:
            assert client.get(f"/api/jobs/{job_id}").json()["name"] == "still.png"
            # Cancel (or remove, if it was quick) through the page: DELETE with the cookie.
            row.locator("button.remove").click()
            page.wait_for_function(
                "id => { const r = document.querySelector(`[data-job-id='${id}']`);"
                " return !r || r.classList.contains('state-cancelled'); }", arg=job_id)
            if row.count():
                expect(row.locator("button.remove")).to_have_text("Remove")
                row.locator("button.remove").click()
            expect(row).to_have_count(0)
            assert client.get("/api/jobs").json()["jobs"] == []
        expect(page.locator("#message")).to_be_hidden()
        assert page.page_errors == []
