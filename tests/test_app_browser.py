"""End to end: the real `denoise-jax app` server driven by headless Chromium (playwright).

Uses Debian's /usr/bin/chromium (`make test` installs it); playwright's own browser download
is never used. Skips with a reason when chromium or playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from denoise_jax import app_cmd, data
from denoise_jax.images import write_image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTEFACT = os.path.join(REPO, "test-artifacts", "app.png")


def _app_command(port: int) -> list[str]:
    """`python -m denoise_jax app --port PORT`."""
    return [sys.executable, "-m", "denoise_jax", "app", "--port", str(port)]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server at {url} not healthy after {timeout:.0f} s")


@pytest.fixture
def server():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing: `make test` installs it (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    port = app_cmd.free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(_app_command(port), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_upload_add_noise_denoise_in_chromium(server, tmp_path):
    from playwright import sync_api

    url, proc = server
    clean = data.load("skimage:test")[0].clean[128:256, 192:320]  # 128² colour crop
    upload = str(tmp_path / "astronaut_crop.png")
    write_image(upload, clean)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(url, timeout=30_000)
            page.get_by_text("denoise-jax: denoise a photo").wait_for(timeout=30_000)
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text("Upload", exact=True).click()
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                upload, timeout=15_000)
            page.get_by_text("no noise added").wait_for(timeout=30_000)
            sidebar.get_by_text("Add synthetic noise").click()
            metric = page.locator('[data-testid="stMetric"]', has_text="PSNR denoised")
            metric.wait_for(timeout=40_000)
            page.get_by_text("Denoised (zoom)").wait_for(timeout=10_000)

            values = {}
            for box in page.locator('[data-testid="stMetric"]').all():
                label = box.locator('[data-testid="stMetricLabel"]').inner_text().strip()
                values[label] = box.locator('[data-testid="stMetricValue"]').inner_text()
            page.wait_for_timeout(500)  # let the images finish painting for the screenshot
            shot = tmp_path / "app.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    psnr_noisy = float(values["PSNR noisy"].split()[0])
    psnr_denoised = float(values["PSNR denoised"].split()[0])
    assert psnr_denoised > psnr_noisy + 1.0, values
    assert shot.stat().st_size > 10_000
    os.makedirs(os.path.dirname(ARTEFACT), exist_ok=True)
    shutil.copyfile(shot, ARTEFACT)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.stdout.read() if proc.stdout else ""
    log = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in log, log
    assert np.isfinite(psnr_denoised)
