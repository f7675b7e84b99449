"""A real browser for tests: Debian's `chromium`, headless, driven through Debian's `chromedriver` with selenium.
Nothing is downloaded at run time (`make test` apt-installs both where they are missing).

    with Browser(PHONE) as browser:            # 375 px wide, like a phone; JavaScript off unless asked
        page = browser.open(url)
        page.text(), page.horizontal_overflow(), page.in_first_screen("a.button"), page.screenshot("release-phone")

Every browser has its own fresh profile, so tests may run in parallel. Screenshots go to tests/artifacts/screenshots/
(gitignored), named by the test, kept after the run for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass(frozen=True)
class Screen:
    name: str
    width: int
    height: int
    mobile: bool


PHONE = Screen("phone", 375, 667, True)  # an iPhone SE's CSS pixels: the narrowest phone people still use
DESKTOP = Screen("desktop", 1280, 800, False)
SCREENS = (PHONE, DESKTOP)
# Launch flags: headless, no sandbox (root in a container), and nothing that talks to the internet.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
# What a page shows that is markdown nobody rendered: backticks, **bold**, [text](url), a heading's #.
RAW_MARKDOWN = re.compile(r"`|\*\*|\]\(|^#{1,6} ", re.M)


def missing() -> str:
    """Why no browser can run here ("" when one can): the packages `make test` installs."""
    absent = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if absent:
        return f"{' and '.join(absent)} missing: apt-get install chromium chromium-driver (make test does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements-dev.txt (make test does)"
    return ""


class Browser:
    def __init__(self, screen: Screen, javascript: bool = False):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.screen = screen
        self.profile = tempfile.mkdtemp(prefix="opsbot-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={screen.width},{screen.height}")
        if not javascript:  # the pages must work without a script: DingTalk's browser may have them off
            options.add_argument("--blink-settings=scriptEnabled=false")
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        self.driver.set_page_load_timeout(60)  # a loaded 2-core machine
        # The viewport a phone has (CSS pixels, touch, the mobile viewport meta honoured), whatever the window.
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": screen.width,
                "height": screen.height,
                "deviceScaleFactor": 2 if screen.mobile else 1,
                "mobile": screen.mobile,
            },
        )

    def open(self, url: str) -> PageView:
        self.driver.get(url)
        return PageView(self)

    def current(self) -> PageView:
        return PageView(self)

    def runs_scripts(self) -> bool:
        """Whether this browser runs a page's scripts: a page whose script would retitle it."""
        self.driver.get("data:text/html,<title>off</title><script>document.title='on'</script>")
        return self.driver.title == "on"

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc) -> None:
        self.quit()


class PageView:
    """The page the browser shows now, as a person sees it."""

    def __init__(self, browser: Browser):
        self.browser, self.driver = browser, browser.driver

    @property
    def url(self) -> str:
        return self.driver.current_url

    @property
    def title(self) -> str:
        return self.driver.title

    def text(self) -> str:
        """The page's visible text (what is rendered, not the source)."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def metrics(self) -> dict:
        return self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})

    def horizontal_overflow(self) -> int:
        """How many CSS pixels the page is wider than the screen (0: no horizontal scrolling)."""
        found = self.metrics()
        return max(0, round(found["cssContentSize"]["width"] - found["cssLayoutViewport"]["clientWidth"]))

    def follow(self, element) -> PageView:
        """Click a link or a submit button and wait until the next page has replaced this one: a click returns
        before the navigation ends, and a screenshot taken in between is aborted by it."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 30).until(expected_conditions.staleness_of(page))
        return PageView(self.browser)

    def element(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def elements(self, selector: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def in_first_screen(self, selector: str) -> bool:
        """Whether the element is wholly visible before any scrolling."""
        box = self.element(selector).rect
        viewport = self.metrics()["cssLayoutViewport"]
        return (
            box["width"] > 0
            and box["height"] > 0
            and box["y"] >= 0
            and box["y"] + box["height"] <= viewport["clientHeight"]
            and box["x"] + box["width"] <= viewport["clientWidth"]
        )

    def style(self, selector: str, name: str) -> str:
        return self.element(selector).value_of_css_property(name)

    def raw_markdown(self) -> list[str]:
        """Lines of visible text that still carry markdown marks."""
        return [line for line in self.text().splitlines() if RAW_MARKDOWN.search(line)]

    def screenshot(self, name: str) -> Path:
        """The whole page as a PNG under tests/artifacts/screenshots/<name>-<screen>.png; its path."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}-{self.browser.screen.name}.png"
        path.write_bytes(self.driver.get_screenshot_as_png())
        return path
