"""Versioned pipeline directories: ``models/<name>/<version>/`` with a manifest of every fitted step."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from radnet_spark import __version__
from radnet_spark.config import RadnetConfig
from radnet_spark.errors import PipelineError
from radnet_spark.storage import read_json_object, to_local_path, write_text_atomically

MANIFEST = "manifest.json"
LIBRARIES = ("pyspark", "pydicom", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "gensim", "kneed")

# Sub-folders of a pipeline version, one per fitted step.
BPE_RULES = "bpe_rules.yaml"
TAG_PREPROCESSING = "tags/preprocessing"
TAG_EMBEDDER = "tags/embedder"
IMAGE_EMBEDDER = "image/embedder"
DIAGNOSIS_EMBEDDER = "diagnosis/embedder"
FUSION = "fusion"
KMEANS = "kmeans"
ELBOW = "elbow.json"
METRICS = "metrics.json"


def read_manifest(path: Path) -> dict[str, Any]:
    """A version's manifest; {} when missing or unreadable (such a folder is not a usable version)."""
    return read_json_object(path) or {}


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of JSON-serialisable parts (inputs and settings of a stage)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of radnet-spark, Python and the libraries whose behaviour a fitted pipeline depends on."""
    versions = {"radnet-spark": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def new_version() -> str:
    """A new pipeline version name from the current UTC time (``vYYYYMMDD-HHMMSS``)."""
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")


@dataclass
class PipelineDir:
    """One trained pipeline version on disk."""

    root: Path

    @property
    def name(self) -> str:
        """The pipeline's name (its parent folder)."""
        return self.root.parent.name

    @property
    def version(self) -> str:
        """The version's name (its folder)."""
        return self.root.name

    def path(self, part: str) -> str:
        """Path of ``part`` (e.g. :data:`FUSION`) inside this version."""
        return str(self.root / part)

    def has(self, part: str) -> bool:
        """True when ``part`` exists in this version."""
        return (self.root / part).exists()

    def manifest(self) -> dict[str, Any]:
        """The version's manifest; {} when missing or torn."""
        return read_manifest(self.root / MANIFEST)

    def update_manifest(self, **entries: Any) -> None:
        """Rewrite the manifest atomically: a kill leaves the old manifest or the new, never a torn one."""
        manifest = self.manifest()
        manifest.update(entries)
        write_text_atomically(self.root / MANIFEST, json.dumps(manifest, indent=2, default=str))

    def record_artifact(self, part: str, **details: Any) -> None:
        """Note in the manifest that ``part`` was saved now, with ``details`` (size, kind, metrics…).

        Args:
            part: The fitted step's folder inside the version.
            **details: Facts about it worth reading in the manifest.
        """
        artifacts = self.manifest().get("artifacts", {})
        artifacts[part] = {"path": part, "saved_at": datetime.now(UTC).isoformat(), **details}
        self.update_manifest(artifacts=artifacts)

    def config(self) -> RadnetConfig:
        """The settings the version was trained with (its ``config.yaml``)."""
        from radnet_spark.config import load_config

        return load_config(self.root / "config.yaml")


def create_pipeline_dir(models_root: str | Path, name: str, version: str, config: RadnetConfig) -> PipelineDir:
    """Create (or reopen, to resume) ``models_root/name/version`` with its settings and a first manifest.

    Args:
        models_root: Folder of all pipelines.
        name: Pipeline name.
        version: Version name (see :func:`new_version`).
        config: The settings, written as ``config.yaml``.

    Returns:
        The version's folder; its manifest says ``complete: false`` until ``run`` finishes.
    """
    pipeline = PipelineDir(Path(to_local_path(str(models_root))).resolve() / name / version)
    pipeline.root.mkdir(parents=True, exist_ok=True)
    (pipeline.root / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    if not (pipeline.root / MANIFEST).exists():
        pipeline.update_manifest(
            name=name,
            version=version,
            created_at=datetime.now(UTC).isoformat(),
            libraries=library_versions(),
            artifacts={},
            complete=False,
        )
    return pipeline


def open_pipeline_dir(path: str | Path) -> PipelineDir:
    """Open a finished pipeline version, or raise a one-sentence PipelineError."""
    pipeline = PipelineDir(Path(to_local_path(str(path))).resolve())
    manifest = pipeline.manifest()
    if not manifest:
        raise PipelineError(f"{path} is not a pipeline version (no {MANIFEST}); see `radnet models list`.")
    if not manifest.get("complete"):
        raise PipelineError(f"Pipeline {path} did not finish training; re-run `radnet run` to complete it.")
    return pipeline


def list_pipelines(models_root: str | Path, include_incomplete: bool = False) -> list[dict[str, Any]]:
    """Every finished pipeline version under ``models_root`` with its headline facts, newest first.

    A version becomes finished when `run` sets ``complete`` in its manifest, its last write; a
    version still training or killed half-way (or with a manifest that does not parse) is left out
    unless ``include_incomplete``.
    """
    rows = []
    for manifest_path in sorted(Path(to_local_path(str(models_root))).glob(f"*/*/{MANIFEST}")):
        manifest = read_manifest(manifest_path)
        if not manifest.get("complete") and not include_incomplete:
            continue
        metrics = manifest.get("metrics", {})
        rows.append({
            "pipeline": str(manifest_path.parent),
            "name": manifest.get("name"),
            "version": manifest.get("version"),
            "created_at": manifest.get("created_at"),
            "complete": manifest.get("complete", False),
            "k": manifest.get("k"),
            "score": metrics.get("validation", {}).get("score"),
        })
    return sorted(rows, key=lambda r: r["created_at"] or "", reverse=True)


def latest_pipeline(models_root: str | Path, name: str) -> str:
    """The newest finished version of pipeline ``name`` (what the nightly job labels with by default)."""
    finished = [row for row in list_pipelines(models_root) if row["name"] == name]
    if not finished:
        raise PipelineError(f"No complete pipeline named {name!r} under {models_root}; train one with `radnet run`.")
    return finished[0]["pipeline"]


def write_step_manifest(folder: str | Path, file_name: str, step: str, format_version: int, **fields: Any) -> None:
    """Write a fitted step's small manifest: which step wrote ``folder``, in which format, and ``fields``.

    Args:
        folder: The step's folder (created).
        file_name: The manifest's name inside it (``fusion.json``, ``embedder.json``, …).
        step: What wrote it; the reader asks for the same name.
        format_version: The layout of the step's files; bump it when they change.
        **fields: The step's own settings and state (JSON-serialisable; others become strings).
    """
    target = Path(to_local_path(str(folder)))
    target.mkdir(parents=True, exist_ok=True)
    manifest = {"step": step, "format_version": format_version, **fields}
    (target / file_name).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8")


def read_step_manifest(folder: str | Path, file_name: str, step: str, format_version: int) -> dict[str, Any]:
    """A fitted step's manifest, or one sentence saying why ``folder`` does not hold that step in that format.

    Args:
        folder: The step's folder.
        file_name: The manifest's name inside it.
        step: The step expected there.
        format_version: The only format this code reads.

    Returns:
        The manifest's fields (with ``step`` and ``format_version``).

    Raises:
        PipelineError: The manifest is missing or torn, names no step or another one, or has another format.
    """
    path = Path(to_local_path(str(folder))) / file_name
    manifest = read_json_object(path)
    if manifest is None:
        raise PipelineError(f"{folder} holds no fitted {step} ({file_name} is missing or unreadable).")
    if "step" not in manifest:
        raise PipelineError(
            f"{path} is not a radnet {step} in a format this radnet-spark reads (it names no fitted step); "
            "re-train with `radnet run`."
        )
    if manifest.get("step") != step:
        raise PipelineError(f"{folder} holds the {manifest.get('step')!r} step, not {step!r}.")
    if manifest.get("format_version") != format_version:
        raise PipelineError(
            f"{folder} holds {step} format {manifest.get('format_version')}; this radnet-spark reads format "
            f"{format_version}. Re-train with `radnet run`."
        )
    return manifest
