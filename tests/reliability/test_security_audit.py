"""Security: tokens on every route (enumerated from the app's url_map), size limits with
honest and lying headers on a real socket, media types, rate limits, hostile filenames,
formula-safe export, CORS allow-list, no internals in any error body, artifacts that load
without running code."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from reltools import FAST_ENV, Server, demo_frame, to_csv
from restock.config import Settings
from restock.web import create_app

pytestmark = pytest.mark.timeout(300)

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPEN = {"health.health", "health.healthz", "ui.page", "static"}
#: what the API has today; a new route must be added here on purpose (and is then tested)
KNOWN_PROTECTED = {"health.openapi", "retrain.retrain", "jobs.job", "jobs.events",
                   "jobs.cancel", "forecast.forecast", "forecast.plot", "data.series",
                   "data.export", "models.list_models", "models.activate",
                   "accuracy.accuracy", "plan.plan", "simulate.simulate", "items.upload",
                   "items.items"}
#: what must never show in an error body
LEAKS = re.compile(r"Traceback|File \"|\.py\b|site-packages|/tmp/|/work/|/home/|/usr/|"
                   r"sqlalchemy|psycopg|sqlite3|Error\(|<html", re.I)
#: what gunicorn refuses as malformed HTTP never reaches the app (restock's worker answers
#: it in the JSON shape); it must not carry a trace or a path either
INTERNALS = re.compile(LEAKS.pattern.removesuffix("|<html"), re.I)


def no_retrain(params: dict[str, Any], on_event: Any) -> dict[str, Any]:
    """The job body of these apps: uploads are merged for real, retrains are not the
    subject here (and would hold the CPU and the app's shutdown)."""
    on_event({"stage": "done", "progress": 1.0, "message": "skipped"})
    return {"model_version": None}


def make(home: Path, **overrides: Any) -> Flask:
    app = create_app(Settings.from_env({"home": home, **overrides}, environ={}),
                     task=no_retrain)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for app in made:
        app.extensions["restock"].close()


@pytest.fixture
def secured(trained_copy: tuple[Path, str], apps: list[Flask]) -> Flask:
    home, _ = trained_copy
    app = make(home, api_tokens=TOKEN, ratelimit_default="100000 per minute",
               ratelimit_retrain="100000 per minute")
    apps.append(app)
    return app


def assert_clean_error(response: Any, status: int, home: Path | None = None) -> dict:
    text = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    assert response.status_code == status, text[:500]
    assert not LEAKS.search(text), text[:500]
    if home is not None:
        assert str(home) not in text and home.name not in text
    body = json.loads(text)
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    return body["error"]


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, a concrete path) for every rule and method of the app."""
    out = []
    for rule in app.url_map.iter_rules():
        path = rule.build({arg: "x0" for arg in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, path))
    return out


def test_every_endpoint_but_health_and_page_refuses_missing_or_wrong_tokens(
        secured: Flask, trained_copy: tuple[Path, str]) -> None:
    home, _ = trained_copy
    client = secured.test_client()
    found = routes(secured)
    endpoints = {endpoint for endpoint, _, _ in found}
    assert KNOWN_PROTECTED <= endpoints, KNOWN_PROTECTED - endpoints
    assert endpoints - OPEN == KNOWN_PROTECTED, (
        "a new endpoint: add it to KNOWN_PROTECTED (it is then checked for auth)")
    wrong = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
             {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
             {"Authorization": "Bearer "}, {"Authorization": f"{TOKEN}"},
             {"X-Api-Key": TOKEN}]
    checked = 0
    for endpoint, method, path in found:
        if endpoint in OPEN:
            answer = client.open(path.replace("x0", "retrain.css"), method=method)
            assert answer.status_code != 401, (endpoint, path)
            continue
        for headers in wrong:
            answer = client.open(path, method=method, headers=headers)
            error = assert_clean_error(answer, 401, home)
            assert error["code"] == "unauthorized", (endpoint, method, headers)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
        answer = client.open(path, method=method, headers=AUTH)
        assert answer.status_code != 401, (endpoint, method, path)
        answer.close()
    assert checked >= len(KNOWN_PROTECTED) * len(wrong)
    # and a path that matches no route is refused before anything can be learnt from it
    assert_clean_error(client.get("/no/such/route"), 401, home)


def test_upload_media_types_are_415(secured: Flask) -> None:
    client = secured.test_client()
    cases = [
        ("sales.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         b"PK\x03\x04rest", "unsupported_media_type"),
        ("sales.csv", "image/png", b"\x89PNG\r\n\x1a\n", "unsupported_media_type"),
        ("sales.exe", "application/octet-stream", b"MZ\x90\x00", "unsupported_media_type"),
        ("sales.csv", "text/csv", b"PK\x03\x04zip inside", "unsupported_file"),
        ("sales.csv", "text/csv", b"\x1f\x8b\x08\x00gzip", "unsupported_file"),
        ("sales.csv", "text/csv", b"date,product_id,quantity\n\x00\x01\x02", "unsupported_file"),
    ]
    for name, mimetype, raw, code in cases:
        answer = client.post("/retrain", headers=AUTH,
                             data={"file": (io.BytesIO(raw), name, mimetype)})
        assert assert_clean_error(answer, 415)["code"] == code, name
    answer = client.post("/retrain", headers=AUTH, json={"file": "date,product_id\n"})
    assert_clean_error(answer, 415)
    answer = client.post("/forecast", headers=AUTH, data="days=3", content_type="text/plain")
    assert_clean_error(answer, 415)


def test_upload_over_the_limit_is_413_in_process(trained_copy: tuple[Path, str],
                                                  apps: list[Flask]) -> None:
    home, _ = trained_copy
    app = make(home, max_upload_mb=0.05)
    apps.append(app)
    raw = b"date,product_id,quantity\n" + b"2024-01-01,p1,1\n" * 10_000  # ~160 kB
    answer = app.test_client().post("/retrain",
                                    data={"file": (io.BytesIO(raw), "big.csv", "text/csv")})
    assert assert_clean_error(answer, 413)["code"] == "payload_too_large"


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 20) -> str:
    """Send bytes as they are (no client library fixing the headers up) and read the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks).decode("latin-1")


def multipart(boundary: str, payload: bytes) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode() + payload + \
        f"\r\n--{boundary}--\r\n".encode()


def test_size_limit_holds_against_lying_headers_on_a_real_socket(tmp_path: Path) -> None:
    """1 MB limit, gunicorn in front: declared too big, declared small but sent big,
    chunked, chunked and a length at once, two lengths, nonsense lengths. Never a 5xx,
    nothing stored, the server keeps answering."""
    server = Server(tmp_path / "home", workers=1, RESTOCK_MAX_UPLOAD_MB="1",
                    RESTOCK_API_TOKENS=TOKEN, **FAST_ENV)
    try:
        boundary = "b0undary"
        big = multipart(boundary, b"date,product_id,quantity\r\n"
                        + b"2024-01-01,p1,1\r\n" * 200_000)  # ~3.4 MB
        ctype = f"Content-Type: multipart/form-data; boundary={boundary}"
        base = (f"POST /retrain HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {TOKEN}\n"
                f"{ctype}\n")
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                           for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
        cases = {
            "declared over the limit": (base + f"Content-Length: {5 << 20}\nConnection: "
                                        "close\n", big[:1000], {413}),
            "declares 1000 bytes, sends 3.4 MB": (
                base + "Content-Length: 1000\nConnection: close\n", big, {400, 413, 415, 422}),
            "chunked, 3.4 MB": (base + "Transfer-Encoding: chunked\nConnection: close\n",
                                chunked, {413}),
            "chunked and a small length": (
                base + "Content-Length: 100\nTransfer-Encoding: chunked\nConnection: close\n",
                chunked, {400, 413}),
            "two different lengths": (
                base + "Content-Length: 100\nContent-Length: 200\nConnection: close\n",
                big[:300], {400, 413}),
            "negative length": (base + "Content-Length: -1\nConnection: close\n", big[:10],
                                {400, 411, 413}),
            "length is not a number": (base + "Content-Length: 1e9\nConnection: close\n",
                                       big[:10], {400, 411, 413}),
        }
        gunicorn_pages: list[tuple[str, int | None]] = []
        for what, (head, body, allowed) in cases.items():
            reply = raw_request(server.port, head, body)
            status = int(reply.split(" ", 2)[1]) if reply.startswith("HTTP/1.") else None
            assert status in allowed, (what, reply[:300])
            assert not INTERNALS.search(reply), (what, reply[:500])
            if "application/json" not in reply.split("\r\n\r\n", 1)[0]:
                gunicorn_pages.append((what, status))
            assert requests.get(server.url + "/healthz", timeout=10).ok, what
        series = requests.get(server.url + "/series", headers=AUTH, timeout=10).json()
        assert series["total"] == 0  # nothing of any of them was stored
        assert not list((server.home / "uploads").glob("*"))
        # even what gunicorn refuses as malformed HTTP gets the JSON error shape
        assert gunicorn_pages == [], gunicorn_pages
    finally:
        server.stop()


def test_rate_limits_answer_429(trained_copy: tuple[Path, str], apps: list[Flask]) -> None:
    home, _ = trained_copy
    app = make(home, api_tokens=TOKEN, ratelimit_default="5 per minute",
               ratelimit_retrain="2 per minute")
    apps.append(app)
    client = app.test_client()
    codes = [client.get("/series", headers=AUTH).status_code for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3, codes
    limited = client.get("/series", headers=AUTH)
    assert assert_clean_error(limited, 429, home)["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # wrong tokens are throttled too (per address): guessing is not free
    guesses = [client.get("/series", headers={"Authorization": f"Bearer guess{i}"},
                          environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code
               for i in range(8)]
    assert guesses == [401] * 5 + [429] * 3, guesses
    other = {"Authorization": f"Bearer {TOKEN}"}
    bad = io.BytesIO(b"not,a,sales\nfile,,\n")
    retrains = [client.post("/retrain", headers=other, environ_base={"REMOTE_ADDR": "10.1.1.1"},
                            data={"file": (io.BytesIO(bad.getvalue()), "s.csv", "text/csv")}
                            ).status_code for _ in range(3)]
    assert retrains[-1] == 429, retrains


HOSTILE_NAMES = ["../../../../etc/passwd.csv", "..\\..\\..\\windows\\win.ini.csv",
                 "/etc/cron.d/evil.csv", "a\x00b.csv", "....//....//x.csv",
                 "%2e%2e%2f%2e%2e%2fx.csv", "uploads/../../restock.db.csv",
                 "ok\r\nX-Injected: 1.csv", "$(touch pwned).csv", "x" * 600 + ".csv",
                 ".csv", "..csv", "~/.ssh/authorized_keys.csv", "\u202egnp.csv"]


def test_hostile_filenames_are_stored_only_under_uuid_names(
        secured: Flask, trained_copy: tuple[Path, str], tmp_path: Path) -> None:
    home, _ = trained_copy
    client = secured.test_client()
    before = {p for p in tmp_path.rglob("*")}
    raw = to_csv(demo_frame(products=1, stores=1, days=5, seed=1))
    for name in HOSTILE_NAMES:
        answer = client.post("/retrain", headers=AUTH,
                             data={"file": (io.BytesIO(raw), name, "text/csv")})
        assert answer.status_code in (202, 400, 415, 422), (name, answer.get_data(as_text=True))
    created = {p for p in tmp_path.rglob("*")} - before
    uploads = home / "uploads"
    uuid_csv = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.csv$")
    kept = [p for p in created if p.parent == uploads]
    assert kept and all(uuid_csv.match(p.name) for p in kept), sorted(p.name for p in kept)
    strays = [p for p in created if p.parent != uploads and not p.name.startswith(
        ("restock.db", "ratelimits.db", "jobs.lock")) and "plots" not in p.parts]
    assert strays == [], strays
    with sqlite3.connect(home / "restock.db") as db:
        names = [row[0] for row in db.execute("select filename from uploads")]
    assert len(names) >= len(kept)
    for name in names:
        assert not re.search(r"[/\\\x00-\x1f\u202e]", name) and ".." not in name.strip("."), \
            repr(name)
        assert 0 < len(name) <= 120


def test_export_neutralises_formula_cells(secured: Flask) -> None:
    client = secured.test_client()
    hostile = ['=1+2', '+SUM(A1:A9)', '-2+3', '@cmd', '\t=1', '\r=1', '=HYPERLINK("http://x")',
               "=cmd|' /C calc'!A0", 'plain']
    lines = ["date,product_id,store_id,category,quantity"]
    for i, value in enumerate(hostile):
        quoted = '"' + value.replace('"', '""') + '"'
        lines.append(f"2024-01-{i + 1:02d},{quoted},{quoted},{quoted},1")
    answer = client.post("/retrain", headers=AUTH, data={"file": (
        io.BytesIO("\n".join(lines).encode()), "f.csv", "text/csv")})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    export = client.get("/data/export.csv", headers=AUTH)
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    seen = set()
    for row in rows:
        for column in ("product_id", "store_id", "category"):
            cell = row[column]
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
            seen.add(cell)
    for value in hostile:  # each one is there, prefixed (the parser may trim whitespace)
        expected = "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value
        assert expected in seen or value.strip() in {s.lstrip("'") for s in seen}, value


def test_cors_answers_only_allow_listed_origins(trained_copy: tuple[Path, str],
                                                apps: list[Flask]) -> None:
    home, _ = trained_copy
    allowed = "https://planner.example.com"
    app = make(home, cors_origins=allowed, api_tokens=TOKEN)
    apps.append(app)
    client = app.test_client()
    for endpoint, method, path in routes(app):
        preflight = client.options(path, headers={
            "Origin": allowed, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "Authorization"})
        assert preflight.headers.get("Access-Control-Allow-Origin") == allowed, endpoint
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        for origin in ("https://evil.example.com", "null", allowed + ".evil.com",
                       "http://planner.example.com", allowed.upper() + "x",
                       "https://planner.example.com:8443"):
            for answer in (client.options(path, headers={
                    "Origin": origin, "Access-Control-Request-Method": method}),
                    client.open(path, method=method, headers={"Origin": origin, **AUTH})):
                assert "Access-Control-Allow-Origin" not in answer.headers, (origin, path)
                assert "Access-Control-Allow-Credentials" not in answer.headers
                answer.close()
    simple = client.get("/series", headers={"Origin": allowed, **AUTH})
    assert simple.headers["Access-Control-Allow-Origin"] == allowed
    assert "Authorization" not in simple.headers.get("Access-Control-Allow-Headers", "")


def test_no_error_body_shows_a_trace_or_a_path(trained_copy: tuple[Path, str],
                                               apps: list[Flask]) -> None:
    """Every error this suite can provoke, on one app, including real 500s."""
    home, version = trained_copy
    app = make(home, api_tokens=TOKEN, max_upload_mb=0.05, ratelimit_default="100000/minute",
               ratelimit_retrain="100000/minute")
    apps.append(app)
    client = app.test_client()
    big = b"date,product_id,quantity\n" + b"2024-01-01,p1,1\n" * 10_000
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("get", "/series", {"headers": {}}, 401),
        ("post", "/forecast", {"data": "{nope", "content_type": "application/json"}, 400),
        ("post", "/forecast", {"json": {"product_id": "NOPE"}}, 404),
        ("post", "/forecast", {"json": {"days": 10_000}}, 400),
        ("post", "/forecast", {"json": {"days": -1}}, 422),
        ("post", "/forecast", {"json": {"service_level": "x" * 100}}, 422),
        ("post", "/forecast", {"data": "x", "content_type": "text/plain"}, 415),
        ("get", "/jobs/../../etc/passwd", {}, 404),
        ("get", "/jobs/nope", {}, 404),
        ("get", "/jobs/nope/events", {"headers": {"Last-Event-ID": "x", **AUTH}}, 400),
        ("delete", "/jobs/nope", {}, 404),
        ("get", "/plots/..%2f..%2frestock.db.png", {}, 404),
        ("get", "/plots/" + "a" * 32 + ".png", {}, 404),
        ("post", f"/models/{home}/activate", {}, 404),
        ("post", "/models/..%2f..%2fetc/activate", {}, 404),
        ("post", "/models/.staging-x/activate", {}, 404),
        ("put", "/forecast", {}, 405),
        ("post", "/retrain", {"data": {"file": (io.BytesIO(big), "b.csv", "text/csv")}}, 413),
        ("post", "/retrain", {"data": {"file": (io.BytesIO(b"a,b\n1,2\n"), "b.csv",
                                                "text/csv")}}, 422),
        ("post", "/retrain", {"data": {"file": (io.BytesIO(
            b"date,product_id,quantity\n2024-02-30,p,-1\n"), "b.csv", "text/csv")}}, 422),
        ("post", "/retrain", {"data": {"file": (io.BytesIO(b"\xff\xfe\xfa"), "b.csv",
                                                "text/csv")}}, 415),  # a UTF-16 BOM: named
        ("post", "/retrain", {"data": {"weights": "x"}}, 422),
        ("get", "/series?limit=-5", {}, 422),
    ]
    for method, path, kwargs, status in cases:
        kwargs.setdefault("headers", AUTH)
        answer = getattr(client, method)(path, **kwargs)
        assert answer.status_code == status, (method, path, answer.get_data(as_text=True))
        assert_clean_error(answer, status, home)
    # real 500s: the data table gone under a running app, then a damaged active version
    with sqlite3.connect(home / "restock.db") as db:
        db.execute("alter table sales rename to sales_gone")
    for path in ("/series", "/data/export.csv"):
        error = assert_clean_error(client.get(path, headers=AUTH), 500, home)
        assert error["code"] == "internal_error" and error["details"]["request_id"]
    with sqlite3.connect(home / "restock.db") as db:
        db.execute("alter table sales_gone rename to sales")
    arrays = home / "models" / version / "snapshot" / "forecast.yhat.npy"
    arrays.write_bytes(arrays.read_bytes()[:100])
    fresh = make(home, api_tokens=TOKEN)  # a new process would load the damaged version
    apps.append(fresh)
    answer = fresh.test_client().post("/forecast", headers=AUTH, json={"days": 7})
    assert answer.status_code >= 400
    assert_clean_error(answer, answer.status_code, home)
    health = fresh.test_client().get("/")
    assert health.status_code < 500 or not LEAKS.search(health.get_data(as_text=True))


# -- artifacts ---------------------------------------------------------------------------

PICKLE = re.compile(rb"^\x80[\x02-\x05]")


def test_a_trained_version_holds_no_pickle(trained_base: tuple[Path, str]) -> None:
    home, version = trained_base
    root = home / "models" / version
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    kinds: dict[str, int] = {}
    for path in files:
        data = path.read_bytes()
        assert not PICKLE.match(data), path.name
        assert not data.startswith(b"PK\x03\x04"), path.name  # torch.save's zip of pickles
        kinds[path.suffix] = kinds.get(path.suffix, 0) + 1
        if path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".parquet":
            assert data[:4] == b"PAR1" and data[-4:] == b"PAR1", path.name
            import pyarrow.parquet as pq

            schema = pq.read_schema(path)
            # no pickled extension types (pyarrow's old PyExtensionType): plain columns
            assert not any(type(f.type).__name__.endswith("ExtensionType") for f in schema)
        elif path.suffix == ".safetensors":
            (length,) = struct.unpack("<Q", data[:8])
            header = json.loads(data[8:8 + length])
            assert all(v["dtype"] in ("F32", "F64", "I64") for k, v in header.items()
                       if k != "__metadata__")
        elif path.suffix == ".npy":  # the snapshot's arrays: numbers or fixed-width text
            import numpy as np

            array = np.load(path, mmap_mode="r", allow_pickle=False)
            assert array.dtype.kind in "fiubU", path.name
        elif path.name == "booster.txt":  # LightGBM's own text format: a header, then trees
            assert data.startswith(b"tree\nversion="), path.name
            data.decode("ascii")
        else:
            pytest.fail(f"unexpected artifact type {path.name}")
    assert set(kinds) == {".json", ".npy", ".parquet", ".safetensors", ".txt"}
    source = Path(__file__).parents[2] / "src" / "restock"
    for path in source.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bimport pickle|\bpickle\.load|torch\.load|joblib|"
                             r"allow_pickle\s*=\s*True|(?<![.\w])eval\(|(?<![.\w])exec\(", text), path


@pytest.mark.parametrize("member_class", [
    "os.system", "builtins.eval", "subprocess.Popen", "evil_restock_probe.Evil",
    "restock.modelsevil_restock_probe.Evil", "restock.models.base.np", "restock.cli.main",
    "restock.models.ensemble.importlib", "restock.models.prophet.subprocess",
    "restock.models.ensemble.EnsembleForecaster.__init__.__globals__",
])
def test_a_tampered_ensemble_json_cannot_import_or_run_code(
        trained_base: tuple[Path, str], tmp_path: Path, member_class: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from restock.errors import RestockError
    from restock.models.ensemble import EnsembleForecaster

    home, version = trained_base
    copy = tmp_path / "version"
    shutil.copytree(home / "models" / version, copy)
    probe = tmp_path / "probe"
    probe.mkdir()
    marker = tmp_path / "ran"
    (probe / "evil_restock_probe.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Evil: pass\n")
    monkeypatch.syspath_prepend(str(probe))
    document = json.loads((copy / "ensemble.json").read_text())
    document["members"][0]["class"] = member_class
    (copy / "ensemble.json").write_text(json.dumps(document))
    modules = set(sys.modules)
    with pytest.raises((RestockError, ImportError, AttributeError)):
        EnsembleForecaster.load(copy)
    assert not marker.exists()
    assert "evil_restock_probe" not in sys.modules
    assert not {m for m in set(sys.modules) - modules if not m.startswith("restock.")}
