"""Independent shards of a member's fit, run here or on the cluster's workers.

Prophet's per-series fits and the statistical members' ``StatsForecast`` chunks are the
same kind of work: independent pieces whose results the member gathers in any order.
Each member describes its piece once, as a ``ShardWork`` (how to run one shard, and how
a shard and its result cross the broker); ``run_shards`` runs a list of shards in this
process (one after the other, or over one local process pool for them all), unless the
job runner has installed a ``ShardMap`` with ``shard_with``: then they go wherever that
map sends them (``restock.jobs.celery``: shard tasks on the Celery workers, watched by
``restock.jobs.shards``).

A context variable rather than a constructor argument: the job runner decides where fits
run, while the pipeline, the ensemble and the members stay unaware of any broker, and
saved hyperparameters stay plain data.

The wire forms are JSON values (Celery's only accepted content type here), with frames
as Arrow IPC streams in base64: exact floats and dtypes, and nothing is unpickled.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from restock.models.frames import Series
from restock.processes import safe_context

S = TypeVar("S")
R = TypeVar("R")


class ShardWork(ABC, Generic[S, R]):
    """One kind of shard: how to run it, and its JSON wire form for a shard task.

    ``restock.jobs.celery`` registers one task per kind, ``restock.<name>_shard``, whose
    body is ``encode_result(run(decode(data), config))``.
    """

    #: names the kind's Celery task and its log lines
    name: ClassVar[str]

    @abstractmethod
    def run(self, shard: S, config: dict[str, Any]) -> R:
        """Do the work of one shard (here, or in a worker's shard task)."""

    @abstractmethod
    def series(self, shard: S) -> int:
        """How many series the shard holds: its task's time limit grows with it."""

    @abstractmethod
    def encode(self, shard: S) -> Any:
        """The shard as a JSON value."""

    @abstractmethod
    def decode(self, data: Any) -> S:
        """The shard back from ``encode``'s JSON value (on the worker)."""

    def encode_result(self, result: R) -> Any:
        """The result as a JSON value (as it is, for results that are JSON already)."""
        return result

    def decode_result(self, data: Any) -> R:
        """The result back from ``encode_result``'s JSON value (on the coordinator)."""
        return data


#: Runs shards somewhere else: gets the kind, the shards (read once, in order: they may be
#: built lazily) and the config (JSON), yields ``(shard index, result)`` as each shard
#: lands, in any order.
ShardMap = Callable[[ShardWork[Any, Any], Iterable[Any], dict[str, Any]],
                    Iterator[tuple[int, Any]]]

_shard_map: ContextVar[ShardMap | None] = ContextVar("restock_shard_map", default=None)


@contextmanager
def shard_with(shard_map: ShardMap) -> Iterator[None]:
    """Within this block, members send their shards through ``shard_map``."""
    token = _shard_map.set(shard_map)
    try:
        yield
    finally:
        _shard_map.reset(token)


def on_cluster() -> bool:
    """Whether shards would leave this process: members then cut smaller shards, and
    keep work too cheap to ship (or to pool) at home."""
    return _shard_map.get() is not None


def run_shards(work: ShardWork[S, R], shards: Iterable[S], config: dict[str, Any], *,
               here: bool = False, processes: int = 1) -> Iterator[tuple[int, R]]:
    """Each shard's ``(index, result)``: through the installed ``ShardMap`` (in the order
    shards land), else (or with ``here``: work too cheap to ship) run here: one after the
    other, or with ``processes`` > 1 over one process pool (in the order they finish).

    Leaving the loop early (a cancelled retrain raising from its progress callback) stops
    here between shards, and makes the map revoke (the pool drop) the shards still pending.
    """
    shard_map = _shard_map.get()
    if shard_map is not None and not here:
        for index, data in shard_map(work, shards, config):
            yield index, work.decode_result(data)
    elif processes > 1:
        yield from _in_pool(work, shards, config, processes)
    else:
        for index, shard in enumerate(shards):
            yield index, work.run(shard, config)


def _in_pool(work: ShardWork[S, R], shards: Iterable[S], config: dict[str, Any],
             processes: int) -> Iterator[tuple[int, R]]:
    """The shards over one pool of ``processes`` workers started by the fork server.

    One pool for all of a fit's shards: a worker pays its start (the fork server's fork,
    statsforecast's compiled functions loaded) once, where a pool per ``StatsForecast``
    call paid it per chunk (measured: Theta on M3's 1,428 series took 17 s in chunks of
    200 with a pool each, 5 s in one call). ``work`` and the shards are pickled to the
    workers (in memory, never stored); at most two shards per worker are in flight, so a
    lazily built list of shards is never all in memory at once.
    """
    executor = ProcessPoolExecutor(max_workers=processes, mp_context=safe_context())
    queued = enumerate(shards)
    pending: dict[Future[R], int] = {}

    def submit_next() -> None:
        item = next(queued, None)
        if item is not None:
            pending[executor.submit(work.run, item[1], config)] = item[0]

    try:
        for _ in range(2 * processes):
            submit_next()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                submit_next()
                yield index, future.result()
    finally:
        # early exit (cancelled, or a shard failed): queued shards are dropped, running
        # ones finish alone
        executor.shutdown(wait=not pending, cancel_futures=True)


def series_to_wire(series: Series) -> dict[str, Any]:
    """A ``Series`` as JSON (dates as epoch seconds; floats round-trip exactly)."""
    return {"uid": series.uid, "ds": (series.ds.asi8 // 10**9).tolist(), "y": series.y.tolist()}


def series_from_wire(data: dict[str, Any]) -> Series:
    return Series(uid=data["uid"], ds=pd.DatetimeIndex(pd.to_datetime(data["ds"], unit="s")),
                  y=np.asarray(data["y"], dtype=float))


def frame_to_wire(frame: pd.DataFrame) -> str:
    """A frame as a zstd-compressed Arrow IPC stream in base64: exact values and dtypes in
    a JSON string (a chunk of daily history is a few hundred kilobytes, not megabytes)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def frame_from_wire(data: str) -> pd.DataFrame:
    with pa.ipc.open_stream(base64.b64decode(data)) as reader:
        return reader.read_all().to_pandas()
