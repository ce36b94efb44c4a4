"""Open progress streams are limited per client address (429) and per process (503), with
the usual JSON error body and Retry-After; a stream's slot comes back when its body ends.

Through the test client the stream is the in-thread generator (there is no gunicorn socket
to take over), so these run in-process; the detached path is covered by
``test_serve_streams``.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from webtools import csv_upload, parse_sse, wait_job


def test_too_many_streams_per_client_then_in_total(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_streams=3, max_streams_per_client=2)
    slots = app.extensions["restock"].streams.slots
    client = app.test_client()
    job_id = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    url = f"/jobs/{job_id}/events"
    held = client.get(url, buffered=False)  # open until closed
    assert held.status_code == 200 and slots.open == 1
    # the test client runs a stream's generator in the calling thread, so a second open
    # stream of this client is a slot taken directly (as the view does)
    second = slots.acquire("127.0.0.1")

    crowded = client.get(url)
    assert crowded.status_code == 429
    # ours says 5 s; flask-limiter raises it to its own window's reset when that is later
    assert int(crowded.headers["Retry-After"]) >= 5
    assert crowded.get_json()["error"] == {
        "code": "too_many_streams", "details": {"open": 2, "limit": 2},
        "message": "this client already has 2 open progress streams, the limit per client; "
                   "close one or retry later"}
    streamed = client.post("/retrain", data=csv_upload(),  # a streamed retrain counts too
                           headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 429
    assert streamed.get_json()["error"]["code"] == "too_many_streams"

    elsewhere = {"REMOTE_ADDR": "10.0.0.7"}
    third = slots.acquire(elsewhere["REMOTE_ADDR"])
    full = client.get(url, environ_base=elsewhere)
    assert full.status_code == 503
    assert int(full.headers["Retry-After"]) >= 5
    assert full.get_json()["error"]["code"] == "streams_full"
    assert slots.open == 3

    held.close()  # the body ended: its slot is free again
    assert slots.open == 2
    again = client.get(url, environ_base=elsewhere, buffered=False)
    assert again.status_code == 200
    again.close()
    second.release()
    third.release()
    assert slots.open == 0


def test_errors_before_the_stream_take_no_slot(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_streams_per_client=1)
    client = app.test_client()
    assert client.get("/jobs/nope/events").status_code == 404
    job_id = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    bad = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400
    assert app.extensions["restock"].streams.slots.open == 0
    assert client.delete(f"/jobs/{job_id}").status_code in (200, 202)
    wait_job(client, job_id, "cancelled")
    replay = client.get(f"/jobs/{job_id}/events")  # buffered: ends with the job's error
    events = [e for e in parse_sse(replay.get_data(as_text=True).splitlines()) if "event" in e]
    assert events[-1]["data"]["code"] == "cancelled"
    replay.close()
    assert app.extensions["restock"].streams.slots.open == 0
