"""A real browser drives the page: headless Chromium (Debian's chromium + chromium-driver) through selenium.

The server runs :class:`conftest.DiskModel` (disks around the clicks), so the test knows where the
overlay must be: under a positive click, not far from it, gone after a negative click there and
after undo.
"""
from __future__ import annotations

import shutil
import threading
import time
from typing import Iterator

import pytest
from conftest import REPO

from isegm.web import ImageListing, create_app
from isegm.web.serve import listening_socket, make_server

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,900"]
WAIT_S = 30


def chromium() -> tuple:
    """(selenium webdriver module, browser path, driver path), or skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    if driver is None:
        pytest.skip("chromedriver is not installed (Debian: apt-get install chromium-driver)")
    return webdriver, browser, driver


@pytest.fixture
def browser(tmp_path, monkeypatch) -> Iterator[object]:
    webdriver, browser_path, driver_path = chromium()
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")   # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page_url(disk_model, tmp_path) -> Iterator[str]:
    app = create_app(disk_model, "cpu", images=ImageListing(REPO / "assets"), output_dir=tmp_path / "out",
                     infer_size=192)
    sock = listening_socket("127.0.0.1", 0)
    server = make_server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def settled(driver) -> bool:
    """No request pending and the mask shown is the one of the current clicks."""
    state = driver.execute_script("const d = document.body.dataset; return [d.pending, d.version, d.shownVersion];")
    return state[0] == "0" and state[1] == state[2]


def pixel(driver, layer: str, x: int, y: int) -> list:
    return driver.execute_script(
        f"return Array.from(document.getElementById('{layer}').getContext('2d').getImageData({x}, {y}, 1, 1).data);")


@pytest.mark.slow
def test_clicks_draw_the_mask_under_them_and_undo_removes_it(browser, page_url, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(page_url)
    wait.until(lambda d: d.execute_script("return document.body.dataset.image") == "astronaut.jpg"
               and d.execute_script("return document.body.dataset.pending") == "0")
    layer = browser.find_element(By.ID, "click-layer")
    css_width, css_height, width, height = browser.execute_script(
        "const c = document.getElementById('click-layer'), r = c.getBoundingClientRect();"
        "return [r.width, r.height, c.width, c.height];")
    assert (width, height) == (512, 512) and css_width > 100
    dx, dy = -int(css_width * 0.05), -int(css_height * 0.2)   # the astronaut's face, from the centre
    x, y = int((css_width / 2 + dx) / css_width * width), int((css_height / 2 + dy) / css_height * height)
    far = (10, height - 10)

    ActionChains(browser).move_to_element_with_offset(layer, dx, dy).click().perform()
    wait.until(settled)
    assert pixel(browser, "mask-layer", x, y)[3] > 0, "no overlay under the positive click"
    assert pixel(browser, "mask-layer", *far)[3] == 0, "overlay far from the click"
    assert pixel(browser, "click-layer", x, y)[:3] == [0x22, 0xC5, 0x5E]   # a green dot
    browser.save_screenshot(str(tmp_path / "page.png"))

    ActionChains(browser).move_to_element_with_offset(layer, dx, dy).context_click().perform()
    wait.until(settled)
    assert pixel(browser, "mask-layer", x, y)[3] == 0, "a negative click did not remove its disk"
    assert pixel(browser, "click-layer", x, y)[:3] == [0xEF, 0x44, 0x44]   # a red dot on top

    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    wait.until(settled)
    assert pixel(browser, "mask-layer", x, y)[3] > 0, "undo of the negative click did not bring the mask back"
    browser.find_element(By.ID, "undo").click()
    wait.until(settled)
    assert pixel(browser, "mask-layer", x, y)[3] == 0, "undo did not remove the mask"
    assert pixel(browser, "click-layer", x, y)[3] == 0, "undo did not remove the dot"

    # Three clicks without waiting: they queue, and the last state wins.
    spots = [(-0.3, -0.3), (0.3, -0.3), (0.0, 0.3)]
    for fx, fy in spots:
        ActionChains(browser).move_to_element_with_offset(layer, int(fx * css_width), int(fy * css_height)).click() \
            .perform()
    wait.until(settled)
    for fx, fy in spots:
        px, py = int((0.5 + fx) * width), int((0.5 + fy) * height)
        assert pixel(browser, "mask-layer", px, py)[3] > 0 and pixel(browser, "click-layer", px, py)[3] > 0

    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()   # next image, then back: the clicks stay
    wait.until(lambda d: d.execute_script("return document.body.dataset.image") == "chelsea.jpg" and settled(d))
    ActionChains(browser).send_keys(Keys.ARROW_LEFT).perform()
    wait.until(lambda d: d.execute_script("return document.body.dataset.image") == "astronaut.jpg" and settled(d))
    assert pixel(browser, "mask-layer", int(0.2 * width), int(0.2 * height))[3] > 0

    shot = (tmp_path / "page.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
