"""The web UI in a real browser: Debian's chromium, headless, driven by Playwright, against an
``i2v serve --ui`` process with the tiny model. Screenshots go to $I2V_SCREENSHOTS when it is set."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ..server.test_processes import free_port, start, wait_healthy

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it as root)")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory, tiny_model_dir):
    data = tmp_path_factory.mktemp("ui-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start("serve", "--ui", "--port", str(port), "--models", f"{tiny_model_dir},svd-xt", "--data-dir",
                 str(data), "--workers", "1", "--lease", "5")
    try:
        wait_healthy(url, proc)
        yield url, data
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def shoot(page, name: str) -> None:
    folder = os.environ.get("I2V_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def open_generate(browser, url, viewport=(1280, 800)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    page.goto(f"{url}/ui/")
    page.wait_for_selector("#i2v-generate", timeout=60000)
    return page


def set_steps(page, steps: int) -> None:
    """Type the step count until it sticks: a field that has just appeared can still take its initial value
    from the page after a fast robot (not a person) typed into it."""
    page.get_by_text("Advanced settings").click()
    field = page.locator("#i2v-num_inference_steps input")
    held = 0
    for _ in range(40):
        if field.input_value() != str(steps):
            field.fill(str(steps))
            field.press("Tab")
            held = 0
        page.wait_for_timeout(250)
        held += field.input_value() == str(steps)
        if held >= 3:
            return
    raise AssertionError(f"the step field did not keep {steps}")


RECORD_PROGRESS = """() => {
  window.i2vSeen = [];
  const note = () => { const bar = document.querySelector('#i2v-progress');
                       if (bar) window.i2vSeen.push(Math.round(Number(bar.getAttribute('value') || 0))); };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def test_generate_progress_video_and_download(ui_server, browser, sample_image_path, tmp_path):
    url, _ = ui_server
    page = open_generate(browser, url)
    page.set_input_files("#i2v-image input[type=file]", str(sample_image_path))
    page.fill("#i2v-prompt textarea", "the red square moves left")
    set_steps(page, 240)  # several heartbeats (lease / 10) long even on a fast machine
    shoot(page, "ui-generate-form.png")
    # every value the bar shows, recorded in the page: polling from here misses values a fast run shows briefly
    page.evaluate(RECORD_PROGRESS)
    page.click("#i2v-generate")
    page.locator("#i2v-video video").wait_for(timeout=120000)
    seen = set(page.evaluate("() => window.i2vSeen"))
    assert len(seen - {0}) >= 2, seen  # the bar moved through several steps
    page.wait_for_function("() => document.querySelector('#i2v-video video').readyState >= 1", timeout=30000)
    duration = page.evaluate("() => document.querySelector('#i2v-video video').duration")
    assert duration == pytest.approx(4 / 8, abs=0.15)  # 4 frames at 8 fps
    shoot(page, "ui-generate.png")
    names = page.locator("#i2v-downloads").inner_text()
    assert ".mp4" in names and ".gif" in names and ".json" in names
    link = page.locator("#i2v-downloads a").first
    href = link.get_attribute("href")
    body = page.request.get(href if href.startswith("http") else f"{url}{href}").body()
    (tmp_path / "dl.mp4").write_bytes(body)
    from i2v.io.video import read_video

    assert read_video(tmp_path / "dl.mp4")[0].shape[0] == 4
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "ui-generate-phone.png")
    page.close()


def test_cancel_from_the_page(ui_server, browser, sample_image_path):
    url, _ = ui_server
    page = open_generate(browser, url)
    page.set_input_files("#i2v-image input[type=file]", str(sample_image_path))
    set_steps(page, 1000)
    page.click("#i2v-generate")
    page.wait_for_function("() => (document.querySelector('#i2v-progress-label')||{}).textContent?.includes('running')",
                           timeout=60000)
    page.click("#i2v-cancel")
    page.wait_for_function("() => document.querySelector('#i2v-progress-label').textContent.includes('cancelled')",
                           timeout=60000)
    page.close()


def test_the_model_picker_hides_what_a_model_does_not_take(ui_server, browser):
    url, _ = ui_server
    page = open_generate(browser, url)
    assert page.locator("#i2v-prompt").is_visible()
    page.click("#i2v-model input")
    page.get_by_role("option", name="svd-xt").click()
    page.wait_for_function("() => !document.querySelector('#i2v-prompt') || "
                           "document.querySelector('#i2v-prompt').offsetParent === null", timeout=30000)
    page.get_by_text("Advanced settings").click()
    page.locator("#i2v-motion").wait_for(state="visible", timeout=10000)  # SVD takes a motion strength
    page.close()


def test_history_lists_jobs_with_thumbnails(ui_server, browser):
    url, _ = ui_server
    page = open_generate(browser, url)
    page.get_by_role("tab", name="History").click()
    page.click("#i2v-refresh")
    page.wait_for_selector("#i2v-gallery img", timeout=60000)
    assert "succeeded" in page.locator("#i2v-history").inner_text()
    shoot(page, "ui-history.png")
    page.close()


@pytest.mark.parametrize("path", ["/ui/gradio_api/file=/etc/passwd", "/ui/file=/etc/passwd",
                                  "/ui/gradio_api/file=../../../../../etc/passwd",
                                  "/ui/gradio_api/file=%2Fetc%2Fpasswd"])
def test_host_files_are_not_served(ui_server, browser, path):
    url, _ = ui_server
    import httpx

    r = httpx.get(f"{url}{path}", timeout=10)
    assert r.status_code != 200 or "root:" not in r.text


def test_a_symlink_in_the_upload_folder_is_not_followed(ui_server):
    url, data = ui_server
    import httpx

    link = data / "ui-cache" / "link.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to("/etc/passwd")
    r = httpx.get(f"{url}/ui/gradio_api/file={link}", timeout=10)
    assert r.status_code != 200 or "root:" not in r.text


def test_a_blind_compare_study_of_four_pairs(ui_server, browser, sample_image_path, tmp_path):
    url, data = ui_server
    page = open_generate(browser, url)
    page.get_by_role("tab", name="Compare").click()
    page.fill("#i2v-label-a textarea, #i2v-label-a input", "two steps")
    page.fill("#i2v-settings-a textarea, #i2v-settings-a input", '{"num_inference_steps": 2}')
    page.fill("#i2v-label-b textarea, #i2v-label-b input", "eight steps")
    page.fill("#i2v-settings-b textarea, #i2v-settings-b input", '{"num_inference_steps": 8}')
    page.set_input_files("#i2v-study-images input[type=file]", str(sample_image_path))
    page.fill("#i2v-study-prompts textarea", "the red square moves left\nthe red square moves right\n"
                                             "the camera zooms in\nnothing moves")
    page.click("#i2v-study-start")
    page.wait_for_function("() => document.querySelector('#i2v-study-status').textContent.includes('4 pairs queued')",
                           timeout=60000)
    shoot(page, "ui-compare.png")
    votes = 0
    deadline = time.monotonic() + 180
    page.click("#i2v-next-pair")
    while votes < 4 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        if page.locator("#i2v-left video").count() and page.locator("#i2v-right video").count():
            button = ["#i2v-vote-left", "#i2v-vote-right", "#i2v-vote-tie", "#i2v-vote-left"][votes]
            page.click(button)
            votes += 1
            # settled on the next pair, or on "all ready pairs voted on (n of 4)"
            page.wait_for_function("() => { const t = document.querySelector('#i2v-pair-text').textContent; "
                                   f"return t.includes('Pair {votes + 1} of 4') || t.includes('({votes} of 4)'); }}",
                                   timeout=60000)
        else:
            page.click("#i2v-next-pair")  # videos still being generated
    assert votes == 4
    assert "All ready pairs voted on (4 of 4)" in page.locator("#i2v-pair-text").inner_text()
    page.click("#i2v-results")
    page.wait_for_selector("#i2v-results-files a", timeout=60000)
    table = page.locator("#i2v-results-table").inner_text()
    assert "two steps" in table and "eight steps" in table
    shoot(page, "ui-compare-results.png")
    import csv
    import json

    study_id = page.locator("#i2v-study-id textarea, #i2v-study-id input").input_value()
    exported = json.loads((data / "studies" / f"{study_id}.json").read_text())
    assert exported["votes"] == 4 and exported["pairs"] == 4
    sides = {r["side"]: r for r in exported["sides"]}
    assert sides["two steps"]["votes"] == 4 and sides["two steps"]["ties"] == 1
    assert sides["two steps"]["wins"] + sides["eight steps"]["wins"] == 3
    with open(data / "studies" / f"{study_id}.csv", newline="") as f:
        assert [r["side"] for r in csv.DictReader(f)] == ["two steps", "eight steps"]
    page.close()


def test_use_these_settings_again_refills_the_form_and_generates(ui_server, browser):
    url, _ = ui_server
    page = open_generate(browser, url)
    page.get_by_role("tab", name="History").click()
    page.click("#i2v-refresh")
    cell = page.locator("#i2v-history").get_by_text("succeeded", exact=True).locator("visible=true").first
    cell.wait_for(timeout=60000)
    cell.click()  # selects its row: the job id fills the box
    page.wait_for_function("() => document.querySelector('#i2v-picked textarea, #i2v-picked input').value.length",
                           timeout=30000)
    page.click("#i2v-again")
    page.wait_for_function("() => document.querySelector('#i2v-prompt textarea').value.length > 0", timeout=30000)
    page.click("#i2v-generate")  # the image came back from the job: it must be usable as an upload
    page.wait_for_function("() => document.querySelector('#i2v-progress-label').textContent.includes('succeeded')",
                           timeout=120000)
    page.close()


def test_an_init_video_and_its_strength_show_for_the_models_that_take_one_and_run(ui_server, browser,
                                                                                   sample_image_path, tmp_path):
    from ..server.test_init_video import make_video

    url, _ = ui_server
    page = open_generate(browser, url)
    page.locator("#i2v-init-video").wait_for(state="visible", timeout=10000)  # the embedded model takes one
    assert page.locator("#i2v-strength").is_visible()
    page.click("#i2v-model input")
    page.get_by_role("option", name="svd-xt").click()  # SVD does not
    page.locator("#i2v-init-video").wait_for(state="hidden", timeout=30000)
    assert not page.locator("#i2v-strength").is_visible()
    page.click("#i2v-model input")
    page.locator("[role=option]").first.click()  # back to the embedded model
    page.locator("#i2v-init-video").wait_for(state="visible", timeout=30000)
    page.set_input_files("#i2v-image input[type=file]", str(sample_image_path))
    page.set_input_files("#i2v-init-video input[type=file]", str(make_video(tmp_path / "init.mp4")))
    page.fill("#i2v-prompt textarea", "the red square moves left")
    set_steps(page, 4)
    page.click("#i2v-generate")
    page.wait_for_function("() => document.querySelector('#i2v-progress-label').textContent.includes('succeeded')",
                           timeout=120000)
    hrefs = [a.get_attribute("href") for a in page.locator("#i2v-downloads a").all()]
    [href] = [h for h in hrefs if h and h.split("?")[0].endswith(".json")]
    settings = page.request.get(href if href.startswith("http") else f"{url}{href}").json()
    assert settings["init_video"] == "init.mp4" and settings["strength"] == 0.7 and settings["denoising_steps"] == 2
    page.close()
