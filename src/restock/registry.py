"""Versioned model directories with an atomic ``current`` pointer.

The seed swapped a global variable in place, which a second web worker never sees and a
crash mid-save corrupts. Here a version is written into a hidden temporary folder, sealed
with a manifest (file sizes and SHA-256) in ``meta.json``, renamed into place, and only
then named by ``current`` through an atomic file replace. A version whose files do not
match its manifest is never activated or loaded, and every process notices a new
``current`` by reading one small file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from restock.errors import ModelNotFoundError

META = "meta.json"
CURRENT = "current"
#: one JSON line per activation ``{"version", "activated_at"}``, oldest first: which versions
#: served forecasts (``current`` only knows the latest), for live accuracy tracking
ACTIVATIONS = "activations.jsonl"
#: a staging folder untouched for this long belongs to a retrain that died
STALE_STAGING_SECONDS = 24 * 3600


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


class ModelRegistry:
    """The model versions under ``root`` and which one is active."""

    def __init__(self, root: Path, keep: int = 5) -> None:
        self.root = Path(root)
        self.keep = keep
        self.root.mkdir(parents=True, exist_ok=True)

    # -- writing -------------------------------------------------------------------------

    def staging_dir(self) -> tuple[str, Path]:
        """A new version id and the hidden folder to write its artifacts into."""
        # sortable by creation time down to the microsecond; the suffix avoids collisions
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        version = f"{stamp}-{uuid.uuid4().hex[:4]}"
        path = self.root / f".staging-{version}"
        path.mkdir(parents=True)
        return version, path

    def seal(self, version: str, staging: Path, meta: dict[str, Any]) -> Path:
        """Write the manifest into ``meta.json`` and move the folder into place."""
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        meta = {**meta, "version": version, "manifest": {
            str(p.relative_to(staging)): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in files
        }}
        write_json(staging / META, meta)
        final = self.root / version
        os.replace(staging, final)
        _fsync_dir(self.root)
        return final

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def activate(self, version: str) -> None:
        """Point ``current`` at ``version`` atomically, after checking it is complete."""
        self.verify(version)
        tmp = self.root / f".{CURRENT}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(version + "\n")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / CURRENT)
        _fsync_dir(self.root)
        self._log_activation(version)
        self.prune()

    def _log_activation(self, version: str) -> None:
        """Append to the activation log with one ``O_APPEND`` write (lines from processes
        activating at once never interleave). After the pointer moved: a crash in between
        loses a log line, never an activation."""
        line = json.dumps({"version": version, "activated_at": datetime.now(
            timezone.utc).isoformat(timespec="seconds")}) + "\n"
        fd = os.open(self.root / ACTIVATIONS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def prune(self) -> list[str]:
        """Delete old versions beyond ``keep`` (never the active one) and stale staging.

        A staging folder is another retrain's work in progress until it is a day old (a
        crashed retrain's leftovers); the pointer is re-read before each deletion so a
        rollback racing this prune never loses the version it just activated.
        """
        removed = []
        cutoff = time.time() - STALE_STAGING_SECONDS
        for path in self.root.glob(".staging-*"):
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        complete = sorted(v for v in self._version_names())
        for version in complete[: max(0, len(complete) - self.keep)]:
            if version != self.current():
                shutil.rmtree(self.root / version, ignore_errors=True)
                removed.append(version)
        return removed

    # -- reading -------------------------------------------------------------------------

    def _version_names(self) -> list[str]:
        return [p.name for p in self.root.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / META).exists()]

    def current(self) -> str | None:
        """The active version id, or None before the first successful retrain."""
        try:
            return (self.root / CURRENT).read_text().strip() or None
        except FileNotFoundError:
            return None

    def activations(self) -> list[dict[str, str]]:
        """Every logged activation, oldest first (a torn or foreign line is skipped)."""
        try:
            lines = (self.root / ACTIVATIONS).read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                out.append(entry)
        return out

    def ever_active(self) -> list[str]:
        """Versions that have served forecasts: those logged as activated and ``current``
        (a version activated before the log existed), in activation order."""
        seen = dict.fromkeys(entry["version"] for entry in self.activations())
        current = self.current()
        if current is not None:
            seen.setdefault(current)
        return list(seen)

    def pointer_stamp(self) -> int | None:
        """A cheap token that changes whenever ``current`` is replaced (its inode+mtime)."""
        try:
            stat = (self.root / CURRENT).stat()
        except FileNotFoundError:
            return None
        return hash((stat.st_ino, stat.st_mtime_ns))

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith(".") or version != version.strip():
            raise ModelNotFoundError(f"model version {version!r} does not exist")
        path = self.root / version
        if not (path / META).exists():
            raise ModelNotFoundError(f"model version {version!r} does not exist")
        return path

    def meta(self, version: str) -> dict[str, Any]:
        try:
            meta = json.loads((self.path(version) / META).read_text())
        except (ValueError, OSError):  # bad JSON, bytes that are not UTF-8, unreadable
            meta = None
        if not isinstance(meta, dict):
            raise ModelNotFoundError(f"model version {version!r} has an unreadable meta.json",
                                     {"version": version})
        return meta

    def verify(self, version: str) -> dict[str, Any]:
        """Check every file against the manifest; a damaged version raises ModelNotFoundError."""
        meta = self.meta(version)
        root = self.path(version)
        problems = []
        manifest = meta.get("manifest")
        if not isinstance(manifest, dict):
            manifest = {}
        for name, expected in manifest.items():
            file = root / name
            if not isinstance(expected, dict) or not file.resolve().is_relative_to(
                    root.resolve()):
                problems.append(f"{name}: malformed manifest entry")
            elif not file.is_file():
                problems.append(f"{name}: missing")
            elif (file.stat().st_size != expected.get("size")
                  or _sha256(file) != expected.get("sha256")):
                problems.append(f"{name}: damaged")
        if not manifest or problems:
            raise ModelNotFoundError(
                f"model version {version!r} is incomplete or damaged and cannot be used",
                {"version": version, "problems": problems or ["no manifest"]})
        return meta

    def versions(self) -> list[dict[str, Any]]:
        """Every complete version, newest first, with the figures a person compares."""
        active = self.current()
        out = []
        for version in sorted(self._version_names(), reverse=True):
            try:
                meta = self.meta(version)
            except ModelNotFoundError:
                continue
            summary = meta.get("metrics_summary")
            summary = summary.get("ensemble") if isinstance(summary, dict) else None
            summary = summary if isinstance(summary, dict) else {}
            out.append({
                "version": version, "trained_at": meta.get("trained_at"),
                "rows": meta.get("rows"), "series": meta.get("series"),
                "frequency": meta.get("frequency"), "weights": meta.get("weights"),
                "mase": summary.get("mase"), "active": version == active,
            })
        return out
