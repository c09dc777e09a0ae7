"""A real `coordinator serve` on a seeded database, and the system Chromium driven by Playwright.

No browser is ever downloaded: without /usr/bin/chromium these tests are skipped, or fail where
ARN_REQUIRE_SERVICES=1 (CI) makes it mandatory. Each page a test visits is saved as a screenshot
at laptop and phone width under tests/browser/screenshots/ (git-ignored), to look at by eye.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from coordinator.migrate import upgrade
from tests.e2e.network import Network
from tests.seeding import SeededTrack, seed, server_env
from tests.services import REQUIRED

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    """A seeded coordinator served by a real subprocess."""

    network: Network
    seeded: SeededTrack

    @property
    def url(self) -> str:
        return self.network.url

    def get(self, path: str) -> Any:
        return self.network.get(path)


def _serve_seeded(root: Path) -> Iterator[Site]:
    database_url = f"sqlite:///{root / 'coordinator.sqlite3'}"
    data_dir = root / "coordinator"
    upgrade(database_url)
    seeded = seed(database_url, data_dir)
    network = Network(root, env=server_env(database_url, data_dir))
    try:
        # No spot checks, so the next lease a new volunteer gets follows from the seed alone.
        network.start_coordinator(ARN_SPOT_CHECK_RATE_UNTRUSTED="0", ARN_SPOT_CHECK_RATE_TRUSTED="0")
        yield Site(network=network, seeded=seeded)
    except BaseException:
        print(network.logs())
        raise
    finally:
        network.stop_all()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One seeded coordinator for the tests of a module that only read."""
    yield from _serve_seeded(tmp_path_factory.mktemp("site"))


@pytest.fixture
def fresh_site(tmp_path: Path) -> Iterator[Site]:
    """A seeded coordinator of its own, for a test that changes what it holds."""
    yield from _serve_seeded(tmp_path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module's tests. Not for the whole session: Playwright's sync API keeps an
    event loop running while it is open, and the suite's later asyncio.run() calls would fail."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}; install it with `apt-get install chromium`"
        if REQUIRED:
            pytest.fail(f"{reason}; ARN_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    """One browser page that records what it logged as an error, and saves screenshots."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def open(self, url: str, *, name: str) -> Any:
        """Go to `url` and save it as `name` (unique across the tests) at phone and laptop width; the page
        is left at laptop width."""
        response = self.page.goto(url)
        self.screenshot(name)
        return response

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        for label, size in (("phone", PHONE), ("laptop", LAPTOP)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    page = browser.new_page(viewport=LAPTOP)
    opened = Tab(page=page)

    def console(message: Any) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))
    try:
        yield opened
    finally:
        page.close()
