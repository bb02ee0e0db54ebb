"""Make docs/serve.png: the page of ``avemo serve`` after analysing a video, in headless Chromium.

    python docs/screenshot.py RUN VIDEO docs/serve.png

Starts the app on a loopback port with a temporary data folder, uploads VIDEO through the page, waits for the
analysis to finish, hovers over the chart and takes the picture. Needs the web and test extras and Debian's
chromium and chromium-driver.
"""

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from avemo.web.app import ServeSettings, create_app


def main(run: Path, video: Path, out: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="avemo-shot-"))
    app = create_app(ServeSettings(run, data, device="cpu"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,900",
                 f"--user-data-dir={data / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        chooser = driver.find_element(By.ID, "file")
        driver.execute_script("arguments[0].style.display = 'block'", chooser)
        chooser.send_keys(str(video.resolve()))
        driver.execute_script("arguments[0].style.display = ''", chooser)
        WebDriverWait(driver, 1800).until(lambda d: d.find_element(By.ID, "status").text.startswith(("done", "failed")))
        driver.execute_script("document.getElementById('run').textContent = 'run: ' + arguments[0]", run.name)
        chart = driver.find_element(By.ID, "chart")
        ActionChains(driver).move_to_element_with_offset(chart, chart.size["width"] // 6, 0).click().perform()
        time.sleep(1.0)
        ActionChains(driver).move_to_element_with_offset(chart, chart.size["width"] // 6, -40).perform()
        time.sleep(0.5)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
