"""A run directory whose stages are skipped when their inputs have not changed.

Each stage has a key: a hash of everything it depends on (content hashes of the data, its
configuration, the keys of the stages upstream, the textdistill version). The key and a few
facts about the result are written to ``stages/<name>.json`` *after* the stage's output is
complete, so a crash mid-stage never leaves a marker that a rerun would trust.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from textdistill.runtime.atomic import write_file_atomically


def stage_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts.

    >>> stage_key({"a": 1}, "x") == stage_key({"a": 1}, "x") != stage_key({"a": 2}, "x")
    True
    """
    from textdistill import __version__

    payload = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class RunDirectory:
    """The folder of one run: stage outputs, stage markers, metrics and report."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name

    def _marker(self, stage: str) -> Path:
        return self.root / "stages" / f"{stage}.json"

    def cached(self, stage: str, key: str) -> dict[str, Any] | None:
        """The recorded facts of ``stage`` if it completed with this ``key``, else None."""
        marker = self._marker(stage)
        if not marker.is_file():
            return None
        try:
            record = json.loads(marker.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if record.get("key") != key:
            return None
        info = record.get("info", {})
        return info if isinstance(info, dict) else None

    def complete(self, stage: str, key: str, info: dict[str, Any]) -> None:
        """Mark ``stage`` done with ``key``; call only once its output is fully written."""
        payload = json.dumps({"key": key, "info": info}, indent=2, default=str)
        write_file_atomically(self._marker(stage), payload.encode())

    def write_json(self, name: str, content: Any) -> Path:
        target = self.path(name)
        write_file_atomically(target, json.dumps(content, indent=2, default=str).encode())
        return target
