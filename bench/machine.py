"""What every benchmark records about the machine it ran on (read from /proc on Linux)."""

from __future__ import annotations

from pathlib import Path


def _proc_field(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def cpu_model() -> str:
    return _proc_field("/proc/cpuinfo", "model name") or "unknown"


def total_ram() -> str:
    kib = _proc_field("/proc/meminfo", "MemTotal")
    return f"{int(kib.split()[0]) / 1024 ** 2:.1f} GiB" if kib else "unknown"
