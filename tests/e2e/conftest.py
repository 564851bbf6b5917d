"""Browser tests: a real ``openrisk serve`` on loopback, driven by headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs the ``chromium`` package):
the tests never download a browser. Without Chromium they skip, except in CI where they fail.

One server and one browser serve the browser tests, which one test worker runs together (see
``SHARED_SETUP`` in ``tests/conftest.py``). While sync Playwright runs, its event loop is the
thread's running loop, which async tests must not find: the browser is therefore closed as soon
as the worker leaves this package (package-scoped fixtures), and in a run without xdist the
browser tests come last.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import make_settings
from tests.e2e.seed import PASSWORD, SeedInfo, seed
from tests.integration.server_process import migrated_sqlite, running_server
from tests.services import chromium_path, need

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "reports" / "screenshots")
if not SCREENSHOTS.is_absolute():
    SCREENSHOTS = ROOT / SCREENSHOTS
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_EMAIL = "demo@openrisk.local"


@dataclass(frozen=True)
class Site:
    base_url: str
    data: SeedInfo

    def api_headers(self, email: str = DEMO_EMAIL, tenant: str = "demo") -> dict[str, str]:
        """Bearer headers for the JSON API, to compare pages with it."""
        response = httpx.post(
            f"{self.base_url}/api/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        return {
            "Authorization": f"Bearer {response.json()['access_token']}",
            "X-Tenant-ID": tenant,
        }

    def api(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(
            f"{self.base_url}{path}", headers=headers or self.api_headers(), trust_env=False
        )


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    need(path is not None, "Chromium (Debian package chromium)")
    assert path is not None
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last in a run without xdist (see the module docstring)."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("web-e2e")
    url = migrated_sqlite(directory)
    data = asyncio.run(seed(make_settings(url)))
    with running_server(directory, url, env={"OPENRISK_LOGIN_LIMIT_IP": "100/minute"}) as server:
        yield Site(server.base_url, data)


@pytest.fixture(scope="package")
def browser(chromium: str, site: Site) -> Iterator[Browser]:
    """One Chromium for the browser tests, closed when they are done (see the docstring)."""
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(base_url=site.base_url, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()


def login(page: Page, email: str = DEMO_EMAIL, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as shown, one line each."""
    results = Axe().run(page)
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {v['help']} — "
        + "; ".join(", ".join(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]
