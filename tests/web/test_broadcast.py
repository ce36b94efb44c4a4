"""The stream broadcaster in-process: real job records (SQLite), real sockets (socket
pairs standing in for client connections), one thread fanning events out to all of them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from restock.data.store import SalesStore
from restock.jobs import JobRecords, ThreadJobQueue
from restock.web.broadcast import MAX_BACKLOG, Broadcaster, Handoff
from restock.web.streamslots import StreamSlots, StreamsFullError, TooManyStreamsError
from webtools import HEAD, connect, wait_for


def never_run(params: dict, on_event: object) -> dict:
    raise AssertionError("jobs are written by the test, not run")


@pytest.fixture
def records(tmp_path: Path) -> Iterator[JobRecords]:
    store = SalesStore(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "uploads")
    yield JobRecords(store.engine)
    store.close()


@pytest.fixture
def slots() -> StreamSlots:
    return StreamSlots(total=500, per_client=500)


@pytest.fixture
def broadcaster(records: JobRecords) -> Iterator[Broadcaster]:
    queue = ThreadJobQueue(records, never_run)  # not started: only its reads are used
    hub = Broadcaster(queue, heartbeat=0.2)
    yield hub
    hub.close()


def test_every_stream_gets_every_event_from_its_own_resume_point(
        broadcaster: Broadcaster, records: JobRecords, slots: StreamSlots) -> None:
    job = records.create({})
    records.progress(job.job_id, {"stage": "validate", "progress": 0.1})
    fresh = [connect(broadcaster, slots, job.job_id) for _ in range(60)]
    resumed = [connect(broadcaster, slots, job.job_id, after_id=2) for _ in range(5)]
    wait_for(lambda: broadcaster.streams == 65, 5, "all streams attached")
    for step in range(5):
        records.progress(job.job_id, {"stage": "lstm", "progress": 0.2 + step / 10})
        time.sleep(0.05)
    time.sleep(0.5)  # silence: heartbeats
    records.finish(job.job_id, "succeeded", "done", {"model_version": "v1"},
                   model_version="v1")
    for client in fresh + resumed:
        client.thread.join(10)
        assert not client.thread.is_alive(), "the server closes each stream after 'done'"
    for client, first in [(c, 1) for c in fresh] + [(c, 3) for c in resumed]:
        items = client.events()
        assert items[0] == {"retry": 2000}
        events = [e for e in items if "event" in e]
        assert [e["id"] for e in events] == list(range(first, 9))
        assert events[-1] == {"id": 8, "event": "done", "data": {"model_version": "v1"}}
        assert {"comment": "heartbeat"} in items
    wait_for(lambda: slots.open == 0, 5, "every slot given back")
    assert broadcaster.feeds == {}


def test_a_client_that_leaves_gives_its_slot_back(
        broadcaster: Broadcaster, records: JobRecords, slots: StreamSlots) -> None:
    job = records.create({})
    staying = connect(broadcaster, slots, job.job_id)
    leaving = connect(broadcaster, slots, job.job_id)
    wait_for(lambda: b"id: 1" in leaving.data, 5, "the first event")
    leaving.sock.shutdown(socket.SHUT_RDWR)
    wait_for(lambda: slots.open == 1, 5, "the slot of the closed stream")
    records.finish(job.job_id, "cancelled", "error", {"code": "cancelled"})
    staying.thread.join(10)
    assert [e["event"] for e in staying.events() if "event" in e] == ["progress", "error"]
    wait_for(lambda: slots.open == 0, 5, "every slot given back")


def test_a_client_that_stops_reading_is_dropped(
        broadcaster: Broadcaster, records: JobRecords, slots: StreamSlots) -> None:
    job = records.create({})
    server_side, stuck = socket.socketpair()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    broadcaster.add(Handoff(server_side, HEAD, job.job_id, 0, False, slots.acquire("slow")))
    reader = connect(broadcaster, slots, job.job_id)
    big = "x" * 20_000
    for _ in range(3 * MAX_BACKLOG // len(big)):
        records.progress(job.job_id, {"stage": "lstm", "blob": big})
    wait_for(lambda: slots.open == 1, 60, "the stuck stream dropped")  # only a hang fails
    records.finish(job.job_id, "succeeded", "done", {})
    reader.thread.join(10)
    assert reader.events()[-1]["event"] == "done"  # the reading client got everything
    stuck.close()


def test_a_finished_job_replays_and_ends_even_past_its_last_event(
        broadcaster: Broadcaster, records: JobRecords, slots: StreamSlots) -> None:
    job = records.create({})
    records.finish(job.job_id, "succeeded", "done", {"model_version": "v1"})
    replay = connect(broadcaster, slots, job.job_id, after_id=1, finished=True)
    beyond = connect(broadcaster, slots, job.job_id, after_id=99, finished=True)
    for client in (replay, beyond):
        client.thread.join(5)
        assert not client.thread.is_alive()
    assert [e["id"] for e in replay.events() if "event" in e] == [2]
    assert [e for e in beyond.events() if "event" in e] == []


def test_the_limits_per_client_and_in_total() -> None:
    slots = StreamSlots(total=3, per_client=2)
    first = slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(TooManyStreamsError) as crowded:
        slots.acquire("a")
    assert crowded.value.details == {"open": 2, "limit": 2}
    slots.acquire("b")
    with pytest.raises(StreamsFullError):
        slots.acquire("c")
    first.release()
    first.release()  # twice is harmless
    assert slots.open == 2
    slots.acquire("c")


def test_connections_handed_to_a_stopped_broadcaster_are_closed(
        broadcaster: Broadcaster, records: JobRecords, slots: StreamSlots) -> None:
    job = records.create({})
    broadcaster.close()
    late = connect(broadcaster, slots, job.job_id)
    late.thread.join(5)
    assert not late.thread.is_alive() and late.data == b""  # EOF: the client reconnects
    assert slots.open == 0
