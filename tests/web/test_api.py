"""The API surface through the Flask test client, over a real SQLite store and queue."""

from __future__ import annotations

import csv
import io

from flask import Flask
from flask.testing import FlaskClient

from webtools import GOOD_CSV, StepTask, csv_upload, parse_sse, wait_job


def test_health_before_any_model(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["model_version"] is None
    assert body["queue"]["kind"] == "thread"
    assert body["queue"]["queued"] == 0 and body["queue"]["running"] == 0
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_retrain_merges_upload_then_queues_a_job(client: FlaskClient, step_task: StepTask,
                                                 app: Flask) -> None:
    response = client.post("/retrain", data=csv_upload(weights="seed"))
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["upload"]["rows_read"] == 2 and body["upload"]["inserted"] == 2
    assert response.headers["Location"] == body["status_url"] == f"/jobs/{body['job_id']}"
    assert body["events_url"] == f"/jobs/{body['job_id']}/events"
    assert app.extensions["restock"].store.stats()["rows"] == 2
    wait_job(client, body["job_id"], "running")
    step_task.release.set()
    done = wait_job(client, body["job_id"], "succeeded")
    assert done["model_version"] == "v-test" and done["progress"] == 1.0
    assert step_task.calls == [{"weights": "seed"}]
    # the same key uploaded again replaces, it does not duplicate
    again = client.post("/retrain", data=csv_upload()).get_json()
    assert again["upload"]["updated"] == 2 and again["upload"]["inserted"] == 0


def test_job_events_replay_and_resume_after_last_event_id(
        client: FlaskClient, step_task: StepTask) -> None:
    job_id = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    wait_job(client, job_id, "running")
    step_task.release.set()
    wait_job(client, job_id, "succeeded")
    response = client.get(f"/jobs/{job_id}/events")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = [e for e in parse_sse(response.get_data(as_text=True).splitlines())
              if "event" in e]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["data"]["stage"] == "queued"
    assert events[-1]["event"] == "done"
    assert events[-1]["data"]["model_version"] == "v-test"
    resumed = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "2"})
    rest = [e for e in parse_sse(resumed.get_data(as_text=True).splitlines()) if "event" in e]
    assert rest == events[2:]
    # having seen the last event, a reconnect ends at once with nothing new
    final = client.get(f"/jobs/{job_id}/events",
                       headers={"Last-Event-ID": str(events[-1]["id"])})
    assert [e for e in parse_sse(final.get_data(as_text=True).splitlines())
            if "event" in e] == []


def test_retrain_streams_when_the_client_accepts_event_stream(
        client: FlaskClient, step_task: StepTask) -> None:
    step_task.release.set()
    response = client.post("/retrain", data=csv_upload(),
                           headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = [e for e in parse_sse(response.get_data(as_text=True).splitlines())
              if "event" in e]
    assert events[0]["data"]["job_id"] == response.headers["X-Job-ID"]
    assert events[-1]["event"] == "done"
    assert {e["data"].get("stage") for e in events[:-1]} >= {"queued", "validate", "done"}


def test_cancel_queued_and_running_jobs(client: FlaskClient, step_task: StepTask,
                                        app: Flask) -> None:
    first = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    second = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    wait_job(client, first, "running")
    queued = client.delete(f"/jobs/{second}")
    assert queued.status_code == 200 and queued.get_json()["status"] == "cancelled"
    running = client.delete(f"/jobs/{first}")
    assert running.status_code == 202
    ended = wait_job(client, first, "cancelled")
    assert ended["error"]["code"] == "cancelled" and ended["model_version"] is None
    assert len(step_task.calls) == 1  # the queued one never started
    again = client.delete(f"/jobs/{first}")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "job_conflict"
    events = parse_sse(client.get(f"/jobs/{first}/events").get_data(as_text=True).splitlines())
    assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "cancelled"


def test_series_filters_and_pages(client: FlaskClient, app: Flask) -> None:
    rows = ["date,product_id,store_id,category,quantity"]
    for product in ("a", "b", "c"):
        for store in ("s1", "s2"):
            rows += [f"2024-01-0{d},{product},{store},{'x' if product != 'c' else 'y'},{d}"
                     for d in range(1, 4)]
    app.extensions["restock"].store.ingest_bytes(("\n".join(rows) + "\n").encode(), "s.csv")
    everything = client.get("/series").get_json()
    assert everything["total"] == 6 and len(everything["items"]) == 6
    assert everything["items"][0] == {
        "product_id": "a", "store_id": "s1", "category": "x", "rows": 3,
        "first_date": "2024-01-01", "last_date": "2024-01-03", "mean": 2.0, "zero_share": 0.0}
    page = client.get("/series?limit=2&offset=2").get_json()
    assert [(i["product_id"], i["store_id"]) for i in page["items"]] == [("b", "s1"), ("b", "s2")]
    assert page["total"] == 6
    both = client.get("/series?product_id=a&product_id=c&store_id=s2").get_json()
    assert [(i["product_id"], i["store_id"]) for i in both["items"]] == [("a", "s2"), ("c", "s2")]
    assert client.get("/series?category=y").get_json()["total"] == 2
    bad = client.get("/series?limit=0")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_request"


def test_export_streams_formula_safe_csv(client: FlaskClient, app: Flask) -> None:
    raw = b"date,product_id,quantity\n2024-01-01,=HYPERLINK(1),3\n2024-01-01,plain,1\n"
    app.extensions["restock"].store.ingest_bytes(raw, "x.csv")
    response = client.get("/data/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["product_id"] for r in rows] == ["'=HYPERLINK(1)", "plain"]


def test_openapi_is_generated_from_the_request_models(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for path in ("/", "/retrain", "/jobs/{job_id}", "/jobs/{job_id}/events", "/forecast",
                 "/series", "/models", "/models/{version}/activate", "/data/export.csv"):
        assert path in doc["paths"], path
    schemas = doc["components"]["schemas"]
    forecast = next(v for k, v in schemas.items() if k.startswith("ForecastRequest"))
    assert forecast["additionalProperties"] is False
    assert forecast["properties"]["service_level"]["default"] == 0.95
    form = next(v for k, v in schemas.items() if k.startswith("RetrainForm"))
    assert form["properties"]["file"]["format"] == "binary"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_ui_page_and_static_assets(client: FlaskClient) -> None:
    for path in ("/ui", "/retrain.html"):
        page = client.get(path)
        assert page.status_code == 200 and page.mimetype == "text/html"
        assert b"restock" in page.data
    assert client.get("/static/retrain.css").status_code == 200


def test_forecast_from_the_trained_model(trained_app: Flask) -> None:
    client = trained_app.test_client()
    series = client.get("/series").get_json()["items"]
    product = series[0]["product_id"]
    response = client.post("/forecast", json={"product_id": product, "days": 14,
                                              "lead_time_days": 5, "plot": True})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model_version"] == client.get("/").get_json()["model_version"]
    assert len(body["forecast"]) == 14
    row = body["forecast"][0]
    assert row["yhat_lower"] <= row["yhat"] <= row["yhat_upper"]
    assert {"prophet", "lstm"} <= set(row)
    assert body["selection"]["product_id"] == [product]
    assert "reorder_point" in body["inventory"]
    assert all({"code", "severity", "message"} <= set(w) for w in body["warnings"])
    png = client.get(body["plot_url"])
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    default = client.post("/forecast", json={}).get_json()
    assert len(default["forecast"]) == 30 and default["selection"]["product_id"] == []


def test_models_list_and_activate(trained_app: Flask) -> None:
    client = trained_app.test_client()
    listing = client.get("/models").get_json()
    assert len(listing["items"]) == 1 and listing["items"][0]["active"]
    version = listing["current"]
    assert listing["items"][0]["version"] == version
    response = client.post(f"/models/{version}/activate")
    assert response.status_code == 200 and response.get_json() == {"model_version": version}
    missing = client.post("/models/20990101-000000-000000-0000/activate")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "model_not_found"
    health = client.get("/").get_json()
    assert health["model_version"] == version and health["rows"] == 720 and health["series"] == 6


def test_upload_leaves_nothing_behind_when_rejected(client: FlaskClient, app: Flask) -> None:
    store = app.extensions["restock"].store
    bad = GOOD_CSV + b"2024-01-03,p1,s1,-1\n"
    response = client.post("/retrain", data=csv_upload(bad))
    assert response.status_code == 422
    assert store.stats()["rows"] == 0
    assert list(store.uploads_dir.iterdir()) == []
    assert client.get("/").get_json()["queue"] == {"kind": "thread", "queued": 0,
                                                     "running": 0, "runner": True}
