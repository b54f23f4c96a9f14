"""The dashboard in a real browser: start `inference-optimizer dashboard`, upload a model and a CSV, run,
see the charts, download the self-contained HTML report.

Uses the system Chromium (never a browser downloaded by Playwright). Skipped where /usr/bin/chromium
is missing, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from optimizer_core.history import HistoryStore
from tests.server_env import free_port, isolated_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN_TIMEOUT_MS = 240_000


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing: the browser test must run in CI (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing")


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the dashboard did not start within {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    home = tmp_path_factory.mktemp("e2e-home")
    port = free_port()
    env = isolated_env(home)
    log = home / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optimizer_core.cli",
                "dashboard",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc, log)
        yield {"url": url, "home": home}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("e2e-files")
    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_")).iloc[:, :10]
    y = data.target
    xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1, random_state=0).fit(X, y).save_model(
        folder / "churn.json"
    )
    X.iloc[:200].assign(label=y.iloc[:200].to_numpy()).to_csv(folder / "holdout.csv", index=False)
    return folder / "churn.json", folder / "holdout.csv"


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _uploader(page, label: str):
    return page.locator('[data-testid="stFileUploader"]').filter(has_text=label).locator('input[type="file"]')


def _full_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its own container: grow the viewport to the content, then capture it."""
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]') || document.body;
        return Math.max(main.scrollHeight, document.body.scrollHeight);
    }""")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 100, 12000)})
    time.sleep(1.5)  # let plotly re-layout at the new size
    page.screenshot(path=str(path), full_page=True)


def test_upload_run_see_charts_and_download_the_html_report(server, files, browser, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    model, csv = files
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(server["url"])
        page.get_by_text("Demo ready").wait_for(timeout=90_000)  # opens ready to run on the demo

        _uploader(page, "Model file").set_input_files(str(model))
        _uploader(page, "Test data").set_input_files(str(csv))
        page.get_by_text("XGBClassifier (xgboost), binary, 10 features").wait_for(timeout=60_000)
        page.get_by_text("Demo ready").wait_for(state="detached", timeout=30_000)  # uploads replace the demo

        slider = page.get_by_role("slider")
        slider.focus()
        slider.press("Home")  # the smallest timing budget: 5 s
        page.wait_for_function(
            "() => document.querySelector('input[type=range]')?.value === '5'", timeout=10_000
        )

        page.get_by_role("button", name=re.compile(r"^\S*\s*Run$")).click()
        page.wait_for_url(re.compile(r"\?job=[0-9a-f]{12}$"), timeout=30_000)  # the job is in the address
        page.reload()  # a new session: it reconnects to the job and shows its results when it is done
        page.get_by_text("Results", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_text("Speedup at batch 1").count() >= 1
        _full_screenshot(page, ARTIFACTS / "e2e-results.png")

        with page.expect_download(timeout=60_000) as info:
            page.get_by_role("button", name=re.compile("report.html")).click()
        target = tmp_path / "report.html"
        info.value.save_as(target)
        html = target.read_text(encoding="utf-8")
        assert "plotly" in html.lower()
        assert re.search(r"<script[^>]*\bsrc\s*=", html, flags=re.IGNORECASE) is None  # nothing external
        assert "Inference optimization report" in html

        with page.expect_download(timeout=60_000) as info:
            page.get_by_role("button", name=re.compile(r"fp32\.onnx")).click()
        onnx_file = tmp_path / "fp32.onnx"
        info.value.save_as(onnx_file)
        assert onnx_file.read_bytes()[:1] == b"\x08"  # a serialized ModelProto (ir_version first)

        runs = HistoryStore(server["home"] / "history.db").list_runs()
        assert [r.model_name for r in runs] == ["churn.json"]  # saved automatically
        page.goto(f"{server['url']}/history")
        page.get_by_text("Run history").wait_for(timeout=30_000)
        page.goto(f"{server['url']}/history?run={runs[0].run_id}")  # an older form of the shareable link
        page.get_by_text(f"Run {runs[0].run_id}", exact=True).wait_for(timeout=30_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.url.endswith(f"/run?run={runs[0].run_id}")

        # leaving the stored run by the History tab drops ?run, so a reload shows the list, not the run
        page.locator('[data-testid="stTopNavLink"]', has_text="History").click()
        page.get_by_text("Run history").wait_for(timeout=30_000)
        page.wait_for_url(re.compile(r"/history$"), timeout=10_000)
        page.reload()
        page.get_by_text("Run history").wait_for(timeout=30_000)
        assert page.get_by_text(f"Run {runs[0].run_id}", exact=True).count() == 0
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "e2e-failure.png"), full_page=True)
        raise
    finally:
        context.close()
