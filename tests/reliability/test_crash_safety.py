"""Crash safety: ``kill -9`` of a real ``restock serve`` (embedded queue) or ``restock
worker`` (Celery) in every retrain stage, and damaged version folders.

A kill leaves the previous version active and serving, the upload whole in the sales
table (it is merged, in one transaction, before the job is queued) or absent when the kill
lands inside that transaction, the job ``failed`` with ``interrupted`` (``worker_lost`` on
Celery, see README), and the next retrain succeeds over whatever the dead one left on disk.

To stop in the short stages at a known point the server runs with the production test
hook ``RESTOCK_TEST_PAUSE_AT_STAGE`` (training.ProgressReporter: one sleep right after the
stage's event is reported; nothing when unset); the test reads the job's SSE stream and
kills the process group as soon as that event arrives.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from reltools import FAST_ENV, Server, demo_frame, follow, to_csv, wait_for, wait_job
from restock.data.store import SalesStore
from restock.errors import ModelNotFoundError
from restock.registry import ModelRegistry

pytestmark = pytest.mark.timeout(900)

#: stage -> (pause hook value, "we are there" predicate on an event's data)
STAGES: dict[str, tuple[str, Any]] = {
    "merge": ("merge", lambda d: d.get("stage") == "merge"),
    "prophet": ("prophet", lambda d: d.get("stage") == "prophet"),
    "lstm": ("lstm", lambda d: d.get("stage") == "lstm"),
    # artifacts written, manifest not yet sealed: a half-written staging folder
    "save": ("save:0.9", lambda d: d.get("stage") == "save"
             and d.get("message", "").startswith("sealing")),
    # sealed and complete, not yet named by ``current``
    "activate": ("activate", lambda d: d.get("stage") == "activate"),
}


#: stages only a ``seed`` retrain is sure to reach (``auto`` refits Prophet and the LSTM
#: only where the chosen combinations use them)
SEED_ONLY = ("prophet", "lstm")


def serve(home: Path, pause: str | None = None) -> Server:
    env = dict(FAST_ENV)
    if pause:
        env.update(RESTOCK_TEST_PAUSE_AT_STAGE=pause, RESTOCK_TEST_PAUSE_SECONDS="120")
        if pause in SEED_ONLY:
            env.update(RESTOCK_WEIGHTS="seed")
    return Server(home, workers=1, **env)


def marked_upload(k: int) -> tuple[bytes, pd.DataFrame]:
    """The last 20 days of the base data with quantities moved by 100*k: every row of the
    upload replaces a stored one with a value no other upload has."""
    frame = demo_frame()
    frame = frame[frame["date"] > frame["date"].max() - pd.Timedelta(days=20)].copy()
    frame["quantity"] = frame["quantity"] + 100 * k
    return to_csv(frame), frame


def stored(home: Path) -> pd.DataFrame:
    store = SalesStore(f"sqlite:///{home / 'restock.db'}", home / "uploads")
    try:
        return store.query()
    finally:
        store.close()


def assert_whole_upload(home: Path, upload: pd.DataFrame) -> None:
    table = stored(home).set_index(["date", "product_id", "store_id"])["quantity"]
    keys = list(zip(pd.to_datetime(upload["date"]), upload["product_id"],
                    upload["store_id"].fillna("")))
    assert table.loc[keys].to_numpy().tolist() == upload["quantity"].astype(float).tolist()


def assert_serving(server: Server, version: str) -> None:
    assert requests.get(server.url + "/", timeout=10).json()["model_version"] == version
    answer = requests.post(server.url + "/forecast", timeout=30,
                           json={"product_id": "P0001", "store_id": "S01", "days": 7})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == version
    models = requests.get(server.url + "/models", timeout=10)
    assert models.status_code == 200 and models.json()["current"] == version


def crash_in(home: Path, stage: str, k: int) -> tuple[str, pd.DataFrame]:
    """Start a server paused at ``stage``, upload, wait for the stage, kill -9 the group."""
    pause, arrived = STAGES[stage]
    raw, frame = marked_upload(k)
    server = serve(home, pause)
    try:
        accepted = requests.post(server.url + "/retrain", timeout=60,
                                 files={"file": (f"stage-{stage}.csv", raw, "text/csv")})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        seen = follow(server.url, job_id, lambda d: arrived(d) or d.get("code") is not None)
        assert seen and arrived(seen[-1]), f"never reached {stage}: {seen[-3:]}"
    finally:
        server.kill()
    return job_id, frame


def assert_recovered(server: Server, home: Path, job_id: str, upload: pd.DataFrame,
                     version: str) -> None:
    job = wait_job(server.url, job_id, ("failed", "succeeded", "cancelled"), timeout=30)
    assert job["status"] == "failed" and job["error"]["code"] == "interrupted", job
    assert job["model_version"] is None
    assert_serving(server, version)
    assert_whole_upload(home, upload)
    listed = [m["version"] for m in requests.get(server.url + "/models", timeout=10).json()
              ["items"]]
    assert not any(v.startswith(".") for v in listed)


def retrain_succeeds(server: Server, old: str) -> str:
    raw, _ = marked_upload(0)  # back to the original figures
    job_id = requests.post(server.url + "/retrain", timeout=60,
                           files={"file": ("again.csv", raw, "text/csv")}).json()["job_id"]
    job = wait_job(server.url, job_id, timeout=300)
    assert job["status"] == "succeeded", job
    new = job["model_version"]
    assert new != old
    assert_serving(server, new)
    return new


@pytest.mark.parametrize("stages", [
    # the quick suite: a kill inside the Prophet process pool and one that leaves a
    # half-written staging folder (merge: see the transaction test below)
    pytest.param(("prophet", "save"), id="prophet+save"),
    pytest.param(tuple(STAGES), id="all-five", marks=pytest.mark.slow),
])
def test_kill9_in_each_stage_then_retrain(trained_copy: tuple[Path, str],
                                          stages: tuple[str, ...]) -> None:
    """One home through a kill in each stage in turn (each restart checks the previous
    kill), then a retrain over everything the dead retrains left behind."""
    home, v1 = trained_copy
    pending: tuple[str, pd.DataFrame] | None = None
    for k, stage in enumerate(stages, start=1):
        if pending is not None:  # the restart that checks the previous kill
            checker = serve(home)
            try:
                assert_recovered(checker, home, *pending, v1)
            finally:
                checker.stop()
        pending = crash_in(home, stage, k)
    server = serve(home)
    try:
        assert pending is not None
        assert_recovered(server, home, *pending, v1)
        leftovers = {p.name for p in (home / "models").iterdir()}
        assert any(n.startswith(".staging-") for n in leftovers), leftovers  # from "save"
        if "activate" in stages:  # sealed and complete, never named by ``current``
            assert len([n for n in leftovers if n[0].isdigit()]) == 2, leftovers
        new = retrain_succeeds(server, v1)
        # the dead retrain's staging folder stays until it is a day old (registry.prune
        # cannot tell it from a live retrain's); it is never listed nor activated
        listed = {m["version"] for m in requests.get(server.url + "/models", timeout=10)
                  .json()["items"]}
        assert not any(n.startswith(".") for n in listed), listed
        registry = ModelRegistry(home / "models")
        for version in [m["version"] for m in registry.versions()]:
            registry.verify(version)  # every listed version is complete
        assert registry.current() == new
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_kill9_in_one_stage_then_retrain(trained_copy: tuple[Path, str], stage: str) -> None:
    """The same, one stage per fresh home, with a successful retrain after each kill."""
    home, v1 = trained_copy
    job_id, upload = crash_in(home, stage, 1)
    server = serve(home)
    try:
        assert_recovered(server, home, job_id, upload, v1)
        retrain_succeeds(server, v1)
    finally:
        server.stop()


def test_kill9_inside_the_merge_transaction(trained_copy: tuple[Path, str]) -> None:
    """A kill while ``POST /retrain`` merges a 24,000-row upload: after a restart the
    sales table holds all of it or none of it, and the old model serves."""
    home, v1 = trained_copy
    before = stored(home)
    frame = demo_frame(products=40, stores=3, days=200, seed=9)
    frame["product_id"] = "Z" + frame["product_id"]
    raw = to_csv(frame)
    uploads = home / "uploads"
    known = set(uploads.iterdir())
    server = serve(home)
    outcome: dict[str, Any] = {}
    try:

        def post() -> None:
            try:
                outcome["response"] = requests.post(
                    server.url + "/retrain", timeout=120,
                    files={"file": ("big.csv", raw, "text/csv")})
            except requests.RequestException as error:
                outcome["error"] = error

        poster = threading.Thread(target=post)
        poster.start()
        # the file is kept under uploads/ right before the merge transaction begins
        wait_for(lambda: set(uploads.glob("*.csv")) - known, 120, "the upload to be kept",
                 interval=0.002)
        server.kill()
        poster.join(60)
    finally:
        server.stop()
    assert "response" not in outcome, "the kill came after the answer: not mid-merge"
    server = serve(home)
    try:
        assert_serving(server, v1)
        after = stored(home)
        added = after[after["product_id"].str.startswith("Z")]
        assert len(added) in (0, len(frame)), len(added)
        assert len(after) == len(before) + len(added)
        store = SalesStore(f"sqlite:///{home / 'restock.db'}", uploads)
        try:
            statuses = store.uploads()["status"].tolist()
        finally:
            store.close()
        assert "applying" not in statuses  # the upload row rolled back with the rows
        assert statuses.count("applied") == 1 + (len(added) > 0)
        outcome["landed"] = len(added) > 0
    finally:
        server.stop()


# -- damaged version folders ------------------------------------------------------------


def damage(models: Path, v1: str) -> dict[str, str]:
    """Version folders as a crash, a full disk or a bad copy leave them; name -> how."""
    import shutil

    cases = {}

    def clone(name: str) -> Path:
        shutil.copytree(models / v1, models / name)
        return models / name

    target = clone("20990101-000000-000000-trun")  # newest: would sort first
    arrays = target / "snapshot" / "forecast.yhat.npy"
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    cases[target.name] = "truncated file"
    target = clone("20990101-000000-000000-miss")
    (target / "lstm.safetensors").unlink()
    cases[target.name] = "missing file"
    target = clone("20990101-000000-000000-flip")
    meta = json.loads((target / "meta.json").read_text())
    data = bytearray((target / "snapshot" / "history.npy").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "snapshot" / "history.npy").write_bytes(bytes(data))
    cases[target.name] = "flipped byte"
    target = clone("20990101-000000-000000-half")
    text = (target / "meta.json").read_text()
    (target / "meta.json").write_text(text[: len(text) // 2])
    cases[target.name] = "half-written meta.json"
    target = clone("20990101-000000-000000-nman")
    meta.pop("manifest")
    (target / "meta.json").write_text(json.dumps(meta))
    cases[target.name] = "no manifest"
    target = clone("20990101-000000-000000-bin")
    (target / "meta.json").write_bytes(b"\xff\xfe\x00garbage\x80")
    cases[target.name] = "binary meta.json"
    for payload, name in (("[]", "list"), ("null", "null"), ('"x"', "str")):
        target = clone(f"20990101-000000-000000-{name}")
        (target / "meta.json").write_text(payload)
        cases[target.name] = f"meta.json is {payload}"
    target = clone("20990101-000000-000000-mfst")
    (target / "meta.json").write_text(json.dumps({**meta, "manifest": {"x": 1},
                                                  "metrics_summary": None}))
    cases[target.name] = "malformed manifest"
    target = clone("20990101-000000-000000-trav")
    (target / "meta.json").write_text(json.dumps({**meta, "manifest": {
        "../../../../etc/hostname": {"size": 1, "sha256": "0" * 64}}}))
    cases[target.name] = "manifest naming a file outside the version"
    (models / ".staging-20990101-000000-000000-stag").mkdir()
    return cases


def test_damaged_versions_are_never_activated_and_are_reported(
        trained_copy: tuple[Path, str]) -> None:
    home, v1 = trained_copy
    models = home / "models"
    cases = damage(models, v1)
    registry = ModelRegistry(models)
    for version, how in cases.items():
        with pytest.raises(ModelNotFoundError) as caught:
            registry.verify(version)
        assert version in caught.value.message, how
        with pytest.raises(ModelNotFoundError):
            registry.activate(version)
        assert registry.current() == v1, how
    with pytest.raises(ModelNotFoundError):
        registry.activate(".staging-20990101-000000-000000-stag")
    listed = registry.versions()  # does not crash on any of them
    assert [v["version"] for v in listed if v["active"]] == [v1]

    from flask import Flask  # noqa: F401 - the app in-process: fast, same code as served

    from restock.config import Settings
    from restock.web import create_app

    app = create_app(Settings.from_env({"home": home}, environ={}))
    try:
        client = app.test_client()
        body = client.get("/models")
        assert body.status_code == 200, body.get_data(as_text=True)
        assert body.get_json()["current"] == v1
        for version, how in cases.items():
            answer = client.post(f"/models/{version}/activate")
            assert answer.status_code == 404, (how, answer.get_data(as_text=True))
            error = answer.get_json()["error"]
            assert error["code"] == "model_not_found", how
            assert str(home) not in answer.get_data(as_text=True)
        forecast = client.post("/forecast", json={"product_id": "P0001", "days": 7})
        assert forecast.status_code == 200 and forecast.get_json()["model_version"] == v1
    finally:
        app.extensions["restock"].close()

    cli = subprocess.run([sys.executable, "-m", "restock", "--home", str(home), "models",
                          "list"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert re.search(rf"^{re.escape(v1)} .*\*$", cli.stdout, re.M), cli.stdout
    cli = subprocess.run([sys.executable, "-m", "restock", "--home", str(home), "models",
                          "activate", "20990101-000000-000000-trun"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode != 0 and "damaged" in cli.stderr + cli.stdout
    assert "Traceback" not in cli.stderr
    assert ModelRegistry(models).current() == v1


# -- Celery ------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill9_of_a_celery_worker_in_the_lstm_stage(tmp_path: Path, redis_client: Any) -> None:
    from cluster import Topology  # tests/scale: the same process machinery as its tests

    topology = Topology(tmp_path, redis_client, RESTOCK_JOB_LOCK_TTL="3", **FAST_ENV)
    try:
        topology.start_server(workers=1)
        first = topology.start_worker(concurrency=1)
        base = to_csv(demo_frame())
        v1 = topology.wait_job(topology.upload(base).json()["job_id"], ("succeeded",)
                               )["model_version"]
        Topology.kill(first)
        topology.env.update(RESTOCK_TEST_PAUSE_AT_STAGE="lstm",
                            RESTOCK_TEST_PAUSE_SECONDS="120")
        doomed_worker = topology.start_worker(concurrency=1)
        raw, frame = marked_upload(7)
        job_id = topology.upload(raw).json()["job_id"]
        seen = follow(topology.url, job_id, lambda d: d.get("stage") == "lstm")
        assert seen[-1]["stage"] == "lstm"
        Topology.kill(doomed_worker)
        del topology.env["RESTOCK_TEST_PAUSE_AT_STAGE"]
        time.sleep(2 * 3)  # two lock TTLs
        topology.start_worker(concurrency=1)
        job = topology.wait_job(job_id, ("failed", "succeeded", "cancelled"), timeout=60)
        assert job["status"] == "failed" and job["error"]["code"] == "worker_lost", job
        assert topology.current_version() == v1
        assert_whole_upload(topology.home, frame)
        again = topology.wait_job(topology.upload(base).json()["job_id"],
                                  ("succeeded", "failed"))
        assert again["status"] == "succeeded", again
        assert topology.current_version() == again["model_version"] != v1
    finally:
        topology.close()
