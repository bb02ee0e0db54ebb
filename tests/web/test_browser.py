"""The page in a real browser: headless Chromium from Debian's packages, driven by Selenium through Debian's
ChromeDriver (nothing is downloaded), against ``avemo serve``'s app on a loopback port. It uploads a long
synthetic clip, watches the chart fill while the analysis runs, hovers and clicks on it, and downloads the CSV,
which must be ``avemo timeline``'s for the same video. ``AVEMO_SCREENSHOT=docs/serve.png`` keeps a picture of
the finished page."""

import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="avemo serve's tests need the web extra: pip install -e '.[web,test]'")
pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e '.[test]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from avemo.web.analyses import Analyses  # noqa: E402
from avemo.web.app import ServeSettings, create_app  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not "
                                "installed (apt-get install chromium chromium-driver; .ci/run installs them)")


@pytest.fixture
def server(web_run, recognizer, tmp_path):
    import uvicorn

    data = tmp_path / "data"
    app = create_app(ServeSettings(web_run, data), Analyses(data, recognizer))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    running.should_exit = True
    thread.join(15)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # as this machine's probe starts it: no sandbox for root, and none of Chromium's own calls home
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1100", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: look for nothing online
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "dl")})
    yield driver
    driver.quit()


def test_the_page_uploads_a_clip_fills_its_chart_live_hovers_seeks_and_downloads_its_csv(server, browser, talk,
                                                                                       recognizer, cli_csv, tmp_path):
    browser.get(server)
    wait = WebDriverWait(browser, 240, poll_frequency=0.1)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#legend li")) == len(recognizer.classes))
    chooser = browser.find_element(By.ID, "file")
    browser.execute_script("arguments[0].style.display = 'block'", chooser)  # the drop zone hides it
    chooser.send_keys(str(talk))
    seen = []  # (status text, windows drawn) while it runs

    def finished(driver):
        text = driver.find_element(By.ID, "status").text
        seen.append((text, driver.execute_script("return state.windows.length")))
        return text.startswith("done") or text.startswith("failed")

    wait.until(finished)
    status = browser.find_element(By.ID, "status").text
    assert status.startswith("done"), status
    total = browser.execute_script("return state.windows.length")
    assert any(text.startswith("analysing") and 0 < n < total for text, n in seen), seen  # drawn as they came
    assert browser.find_element(By.ID, "title").text == "talk.mp4"
    # the chart is drawn: the plot area holds each class's colour somewhere
    painted = browser.execute_script("""
        const c = document.getElementById('chart'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] > 240 && d[i + 1] > 240 && d[i + 2] > 240)) n++;
        return n / (c.width * c.height);""")
    assert painted > 0.3, painted
    # hovering a point shows that window's probabilities
    chart = browser.find_element(By.ID, "chart")
    width = chart.size["width"]
    ActionChains(browser).move_to_element_with_offset(chart, -width // 4, 0).perform()
    tip = browser.find_element(By.ID, "tip")
    wait.until(lambda d: tip.is_displayed())
    lines = tip.text.splitlines()
    assert len(lines) == 1 + len(recognizer.classes) and all("%" in line for line in lines[1:])
    assert {line.rsplit(" ", 2)[0] for line in lines[1:]} == set(recognizer.classes)
    # clicking seeks the player to the time under the pointer
    wait.until(lambda d: d.execute_script("return document.getElementById('video').readyState >= 1"))
    ActionChains(browser).move_to_element_with_offset(chart, width // 4, 0).click().perform()
    duration = browser.execute_script("return duration()")
    pad = 28  # app.js's PAD
    expected = ((width * 3 / 4 - pad) / (width - 2 * pad)) * duration
    wait.until(lambda d: abs(d.execute_script("return document.getElementById('video').currentTime") - expected) < 0.3)
    label = browser.find_element(By.ID, "now-label").text
    assert label in recognizer.classes
    # the download is avemo timeline's CSV for the same video
    browser.find_element(By.ID, "dl-csv").click()
    target = tmp_path / "dl" / "timeline.csv"
    wait.until(lambda d: target.is_file() and not list(target.parent.glob("*.crdownload")))
    assert target.read_text() == cli_csv
    browser.execute_script("window.scrollTo(0, 0)")
    picture = os.environ.get("AVEMO_SCREENSHOT") or str(tmp_path / "serve.png")
    assert browser.save_screenshot(picture)
