"""The two front ends in a real Chromium against a real `restock serve`.

One server per module (empty temp home, tiny demo data, 2 LSTM epochs); every flow really
uploads through the page and trains. The plain page (/ui, same origin) and the React demo
(frontend/dist-demo served from a second origin with ?api=, so every call is cross-origin
and proves the server's CORS) go through the same steps: a bad CSV shows its row errors,
the demo CSV trains live to done, the version and backtest metrics appear, and a forecast
shows its chart, inventory metrics, warnings and a working PNG link. The numbers on screen
are checked against the server's own JSON answers. The plain page's plan table and forecast
also show stock on order and the explanation of an order raised to an item's minimum order
quantity. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from restock.data.demo import write_demo_csv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TRAIN_TIMEOUT_MS = 300_000
BAD_CSV = (b"date,product_id,store_id,quantity\n"
           b"2024-01-01,P1,S1,3\n"
           b"2024-13-45,P1,S1,4\n"
           b"2024-01-03,,S1,5\n"
           b"2024-01-04,P1,S1,abc\n")

# Records, in order, every stage the page marks as current and the epoch lines it shows
# (the stages can pass faster than a poll from the test could see them).
RECORD_STAGES = """() => {
  window.__stages = []; window.__epochs = [];
  const seen = () => {
    const cur = document.querySelector('[data-testid="stage-list"] [data-state="current"]');
    const name = cur && cur.getAttribute('data-stage');
    if (name && window.__stages[window.__stages.length - 1] !== name) window.__stages.push(name);
    const ep = document.querySelector('[data-testid="epoch-text"]');
    const text = ep && !ep.closest('[hidden]') ? ep.textContent.trim() : '';
    if (text && window.__epochs[window.__epochs.length - 1] !== text) window.__epochs.push(text);
  };
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true,
    attributes: true, characterData: true, attributeFilter: ['data-state', 'hidden']});
}"""


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("csv")
    demo = folder / "demo_sales.csv"
    write_demo_csv(demo, products=3, stores=2, days=120, seed=11)
    bad = folder / "bad_sales.csv"
    bad.write_bytes(BAD_CSV)
    return {"demo": demo, "bad": bad}


class Browse:
    """A fresh browser context and page, with its page errors, console and screenshots."""

    def __init__(self, browser: Any, artifacts: Path, prefix: str) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900},
                                           locale="en-US", timezone_id="UTC")
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.artifacts = artifacts
        self.prefix = prefix
        self.shots: list[Path] = []
        self.page_errors: list[str] = []
        self.console: list[str] = []
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))

    def shot(self, name: str, target: Any = None) -> Path:
        path = self.artifacts / f"{self.prefix}-{name}.png"
        if target is None:
            self.page.screenshot(path=str(path), full_page=True)
        else:
            target.screenshot(path=str(path))
        assert path.stat().st_size > 1000
        self.shots.append(path)
        return path

    def by(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browse(chromium_browser: Any, artifacts: Path,
           request: pytest.FixtureRequest) -> Iterator[Any]:
    opened: list[Browse] = []

    def open_page(prefix: str) -> Browse:
        b = Browse(chromium_browser, artifacts, prefix)
        opened.append(b)
        return b

    yield open_page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for b in opened:
        if failed:  # the state the test stopped in, and what the page said
            b.page.screenshot(path=str(artifacts / f"{b.prefix}-FAILED.png"), full_page=True)
            (artifacts / f"{b.prefix}-FAILED-console.txt").write_text(
                "\n".join(b.console + ["pageerror: " + e for e in b.page_errors]))
        b.close()


def number(text: str) -> float:
    """The first number in a text as shown by the page (en-US: 1,234.5)."""
    match = re.search(r"-?[\d,]*\.?\d+", text)
    assert match, f"no number in {text!r}"
    return float(match.group().replace(",", ""))


def open_page(b: Browse, url: str) -> None:
    b.page.goto(url)
    expect = _expect()
    expect(b.by("server-status")).to_contain_text("Server", timeout=15_000)
    assert "checking" not in b.by("server-status").inner_text().lower()


def _expect() -> Any:
    from playwright.sync_api import expect
    return expect


def check_bad_csv(b: Browse, server: Any, bad: Path) -> None:
    """Upload a CSV with bad rows: the error table lists exactly the server's problems."""
    expect = _expect()
    answer = requests.post(server.url + "/retrain", timeout=30,
                           files={"file": (bad.name, bad.read_bytes(), "text/csv")})
    assert answer.status_code == 422, answer.text
    problems = answer.json()["error"]["details"]["problems"]
    assert len(problems) >= 3

    b.by("file-input").set_input_files(str(bad))
    expect(b.by("file-name")).to_contain_text(bad.name)
    b.by("upload-button").click()
    expect(b.by("error-table")).to_be_visible()
    expect(b.by("error-message")).to_contain_text("422")
    rows = b.by("error-table").locator("tbody tr")
    expect(rows).to_have_count(len(problems))
    shown = [[c.strip() for c in r.locator("td").all_inner_texts()] for r in rows.all()]
    wanted = [[str(p["row"]) if p.get("row") is not None else "–",
               str(p["column"]) if p.get("column") is not None else "–",
               str(p["problem"])] for p in problems]
    assert shown == wanted
    columns = {row[1] for row in shown}
    assert {"date", "product_id", "quantity"} <= columns, shown
    expect(b.by("training")).to_have_count(0) if b.prefix.startswith("react") else \
        expect(b.by("training")).to_be_hidden()
    b.shot("02-bad-csv")


def wait_training(b: Browse, ready_js: str, what: str) -> None:
    """Wait until ``ready_js`` is truthy; a lost stream or a shown error fails at once."""
    handle = b.page.wait_for_function(f"""() => {{
      const conn = document.querySelector('[data-testid="connection-status"]');
      if (conn && /lost|failed/i.test(conn.textContent)) return 'stream: ' + conn.textContent;
      const err = document.querySelector('[data-testid="error-message"]');
      if (err && err.checkVisibility()) return 'error shown: ' + err.textContent;
      return ({ready_js}) ? 'ok' : false;
    }}""", timeout=TRAIN_TIMEOUT_MS, polling=100)
    state = handle.json_value()
    assert state == "ok", f"while waiting for {what}: {state}"


def train_through_page(b: Browse, server: Any, demo: Path) -> str:
    """Upload the demo CSV, follow the live stages to done; returns the new version."""
    expect = _expect()
    b.page.evaluate(RECORD_STAGES)
    b.by("file-input").set_input_files(str(demo))
    expect(b.by("file-name")).to_contain_text(demo.name)
    expect(b.by("upload-button")).to_be_enabled()
    b.by("upload-button").click()

    expect(b.by("upload-summary")).to_contain_text("Upload accepted", timeout=60_000)
    expect(b.by("upload-summary")).to_contain_text("rows read: 720")
    expect(b.by("upload-progress")).to_have_attribute("aria-valuenow", "100")
    expect(b.by("job-id")).not_to_be_empty()
    job_id = b.by("job-id").inner_text().strip()
    # a stage in progress, then the LSTM epoch bar (it stays once shown): the training
    # screenshot; a lost stream or an error fails at once instead of waiting it out
    wait_training(b, "document.querySelector('[data-testid=\"stage-list\"] "
                     "[data-state=\"current\"]')", "a current stage")
    expect(b.by("job-status")).to_have_text(re.compile("queued|running"))
    wait_training(b, "document.querySelector('[data-testid=\"epoch-block\"]')?.checkVisibility()",
                  "the LSTM epoch bar")
    expect(b.by("epoch-text")).to_have_text(re.compile(r"LSTM epoch \d of 2"))
    expect(b.by("epoch-loss")).to_contain_text("loss")
    b.shot("03-training")

    wait_training(b, "document.querySelector('[data-testid=\"job-status\"]').textContent"
                     " === 'succeeded'", "the job to succeed")
    expect(b.by("model-version")).not_to_be_empty()
    version = b.by("model-version").inner_text().strip()

    # the server agrees: the job succeeded with this version, which is now active
    status = requests.get(f"{server.url}/jobs/{job_id}", timeout=10).json()
    assert status["status"] == "succeeded", status
    assert status["model_version"] == version
    assert requests.get(server.url + "/", timeout=10).json()["model_version"] == version

    # the stages went by in order, ending with every one done; the LSTM epochs showed
    stages = b.page.evaluate("window.__stages")
    order = ["validate", "merge", "backtest", "prophet", "lstm", "ensemble", "forecast",
             "save", "activate", "done"]
    assert stages == sorted(stages, key=order.index), stages
    # stages seen as "current" depend on timing (a fast stage can start and end within one
    # rendered chunk: on a loaded machine only the backtest and the ensemble were caught);
    # the event log shows every event, so it names every stage of the run in order, and the
    # LSTM's epochs (trained in the backtest; refitted in the lstm stage only where the
    # ensemble uses it)
    log_lines = b.by("event-log").locator("li").all_text_contents()
    logged = [s for s in dict.fromkeys(line[1:line.index("]")] for line in log_lines
                                       if line.startswith("[")) if s in order]
    assert logged == sorted(logged, key=order.index), log_lines
    assert set(order) - {"prophet", "lstm"} <= set(logged), log_lines
    assert len(set(stages)) >= 2 and any("LSTM epoch" in line for line in log_lines), \
        (stages, log_lines)
    states = b.page.locator('[data-testid="stage-list"] li').evaluate_all(
        "ls => ls.map(l => [l.dataset.stage, l.dataset.state])")
    assert [s for s, _ in states] == order and {st for _, st in states} == {"done"}, states
    assert any(re.fullmatch(r"LSTM epoch \d of 2", e) for e in b.page.evaluate("window.__epochs"))
    expect(b.by("overall-progress")).to_have_attribute("aria-valuenow", "100")
    expect(b.by("overall-progress-text")).to_have_text("100%")
    expect(b.by("cancel-button")).to_have_count(0) if b.prefix.startswith("react") else \
        expect(b.by("cancel-button")).to_be_hidden()

    # every event once, in order (ids 1..n), the last one "done"
    ids = b.by("event-log").locator("li").evaluate_all(
        "ls => ls.map(l => l.dataset.eventId).filter(Boolean).map(Number)")
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 5, ids
    assert b.by("event-count").inner_text() == str(len(ids))

    # backtest accuracy against seasonal naive; the ensemble's MASE as GET /models has it
    expect(b.by("accuracy-summary")).to_contain_text("seasonal naive")
    for model in ("ensemble", "seasonal_naive"):
        expect(b.by(f"metric-{model}-mase")).to_have_text(re.compile(r"^\d+(\.\d+)?$"))
    listed = {m["version"]: m for m in requests.get(server.url + "/models", timeout=10).json()["items"]}
    assert number(b.by("metric-ensemble-mase").inner_text()) == \
        pytest.approx(listed[version]["mase"], abs=6e-4)
    b.by("result").scroll_into_view_if_needed()
    b.shot("04-done")
    return version


def check_form_bounds(b: Browse, server: Any) -> None:
    """The form's bounds and defaults are the ones the API declares in /openapi.json; a
    default is the input's placeholder and the input stays empty (a value would be sent and
    beat the series' item settings)."""
    expect = _expect()
    doc = requests.get(server.url + "/openapi.json", timeout=10).json()
    ref = doc["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    props = doc["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    for testid, name in (("fc-service-level", "service_level"), ("fc-lead-time", "lead_time_days"),
                         ("fc-cover-days", "cover_days"), ("fc-days", "days")):
        prop = next((p for p in props[name].get("anyOf", []) if p.get("type") != "null"),
                    props[name])
        for attr, keys in (("min", ("minimum", "exclusiveMinimum")),
                           ("max", ("maximum", "exclusiveMaximum"))):
            bound = next((prop[k] for k in keys if k in prop), None)
            if bound is None:
                expect(b.by(testid)).not_to_have_attribute(attr, re.compile(".*"))
            else:
                expect(b.by(testid)).to_have_attribute(attr, f"{bound:g}")
        default = props[name].get("default")
        expect(b.by(testid)).to_have_value("")
        if default is None:
            expect(b.by(testid)).not_to_have_attribute("placeholder", re.compile(".*"))
        else:
            expect(b.by(testid)).to_have_attribute("placeholder", f"{default:g} (default)")


def check_forecast(b: Browse, server: Any, version: str, react: bool) -> None:
    """Ask for a forecast through the form: chart, inventory, warnings, PNG link."""
    expect = _expect()
    expect(b.by("forecast-model")).to_contain_text(version)
    check_form_bounds(b, server)
    expect(b.by("series-status")).to_contain_text("6 series")
    products = b.by("fc-product").locator("option").all_inner_texts()
    assert products == ["All products", "P0001", "P0002", "P0003"], products
    stores = b.by("fc-store").locator("option").all_inner_texts()
    assert stores == ["All stores", "S01", "S02"], stores
    b.by("fc-store").select_option("S01")
    b.by("fc-product").select_option("P0002")
    b.by("fc-days").fill("21")
    b.by("fc-service-level").fill("0.9")
    b.by("fc-lead-time").fill("5")
    b.by("fc-on-hand").fill("0")  # nothing in stock: the page must say to order now
    with b.page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/forecast")) as sent:
        b.by("forecast-submit").click()
    # the typed values (the blank fields are the server's) and the history the chart draws
    assert sent.value.post_data_json == {
        "product_id": "P0002", "store_id": "S01", "days": 21, "service_level": 0.9,
        "lead_time_days": 5, "on_hand": 0, "history": 90, "plot": True}, sent.value.post_data_json

    expect(b.by("forecast-output")).to_be_visible(timeout=60_000)
    expect(b.by("forecast-selection")).to_contain_text(version)
    expect(b.by("forecast-selection")).to_contain_text("P0002")
    api = requests.post(server.url + "/forecast", timeout=60, json={
        "product_id": "P0002", "store_id": "S01", "days": 21, "service_level": 0.9,
        "lead_time_days": 5, "on_hand": 0}).json()
    assert api["model_version"] == version and len(api["forecast"]) == 21

    chart = b.by("forecast-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200, box
    if react:  # recharts: an <svg> with the band, two lines, the stock line, reorder point
        svg = chart.locator("svg.recharts-surface").first
        expect(svg).to_be_visible()
        assert chart.locator(".recharts-area-area").count() == 1
        lines = chart.locator(".recharts-line-curve")
        assert lines.count() >= 3
        assert all(len(d or "") > 20 for d in lines.evaluate_all(
            "ls => ls.map(l => l.getAttribute('d'))"))
        expect(chart.locator(".recharts-reference-line")).to_have_count(1)
    else:  # the page's own SVG
        for part in ("chart-history", "chart-forecast", "chart-band", "chart-stock"):
            d = chart.get_by_test_id(part).get_attribute("d")
            assert d and d.startswith("M") and d.count("L") >= 20, (part, d)
        expect(chart.get_by_test_id("chart-reorder-point")).to_have_count(1)
    rop = api["inventory"]["reorder_point"]
    expect(chart).to_contain_text(re.compile(r"reorder point [\d,.]+"))

    # hovering the forecast part of the chart shows its values
    chart.hover(position={"x": box["width"] * 0.85, "y": box["height"] * 0.5})
    expect(b.by("chart-tooltip")).to_be_visible()
    expect(b.by("chart-tooltip")).to_contain_text("Forecast:")

    # inventory metrics: the server's numbers, on screen
    inv = b.by("inventory-metrics")
    expect(inv).to_be_visible()
    for key in ("reorder_point", "safety_stock", "on_hand", "suggested_order_qty"):
        value = api["inventory"][key]
        text = inv.get_by_test_id(f"inv-{key}").locator("dd").inner_text()
        assert number(text) == pytest.approx(value, abs=0.51 if abs(value) >= 100 else 0.051), \
            (key, text, value)
    assert number(inv.get_by_test_id("inv-reorder_point").locator("dd").inner_text()) == \
        pytest.approx(rop, abs=0.51)
    if api["inventory"].get("order_now"):
        expect(b.by("order-banner")).to_contain_text("Order now")
        expect(inv.get_by_test_id("inv-order_now").locator("dd")).to_have_text("Yes")

    # warnings, one item per server warning, with severity and code
    items = b.by("warnings-list").locator("li")
    if api["warnings"]:
        expect(items).to_have_count(len(api["warnings"]))
        shown = {(i.get_attribute("data-code"), i.get_attribute("data-severity"))
                 for i in items.all()}
        assert shown == {(w["code"], w["severity"]) for w in api["warnings"]}
    else:
        expect(items).to_have_text(["No warnings."])
    # the accuracy panel for the same selection: the scores, or plainly that none exist yet
    scored = requests.get(server.url + "/accuracy?product_id=P0002&store_id=S01", timeout=60)
    reading = b.by("accuracy-reading")
    if scored.status_code == 404:
        assert scored.json()["error"]["code"] == "no_scores", scored.text
        expect(reading).to_contain_text("Nothing scored yet", timeout=30_000)
    else:
        expect(reading).to_contain_text("days scored", timeout=30_000)
        expect(b.by("accuracy-scores")).to_be_visible()
    expect(b.by("accuracy-error")).to_have_count(0 if react else 1)
    if not react:
        expect(b.by("accuracy-error")).to_be_hidden()

    b.shot("05-forecast")
    b.shot("06-chart", chart)
    b.shot("07-forecast-output", b.by("forecast-output"))

    # the PNG link opens a real image
    link = b.by("plot-link")
    expect(link).to_be_visible()
    href = link.evaluate("a => a.href")  # resolved against the page
    assert href and href.startswith(server.url + "/"), href
    with b.page.expect_popup() as popup_info:
        link.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url == href
    assert popup.evaluate("document.contentType") == "image/png"
    size = popup.evaluate("() => { const i = document.images[0];"
                          " return i && i.complete ? [i.naturalWidth, i.naturalHeight] : null; }")
    assert size and size[0] > 300 and size[1] > 200, size
    popup.close()
    png = requests.get(href, timeout=30)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def assert_clean(b: Browse) -> None:
    assert not b.page_errors, b.page_errors
    cors = [c for c in b.console if "CORS" in c or "Access-Control" in c]
    assert not cors, cors


def test_plain_page_bad_csv_then_train_and_forecast(restock_server: Any, csv_files: dict,
                                                    browse: Any) -> None:
    started = time.monotonic()
    b = browse("plain")
    open_page(b, restock_server.url + "/ui")
    _expect()(b.by("forecast-model")).to_contain_text("No model is active yet")
    b.shot("01-initial")
    check_bad_csv(b, restock_server, csv_files["bad"])
    version = train_through_page(b, restock_server, csv_files["demo"])
    _expect()(b.by("error-message")).to_be_hidden()  # the old error went away
    check_forecast(b, restock_server, version, react=False)
    # /retrain.html is the same page
    assert requests.get(restock_server.url + "/retrain.html", timeout=10).text == \
        requests.get(restock_server.url + "/ui", timeout=10).text
    assert_clean(b)
    print(f"plain page flow: {time.monotonic() - started:.1f} s")


def test_react_demo_cross_origin_bad_csv_then_train_and_forecast(
        restock_server: Any, demo_site: Any, csv_files: dict, browse: Any) -> None:
    started = time.monotonic()
    before = requests.get(restock_server.url + "/", timeout=10).json().get("model_version")
    b = browse("react")
    seen_origins: set[str] = set()
    b.page.on("request", lambda r: seen_origins.add(re.sub(r"^(https?://[^/]+).*", r"\1", r.url)))
    open_page(b, f"{demo_site.origin}/index.html?api={restock_server.url}")
    _expect()(b.by("demo-api")).to_have_text(restock_server.url)
    b.shot("01-initial")
    check_bad_csv(b, restock_server, csv_files["bad"])
    version = train_through_page(b, restock_server, csv_files["demo"])
    assert version != before  # a new model, trained from this page
    _expect()(b.by("demo-callbacks")).to_contain_text(f"onComplete: {version}")
    check_forecast(b, restock_server, version, react=True)
    # the page came from one origin and every API call went to the other
    assert seen_origins == {demo_site.origin, restock_server.url}, seen_origins
    assert_clean(b)
    print(f"React demo flow: {time.monotonic() - started:.1f} s")


# P0002 at S01's own settings, neither the declared default (7 days, 0.95)
ITEM_LEAD_TIME = 10.0
ITEM_SERVICE_LEVEL = 0.9


def train_with_stock_on_order(server: Any, demo: Path, folder: Path) -> str:
    """Train through the API on the demo sales with an on_order column (12 units on order for
    P0002 at S01, none in stock on its last day) and give that series a minimum order of 5,000,
    a lead time of ITEM_LEAD_TIME days and a service level of ITEM_SERVICE_LEVEL (POST /items):
    its plan row orders now, raised to the moq. Returns the new version."""
    lines = demo.read_text().splitlines()
    last = max(line.split(",")[0] for line in lines[1:])
    rows = [lines[0] + ",on_order"]
    for line in lines[1:]:
        cells = line.split(",")
        ours = cells[1:3] == ["P0002", "S01"]
        if ours and cells[0] == last:
            cells[-1] = "0"  # on_hand
        rows.append(",".join(cells + ["12" if ours else "0"]))
    sales = folder / "sales_on_order.csv"
    sales.write_text("\n".join(rows) + "\n")
    with sales.open("rb") as f:
        accepted = requests.post(server.url + "/retrain", timeout=60,
                                 files={"file": (sales.name, f, "text/csv")})
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + TRAIN_TIMEOUT_MS / 1000
    while (job := requests.get(server.url + accepted.json()["status_url"], timeout=10).json()
           )["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(1)
    assert job["status"] == "succeeded", job
    items = requests.post(server.url + "/items", timeout=30, files={"file": (
        "items.csv", f"product_id,store_id,moq,lead_time_days,service_level\n"
        f"P0002,S01,5000,{ITEM_LEAD_TIME:g},{ITEM_SERVICE_LEVEL:g}\n".encode(), "text/csv")})
    assert items.status_code == 200, items.text
    return job["model_version"]


def test_plain_page_plan_and_forecast_show_on_order_and_explanations(
        restock_server: Any, csv_files: dict, browse: Any,
        tmp_path: Path) -> None:
    """The plain page's "What to order" table shows each row's on order as GET /plan has it,
    the supplier constraint's warning, and behind a row's "Why?" its explanation, step by
    step; the forecast's inventory panel shows on order, the inventory position and the
    same steps as POST /forecast. The form's policy fields left blank, both take P0002 at S01's
    lead time and service level from its item settings, as the API does."""
    expect = _expect()
    version = train_with_stock_on_order(restock_server, csv_files["demo"], tmp_path)
    b = browse("plain-plan")
    open_page(b, restock_server.url + "/ui")
    expect(b.by("forecast-model")).to_contain_text(version)
    b.by("fc-store").select_option("S01")
    b.by("fc-days").fill("21")
    with b.page.expect_request(lambda r: "/plan?" in r.url) as asked:
        b.by("plan-submit").click()
    expect(b.by("plan-reading")).to_contain_text(version)
    # no policy field sent: the same query as the API's below, so the item settings apply
    assert asked.value.url.endswith("/plan?store_id=S01&days=21"), asked.value.url
    answer = requests.get(restock_server.url + "/plan?store_id=S01&days=21", timeout=60).json()
    headers = b.by("plan-table").locator("thead th").all_inner_texts()
    column = {name.strip(): i for i, name in enumerate(headers)}
    shown = {}
    for row in b.by("plan-row").all():
        cells = row.locator("td").all_inner_texts()
        shown[cells[0], cells[1]] = cells
    assert set(shown) == {(r["product_id"], r["store_id"]) for r in answer["rows"]}
    for r in answer["rows"]:
        cells = shown[r["product_id"], r["store_id"]]
        assert number(cells[column["On order"]]) == r["on_order"], (r, cells)
    ours = next(r for r in answer["rows"] if r["product_id"] == "P0002")
    assert ours["on_order"] == 12 and ours["order_now"] is True, ours
    assert (ours["lead_time_days"], ours["service_level"]) == (ITEM_LEAD_TIME, ITEM_SERVICE_LEVEL), ours
    assert ours["suggested_order_qty"] == 5000 and "order_raised_to_moq" in ours["warnings"], ours
    assert "order raised to moq" in shown["P0002", "S01"][column["Warnings"]]

    why = b.page.get_by_role("button", name="How the suggested order is reached for P0002 at S01")
    expect(why).to_have_attribute("aria-expanded", "false")
    detail = b.page.locator("#" + why.get_attribute("aria-controls"))
    expect(detail).to_be_hidden()
    why.click()
    expect(why).to_have_attribute("aria-expanded", "true")
    expect(detail).to_be_visible()
    expect(detail.locator("li")).to_have_text([step["text"] for step in ours["explanation"]])
    expect(detail).to_contain_text("on order 12.00")
    expect(detail).to_contain_text("raised to the minimum order quantity: 5,000.00")
    b.shot("08-plan-explanation", b.by("plan-panel"))

    # the forecast of that series: on order and the inventory position next to on hand, the steps
    b.by("fc-product").select_option("P0002")
    with b.page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/forecast")) as sent:
        b.by("forecast-submit").click()
    assert sent.value.post_data_json == {
        "product_id": "P0002", "store_id": "S01", "days": 21, "history": 90, "plot": True}, \
        sent.value.post_data_json
    expect(b.by("forecast-output")).to_be_visible(timeout=60_000)
    api = requests.post(restock_server.url + "/forecast", timeout=60, json={
        "product_id": "P0002", "store_id": "S01", "days": 21}).json()["inventory"]
    inv = b.by("inventory-metrics")
    for key in ("on_hand", "on_order", "inventory_position", "order_qty_before_constraints"):
        text = inv.get_by_test_id(f"inv-{key}").locator("dd").inner_text()
        assert number(text) == pytest.approx(api[key], abs=0.51), (key, text, api[key])
    # the item's lead time and service level, not the form's defaults
    assert (api["lead_time_days"], api["service_level"]) == (ITEM_LEAD_TIME, ITEM_SERVICE_LEVEL), api
    expect(inv.get_by_test_id("inv-lead_time_days").locator("dd")).to_have_text(f"{ITEM_LEAD_TIME:g}")
    expect(inv.get_by_test_id("inv-service_level").locator("dd")).to_have_text(
        f"{ITEM_SERVICE_LEVEL * 100:g}%")
    labels = inv.locator("dt").all_inner_texts()
    assert labels[:3] == ["On hand", "On order", "Inventory position"], labels
    expect(b.by("inventory-explanation").locator("li")).to_have_text(
        [step["text"] for step in api["explanation"]])
    b.shot("09-forecast-explanation", b.by("forecast-output"))
    assert_clean(b)
