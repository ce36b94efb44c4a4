"""``fanout.run_shards`` over a local process pool: every shard's result, a bounded number
in flight, and an early exit that drops the queued ones."""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

import pytest

from restock.models.fanout import ShardWork, run_shards


class _Doubling(ShardWork[int, int]):
    name: ClassVar[str] = "doubling"

    def run(self, shard: int, config: dict[str, Any]) -> int:
        return shard * config["factor"]

    def series(self, shard: int) -> int:
        return 1

    def encode(self, shard: int) -> Any:
        return shard

    def decode(self, data: Any) -> int:
        return int(data)


def _counted(n: int, drawn: list[int]) -> Iterator[int]:
    """Shards 0..n-1, built lazily, each noted in ``drawn`` as the pool takes it."""
    for k in range(n):
        drawn.append(k)
        yield k


def test_every_shard_runs_once_with_at_most_two_per_worker_in_flight() -> None:
    drawn: list[int] = []
    results = run_shards(_Doubling(), _counted(12, drawn), {"factor": 2}, processes=2)
    first = next(results)
    assert len(drawn) <= 5  # four in flight, one more after the first landed
    rest = dict(results)
    assert {first[0]: first[1], **rest} == {k: 2 * k for k in range(12)}


def test_leaving_early_drops_the_queued_shards() -> None:
    drawn: list[int] = []
    results = run_shards(_Doubling(), _counted(100, drawn), {"factor": 1}, processes=2)
    with pytest.raises(RuntimeError, match="stop"):
        for _ in results:
            raise RuntimeError("stop")
    results.close()
    assert len(drawn) <= 5
