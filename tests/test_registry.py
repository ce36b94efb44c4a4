"""Model registry: sealed versions, atomic activation, damage detection, pruning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from restock.errors import ModelNotFoundError
from restock.registry import ModelRegistry


def make_version(registry: ModelRegistry, payload: str = "x") -> str:
    version, staging = registry.staging_dir()
    (staging / "prophet").mkdir()
    (staging / "prophet" / "s1.json").write_text(payload)
    (staging / "forecasts.parquet").write_bytes(b"PAR1" + payload.encode())
    registry.seal(version, staging, {"rows": 10, "series": 1,
                                     "metrics_summary": {"ensemble": {"mase": 0.8}}})
    time.sleep(0.002)
    return version


def test_seal_then_activate(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.current() is None and registry.pointer_stamp() is None
    version = make_version(registry)
    assert registry.current() is None  # sealing alone never activates
    registry.activate(version)
    assert registry.current() == version
    listed = registry.versions()
    assert listed == [{"version": version, "trained_at": None, "rows": 10, "series": 1,
                       "frequency": None, "weights": None, "mase": 0.8, "active": True}]
    assert not list(tmp_path.glob(".*tmp"))


def test_rollback_changes_the_pointer_stamp(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first, second = make_version(registry, "a"), make_version(registry, "b")
    registry.activate(second)
    stamp = registry.pointer_stamp()
    registry.activate(first)
    assert registry.current() == first and registry.pointer_stamp() != stamp


@pytest.mark.parametrize("damage", ["truncate", "delete", "meta"])
def test_damaged_version_is_never_activated(tmp_path: Path, damage: str) -> None:
    registry = ModelRegistry(tmp_path)
    good, bad = make_version(registry, "good"), make_version(registry, "bad")
    registry.activate(good)
    target = tmp_path / bad
    if damage == "truncate":
        (target / "forecasts.parquet").write_bytes(b"PAR")
    elif damage == "delete":
        (target / "prophet" / "s1.json").unlink()
    else:
        (target / "meta.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError) as info:
        registry.activate(bad)
    assert bad in info.value.message
    assert registry.current() == good


def test_staging_and_unknown_versions_are_not_versions(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    version, staging = registry.staging_dir()
    (staging / "half.json").write_text("{}")
    assert registry.versions() == []
    for name in (version, "../etc", ".staging-" + version, "", "nope"):
        with pytest.raises(ModelNotFoundError):
            registry.activate(name)


def test_prune_keeps_the_newest_and_the_active(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, keep=2)
    versions = [make_version(registry, str(i)) for i in range(4)]
    registry.activate(versions[0])
    registry.activate(versions[3])
    kept = {v["version"] for v in registry.versions()}
    assert kept == {versions[2], versions[3]}
    registry.activate(versions[2])
    assert registry.current() == versions[2]


def test_activation_keeps_a_retrain_in_progress(tmp_path: Path) -> None:
    """A rollback during another retrain's save must not delete its staging folder."""
    import os

    registry = ModelRegistry(tmp_path)
    first = make_version(registry)
    version, staging = registry.staging_dir()
    (staging / "forecasts.parquet").write_bytes(b"PAR1")
    old_version, old_staging = registry.staging_dir()
    os.utime(old_staging, (0, 0))  # a crashed retrain's leftovers, long ago
    registry.activate(first)
    assert staging.is_dir() and not old_staging.exists()
    registry.seal(version, staging, {"rows": 1, "series": 1})
    registry.activate(version)
    assert registry.current() == version


def test_check_trusts_only_the_very_files_a_full_verify_hashed(tmp_path: Path,
                                                               monkeypatch) -> None:
    import restock.registry as module

    registry = ModelRegistry(tmp_path)
    version = make_version(registry, "payload")
    hashed: list[str] = []
    real = module._sha256
    monkeypatch.setattr(module, "_sha256", lambda path: hashed.append(path.name) or real(path))
    registry.check(version)  # never verified here yet: hashes
    assert "forecasts.parquet" in hashed
    hashed.clear()
    registry.check(version)  # the same files: only their identity is compared
    assert hashed == []
    file = tmp_path / version / "forecasts.parquet"
    file.write_bytes(file.read_bytes()[::-1])  # same size, rewritten: a new mtime
    with pytest.raises(ModelNotFoundError, match="damaged"):
        registry.check(version)
    assert "forecasts.parquet" in hashed
