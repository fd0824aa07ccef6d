"""Which stage of ``run`` finished for which inputs and settings (a ledger under ``WAREHOUSE/_stages``).

A stage's fingerprint hashes what the stage reads and nothing else: the ingested data (the
committed ingest runs), the config sections its step reads, the *content* of every file it reads
(the BPE rules), and the fingerprints of the stages it builds on. A stage whose entry holds the same
fingerprint is complete and is skipped, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from radnet_spark.artifacts import PipelineDir, fingerprint
from radnet_spark.config import RadnetConfig
from radnet_spark.storage import read_json_object, to_local_path, write_text_atomically
from radnet_spark.tables import committed_runs

log = logging.getLogger(__name__)


class StageLedger:
    """One small JSON record per stage: its fingerprint, when it finished and what it reported."""

    def __init__(self, warehouse: str) -> None:
        self.root = Path(to_local_path(warehouse)) / "_stages"

    def _path(self, stage: str) -> Path:
        return self.root / f"{stage}.json"

    def done(self, stage: str, stamp: str) -> bool:
        """Whether ``stage`` finished for exactly this fingerprint."""
        return self.info(stage).get("fingerprint") == stamp

    def info(self, stage: str) -> dict[str, Any]:
        """The stage's entry; {} when missing or torn (a kill while it was written: the stage runs again)."""
        return read_json_object(self._path(stage)) or {}

    def mark(self, stage: str, stamp: str, **info: Any) -> None:
        """Record ``stage`` as finished for ``stamp`` (atomically: old entry or new, never torn)."""
        record = {"fingerprint": stamp, "finished_at": datetime.now(UTC).isoformat(), **info}
        write_text_atomically(self._path(stage), json.dumps(record, indent=2, default=str))


class StageRunner:
    """Runs each stage once per fingerprint and keeps what ran and what was skipped.

    A stage finished for the same fingerprint while training another pipeline version (only a
    setting of a later stage changed) is not run again: the files it saved in that version
    (``artifacts``) are copied into this one, with their manifest entries and ``manifest_keys``.
    """

    def __init__(self, ledger: StageLedger, pipeline: PipelineDir) -> None:
        self.ledger, self.pipeline = ledger, pipeline
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def __call__(self, name: str, stamp: str, work: Callable[[], dict[str, Any] | None],
                 artifacts: tuple[str, ...] = (), manifest_keys: tuple[str, ...] = ()) -> str:
        """Run ``work`` unless ``name`` finished for ``stamp``; returns ``stamp`` for later stages' stamps."""
        if self.ledger.done(name, stamp) and self._adopt(name, artifacts, manifest_keys):
            log.info("stage %s: complete for these inputs and settings, skipped", name)
            self.skipped.append(name)
            return stamp
        log.info("stage %s: running", name)
        started = datetime.now(UTC)
        info = work() or {}
        seconds = (datetime.now(UTC) - started).total_seconds()
        self.ledger.mark(name, stamp, seconds=seconds, pipeline=str(self.pipeline.root), **info)
        self.ran.append(name)
        log.info("stage %s: done in %.1f s", name, seconds)
        return stamp

    def _adopt(self, name: str, artifacts: tuple[str, ...], manifest_keys: tuple[str, ...]) -> bool:
        """Whether this version has the stage's artifacts, copying them from the version that made them."""
        source = PipelineDir(Path(self.ledger.info(name).get("pipeline", "")))
        if source.root == self.pipeline.root or not artifacts:
            return True
        if not all(source.has(part) for part in artifacts):
            return False  # that version is gone: run the stage again
        manifest = source.manifest()
        entries = self.pipeline.manifest().get("artifacts", {})
        for part in artifacts:
            origin, target = source.root / part, self.pipeline.root / part
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(origin, target)
            if part in manifest.get("artifacts", {}):
                entries[part] = manifest["artifacts"][part]
        self.pipeline.update_manifest(artifacts=entries, **{key: manifest[key] for key in manifest_keys if key in manifest})
        log.info("stage %s: complete in %s for the same inputs and settings, its artifacts copied", name,
                 source.version)
        return True


def data_fingerprint(warehouse: str) -> str:
    """Identifies the ingested data: the committed ingest runs that wrote files or rejects rows."""
    runs = {
        record.get("run_id") for record in committed_runs(warehouse, "ingest")
        if {"files", "rejects"} & set(record["partitions"])
    }
    return fingerprint(sorted(r for r in runs if r))


def file_fingerprint(path: str | Path | Traversable) -> str:
    """SHA-256 of a file's bytes: a stage that reads a file re-runs when its content changes.

    Args:
        path: A path, or a package resource (a ``zipfile.Path`` when the package is shipped as a zip
            with ``--py-files``, which ``Path()`` does not accept).
    """
    source = Path(path) if isinstance(path, str) else path
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def section_fingerprint(config: RadnetConfig, *sections: str) -> str:
    """Fingerprint of the named config sections only."""
    full = config.to_dict()
    return fingerprint({name: full[name] for name in sections})
