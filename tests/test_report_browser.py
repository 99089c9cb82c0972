"""The report in a real browser: headless Chromium, offline, no console errors, no requests.

Needs the Debian packages ``chromium`` and ``chromium-driver``. Locally the test is skipped with a
message when they are missing; in CI (``CONFOUNDRY_REQUIRE_BROWSER=1``, set by ``.ci/run``) a
missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import confoundry as cf  # noqa: E402
from test_report import EVIL, evil_html, evil_result  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else shutil.which(
    "chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2000")


def _browser_or_skip():
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", DRIVER))
               if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (python package)")
    if missing:
        msg = (f"headless browser test needs {', '.join(missing)}: install the Debian packages "
               "'chromium chromium-driver' (apt-get install -y chromium chromium-driver)")
        if os.environ.get("CONFOUNDRY_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " [CONFOUNDRY_REQUIRE_BROWSER=1]")
        pytest.skip(msg)


def open_driver(profile_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile_dir}")
    if CHROMIUM:
        opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def test_report_in_headless_chromium(evil_html, tmp_path):  # noqa: F811
    _browser_or_skip()
    page = tmp_path / "report.html"
    page.write_text(evil_html, encoding="utf-8")
    url = page.resolve().as_uri()
    driver = open_driver(tmp_path / "profile")
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.get_log("performance")  # drop the start page's own traffic
        driver.get_log("browser")
        driver.get(url)
        driver.implicitly_wait(0)
        assert "confoundry audit" in driver.title
        # the injected names stayed text: no <img src=x>, no <script>, no dialog opened
        n_evil = driver.execute_script("return document.querySelectorAll('img[src=x]').length")
        n_script = driver.execute_script("return document.scripts.length")
        assert n_evil == 0 and n_script == 0
        body = driver.find_element("tag name", "body").text
        assert EVIL in body
        try:
            alert_text = driver.switch_to.alert.text
        except Exception:
            alert_text = None
        assert alert_text is None
        # every image decoded (they are data URIs) and is visible
        ok = driver.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert ok
        assert driver.execute_script("return document.images.length") >= 3
        # every section is there
        for sid in ("verdict", "data", "baselines", "attributions", "probes", "domains",
                    "controls", "privacy", "reproducibility"):
            assert driver.find_elements("id", sid), sid
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        console = driver.get_log("browser")
        perf = driver.get_log("performance")
    finally:
        driver.quit()
    errors = [e for e in console if e.get("level") in ("SEVERE", "ERROR")]
    assert errors == [], errors
    requested, from_page = [], []
    for entry in perf:
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            params = msg["params"]
            requested.append(params["request"]["url"])
            if params.get("documentURL") == url:
                from_page.append(params["request"]["url"])
    assert url in from_page
    # data: URIs are the inlined figures (decoded in memory, not fetched)
    others = [u for u in from_page if u != url and not u.startswith("data:")]
    assert others == [], f"the report made requests: {others[:5]}"
    # and nothing anywhere went to the network
    web = [u for u in requested if u.startswith(("http:", "https:", "ws:", "wss:"))]
    assert web == [], web[:5]


def test_missing_browser_fails_when_required(monkeypatch):
    """CONFOUNDRY_REQUIRE_BROWSER=1 turns a missing browser into a failure, not a skip."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", None)
    monkeypatch.setenv("CONFOUNDRY_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        _browser_or_skip()
    monkeypatch.delenv("CONFOUNDRY_REQUIRE_BROWSER")
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        _browser_or_skip()


def test_cf_exports_audit():
    assert cf.Audit is not None and cf.render_html is not None
