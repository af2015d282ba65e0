"""The web UI end to end: the demo (maglevd, real backends, the VPP emulator), a
maglevd-frontend watching it over gRPC, and Debian's Chromium driving the pages.

With MAGLEV_SCREENSHOTS set to a directory (``make screenshots`` sets docs/screenshots),
screenshots of /view/ and /admin/ land there; otherwise a test run leaves the tree alone.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maglev.api.gen.maglev.v1 import maglev_pb2 as pb

from .helpers import Daemon, Demo, source_env

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = os.environ.get("MAGLEV_SCREENSHOTS")
WAIT = 15.0

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("needs Debian's chromium and chromium-driver (make install-deps as root)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install '.[test]')")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    d = Demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium")
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1400,1000", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    yield driver
    driver.quit()


def login(driver: Any, user: str | None) -> None:
    """Basic auth on every request of the page (fetch and EventSource too), or none."""
    headers = {} if user is None else {"Authorization": "Basic " + base64.b64encode(f"{user}:demo".encode()).decode()}
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})


def until(driver: Any, what: str, check: Any) -> Any:
    return WebDriverWait(driver, WAIT).until(lambda d: check(d), message=f"waited {WAIT}s for {what}")


def cell(driver: Any, key: str, field: str) -> str:
    text: str = driver.find_element(By.CSS_SELECTOR, f'tr[data-key="{key}"] [data-f="{field}"]').text
    return text


def shot(driver: Any, name: str) -> None:
    until(driver, "flashes to end", lambda d: not d.find_elements(By.CSS_SELECTOR, ".flash"))
    if SCREENSHOTS:
        where = Path(SCREENSHOTS)
        where.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(where / name)), f"no screenshot {name}"


def test_view_goes_live_without_reload(demo: Demo, browser: Any) -> None:
    login(browser, None)
    browser.get(demo.web + "/view/")
    cards = [e.get_attribute("data-fe") for e in browser.find_elements(By.CSS_SELECTOR, "details.frontend")]
    assert cards == ["web", "web-any"], "frontends in config order"
    until(browser, "web1 up", lambda d: cell(d, "web/primary/web1", "state") == "up")
    until(browser, "VPP buckets", lambda d: cell(d, "web/primary/web1", "buckets") not in ("–", ""))
    shot(browser, "view.png")
    browser.execute_script("window.notReloaded = true")
    demo.flip("web1", "down")
    try:
        until(browser, "web1 down on the page", lambda d: cell(d, "web/primary/web1", "state") == "down")
        until(browser, "web1 weight 0", lambda d: cell(d, "web/primary/web1", "effective_weight") == "0")
        assert cell(browser, "web-any/primary/web1", "state") == "down", "every row of the backend"
        assert browser.execute_script("return window.notReloaded") is True, "updated in place, not reloaded"
        health = browser.find_element(By.CSS_SELECTOR, '[data-fe="web"] [data-f="fe-health"]')
        assert health.text == "⚠️" and "not serving" in health.get_attribute("title")
        assert cell(browser, "web/primary/web1", "since") in ("now", "1s", "2s", "3s", "4s", "5s")
    finally:
        demo.flip("web1", "up")
    until(browser, "web1 back up", lambda d: cell(d, "web/primary/web1", "state") == "up")


def test_admin_button_pauses_the_backend(demo: Demo, browser: Any) -> None:
    login(browser, "demo")
    browser.get(demo.web + "/admin/")
    until(browser, "admin page", lambda d: d.find_elements(By.ID, "event-log"))
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-key="web/primary/web2"]')
    row.find_element(By.CSS_SELECTOR, 'button[data-op="menu"]').click()
    browser.find_element(By.CSS_SELECTOR, '#backend-menu button[data-op="pause"]').click()
    try:
        dialog = browser.find_element(By.ID, "preview-dialog")
        until(
            browser,
            "the preview's bars",
            lambda d: dialog.find_elements(By.CSS_SELECTOR, '[data-preview="after"] .seg.moved'),
        )
        after = bar_widths(browser, '#preview-dialog [data-preview="after"] .bar.buckets .seg')
        assert after == pytest.approx({"127.0.1.1": 0.5, "127.0.1.2": 0.5}, abs=0.01)  # web2's share goes to the others
        text = apply_preview(browser)
        assert "drain 127.0.1.3: weight 0, established flows stay" in text and "change owner" in text
        until(browser, "web2 paused in maglevd", lambda d: backend_state(demo, "web2") == "paused")
        until(browser, "web2 paused on the page", lambda d: cell(d, "web/primary/web2", "state") == "paused")
        until(browser, "web2 out of VPP", lambda d: cell(d, "web/primary/web2", "effective_weight") == "0")
        until(browser, "the event panel", lambda d: "web2" in d.find_element(By.ID, "event-log").text)
        panel = browser.find_element(By.ID, "event-log").text.splitlines()
        said = [x for x in panel if "backend web2:" in x and "paused" in x]
        assert len(said) == 1 and not [x for x in panel if "backend-transition" in x], panel  # listed once
        assert "pause done" in browser.find_element(By.ID, "notice").text
        shot(browser, "admin.png")
        row.find_element(By.CSS_SELECTOR, 'button[data-op="menu"]').click()
        browser.find_element(By.CSS_SELECTOR, '#backend-menu button[data-op="weight"]').click()
        dialog = browser.find_element(By.ID, "weight-dialog")
        box = dialog.find_element(By.NAME, "weight")
        box.clear()
        box.send_keys("20")
        dialog.find_element(By.CSS_SELECTOR, 'button[value="ok"]').click()
        assert "no VIP changes" in apply_preview(browser)  # paused: its weight changes no table yet
        until(browser, "web2 weight 20", lambda d: cell(d, "web/primary/web2", "weight") == "20")
        fe = demo.stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
        assert [b.weight for b in fe.pools[0].backends if b.name == "web2"] == [20]
        # a timed pause: the prompt's default of 30m
        row.find_element(By.CSS_SELECTOR, 'button[data-op="menu"]').click()
        browser.find_element(By.CSS_SELECTOR, '#backend-menu button[data-op="pause"][data-timed="true"]').click()
        until(browser, "the duration prompt", lambda d: _alert(d) is not None)
        browser.switch_to.alert.accept()
        apply_preview(browser)
        until(browser, "a timed pause", lambda d: 1700 < override_left(demo, "web2") <= 1800)
        assert "pause done, now paused for 30m" in browser.find_element(By.ID, "notice").text
    finally:
        demo.stub.ResumeBackend(pb.BackendRequest(name="web2"), timeout=10)
        demo.stub.SetFrontendPoolBackendWeight(
            pb.SetWeightRequest(frontend="web", pool="primary", backend="web2", weight=50), timeout=10
        )


def apply_preview(driver: Any) -> str:
    """The preview every admin action shows first: its text, then apply."""
    dialog = until(driver, "the preview", lambda d: d.find_element(By.CSS_SELECTOR, "#preview-dialog[open]"))
    until(driver, "the preview's text", lambda d: d.find_element(By.ID, "preview-body").text)
    text: str = dialog.text
    dialog.find_element(By.ID, "preview-apply").click()
    return text


def bar_widths(driver: Any, selector: str) -> dict[str, float]:
    """Each segment's share of its bar, as the browser lays it out."""
    widths: dict[str, float] = driver.execute_script(
        """const out = {};
        for (const seg of document.querySelectorAll(arguments[0])) {
          const whole = seg.parentElement.getBoundingClientRect().width - 2;  // the bar's 1px borders
          out[seg.dataset.address] = seg.getBoundingClientRect().width / whole;
        }
        return out;""",
        selector,
    )
    return widths


def test_table_bars_are_the_apis_shares(demo: Demo, browser: Any) -> None:
    login(browser, None)
    browser.get(demo.web + "/view/")

    def drawn_as_served(d: Any) -> Any:
        """The bars once they show what the API serves (a backend an earlier test resumed may still rejoin)."""
        table = demo.stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10).table
        drawn = bar_widths(d, '[data-fe="web"] .vip-table .bar.buckets .seg')
        wanted = {s.address: s.bucket_share for s in table.shares if s.bucket_share > 0}
        if not wanted or drawn.keys() != wanted.keys() or any(abs(drawn[a] - w) > 0.01 for a, w in wanted.items()):
            return None
        return table

    table = until(browser, "the bars to be the API's shares", drawn_as_served)
    weights = bar_widths(browser, '[data-fe="web"] .vip-table .bar.weights .seg')
    assert weights == pytest.approx({s.address: s.weight_share for s in table.shares if s.weight_share > 0}, abs=0.01)
    meta = browser.find_element(By.CSS_SELECTOR, '[data-fe="web"] .vip-table .meta').text
    assert table.digest in meta and "1024 buckets" in meta


def _alert(driver: Any) -> Any:
    try:
        return driver.switch_to.alert
    except Exception:
        return None


def override_left(demo: Demo, name: str) -> float:
    left: float = demo.stub.GetBackend(pb.GetBackendRequest(name=name), timeout=10).override_seconds_left
    return left


def backend_state(demo: Demo, name: str) -> str:
    state: str = demo.stub.GetBackend(pb.GetBackendRequest(name=name), timeout=10).state
    return state


def test_stats_the_api_pulse_and_one_action_for_several_backends(demo: Demo, browser: Any) -> None:
    login(browser, "demo")
    browser.get(demo.web + "/admin/")
    until(browser, "admin page", lambda d: d.find_elements(By.ID, "event-log"))
    until(browser, "web0's last check inline", lambda d: cell(d, "web/primary/web0", "probe").startswith("L7OK"))
    assert " ms" in cell(browser, "web/primary/web0", "probe")
    assert int(cell(browser, "web/primary/web0", "checks")) > 0 and cell(browser, "web/primary/web0", "downs") == "0"
    # the API pulse: a sync is VPP API traffic, seen by the page as it happens
    count = browser.find_element(By.CSS_SELECTOR, '[data-f="api-count"]')
    before = count.text
    browser.find_element(By.CSS_SELECTOR, 'button[data-action="sync"]').click()
    until(browser, "the API count to move", lambda d: count.text != before)
    arrows = browser.find_elements(By.CSS_SELECTOR, ".pulse.on")
    assert {a.get_attribute("data-f") for a in arrows} == {"api-up", "api-down"}
    # two backends ticked (each on every row it has), one action for both
    for key in ("web/primary/web1", "web/primary/web2"):
        browser.find_element(By.CSS_SELECTOR, f'tr[data-key="{key}"] input.pick').click()
    bar = browser.find_element(By.ID, "bulk")
    assert bar.is_displayed() and "2 selected: web1, web2" in bar.text
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-key="web-any/primary/web1"] input.pick').is_selected()
    try:
        bar.find_element(By.CSS_SELECTOR, 'button[data-bulk="pause"]').click()
        until(browser, "the confirmation", lambda d: _alert(d) is not None)
        said = browser.switch_to.alert.text
        assert "pause 2 backends: web1, web2" in said and "no flush" in said
        browser.switch_to.alert.accept()
        until(browser, "both paused", lambda d: [backend_state(demo, b) for b in ("web1", "web2")] == ["paused"] * 2)
        until(browser, "the notice", lambda d: "pause: 2 done" in d.find_element(By.ID, "notice").text)
        bar.find_element(By.CSS_SELECTOR, 'button[data-bulk="resume"]').click()
        until(browser, "the confirmation", lambda d: _alert(d) is not None)
        browser.switch_to.alert.accept()
        until(browser, "both resumed", lambda d: "paused" not in [backend_state(demo, b) for b in ("web1", "web2")])
        bar.find_element(By.CSS_SELECTOR, 'button[data-bulk="clear"]').click()
        assert not bar.is_displayed()
    finally:
        for b in ("web1", "web2"):
            demo.stub.ResumeBackend(pb.BackendRequest(name=b), timeout=10)
    # the table as CSV and JSON, at the URLs the page links
    link = browser.find_element(By.LINK_TEXT, "CSV").get_attribute("href")
    with urllib.request.urlopen(link, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/csv")
        lines = r.read().decode().splitlines()
    assert lines[0].startswith("type,maglevd,frontend,vip,pool,backend,address,state")
    assert any(line.startswith("backend,") and ",web0,127.0.1.1," in line for line in lines)
    json_url = browser.find_element(By.LINK_TEXT, "JSON").get_attribute("href")

    def vip_rows(_: Any) -> list[dict[str, Any]] | None:
        with urllib.request.urlopen(json_url, timeout=10) as r:
            rows = [row for row in json.loads(r.read())["rows"] if row["type"] == "vip"]
        # the demo's VPP (the emulator, on the packaged definitions) has the VIPs' route counters,
        # read with the lb counters every 5 s once the VIPs exist
        return rows if all(isinstance(row["route_packets"], int) for row in rows) else None

    vips = until(browser, "the VIPs' route counters in the JSON table", vip_rows)
    assert [r["frontend"] for r in vips] == ["web", "web-any"]
    assert all(r["route_bytes"] >= 0 and r["next"] is not None for r in vips)


def test_stale_event_id_gets_resync(demo: Demo, browser: Any) -> None:
    login(browser, None)
    browser.get(demo.web + "/view/")
    browser.execute_script(
        """window.resynced = false;
        const s = new EventSource('/view/api/events?lastEventId=1-1');
        s.addEventListener('resync', () => { window.resynced = true; s.close(); });"""
    )
    until(browser, "a resync event", lambda d: d.execute_script("return window.resynced"))


@pytest.fixture(scope="module")
def frontend(demo: Demo) -> Iterator[tuple[Daemon, str]]:
    """maglevd-frontend watching the demo twice (as 127.0.0.1 and as localhost): two scopes."""
    port = demo.address.rsplit(":", 1)[1]
    servers = f"{demo.address},localhost:{port}"
    env = {**source_env(), "MAGLEV_FRONTEND_USER": "demo", "MAGLEV_FRONTEND_PASSWORD": "demo"}
    d = Daemon(["--server", servers, "--listen", "127.0.0.1:0"], env=env, command=[*frontend_command()])
    try:
        address = d.event("listening", service="web-http")["address"]
        d.wait_for(lambda r: r.get("event") == "web-source" and r.get("what") == "connected")
        yield d, "http://" + address
    finally:
        d.stop()
        d.kill()


def frontend_command() -> list[str]:
    return [sys.executable, "-c", "from maglev.web.frontend import main; main()"]


def test_frontend_scopes_and_cookie(frontend: tuple[Daemon, str], browser: Any) -> None:
    _, url = frontend
    login(browser, None)
    browser.delete_all_cookies()
    browser.get(url + "/view/")
    tabs = browser.find_elements(By.CSS_SELECTOR, "nav.scopes a.scope")
    assert [t.text.strip() for t in tabs] == ["127.0.0.1", "localhost"]
    until(browser, "web0 up via gRPC", lambda d: cell(d, "web/primary/web0", "state") == "up")
    tabs[1].click()
    until(
        browser,
        "the localhost scope",
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-scope") == "localhost",
    )
    assert browser.get_cookie("maglev_scope")["value"] == "localhost"
    browser.get(url + "/view/")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-scope") == "localhost", "remembered"
    until(browser, "both dots green", lambda d: len(d.find_elements(By.CSS_SELECTOR, ".scope .dot.up")) == 2)


def test_frontend_ignores_sighup(frontend: tuple[Daemon, str]) -> None:
    d, url = frontend
    d.proc.send_signal(signal.SIGHUP)
    with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
        assert r.read() == b"ok\n"
    assert d.proc.poll() is None


def test_twistd_frontend_plugin_is_listed() -> None:
    twistd = shutil.which("twistd", path=str(Path(sys.executable).parent))
    if twistd is None:
        pytest.skip("twistd is not installed next to this Python")
    env = {k: v for k, v in source_env().items() if k != "PYTHONPATH"}
    out = subprocess.run([twistd, "--help"], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "maglev-frontend" in out
