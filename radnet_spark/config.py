"""One typed configuration for every stage.

Defaults are the RadiologyNET paper's values (see DESIGN). A YAML file overrides them, and CLI
flags of the form ``--set section.field=value`` override the YAML. The effective configuration is
written next to every job's output so a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value a user gave is unusable; the message says which and why."""


@dataclass
class SparkConfig:
    master: str | None = None  # None: spark-submit / SPARK_MASTER / local[*], in that order
    app_name: str = "radnet-spark"
    defaults_file: str | None = None  # None: the repository's spark-defaults.conf when present
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class PrivacyConfig:
    salt_env: str = "RADNET_SALT"  # the salt itself is never stored in config or output
    hash_sop_instance_uid: bool = False
    keep_dates: bool = False  # PS3.15 "retain longitudinal temporal information" option


@dataclass
class IngestConfig:
    file_batch_size: int = 64  # files per Arrow batch in the read task; bounds task memory
    # Each read task costs a Python worker round trip (~0.1 s here), so tasks are large; memory stays
    # bounded by file_batch_size, not by this. At least tasks_per_slot tasks per slot balance the tail.
    files_per_partition: int = 512
    tasks_per_slot: int = 4
    max_file_bytes: int = 512 * 1024 * 1024  # larger files are rejected before reading pixels
    max_pixel_bytes: int = 256 * 1024 * 1024  # decoded pixel array cap (huge multi-frame)
    max_files_per_exam: int | None = None  # paper dropped exams with too many files
    image_size: int = 128
    min_max_value: int = 64  # value policy: drop images whose maximum is below
    min_distinct_ratio: float = 0.1
    min_distinct_ratio_xa_multiframe: float = 0.2
    min_aspect_ratio: float = 0.1  # shape policy: min(h,w)/max(h,w)
    estimate_missing_window: bool = True  # False: reject like the paper did
    diagnoses_key_column: str = "AccessionNumber"
    diagnoses_text_column: str = "diagnosis"
    min_diagnosis_chars: int = 10
    stem_language: str = "croatian"
    dicom_extensions: list[str] = field(default_factory=list)  # empty: every file is a candidate


@dataclass
class SplitConfig:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 42


@dataclass
class TagsConfig:
    min_fill_rate: float = 0.2
    min_distinct: int = 2
    max_categories: int = 50
    categorical_overflow: str = "drop"  # drop | bucket
    imputer: str = "missforest"  # missforest | simple
    missforest_trees: int = 256
    missforest_max_iter: int = 10
    missforest_max_depth: int | None = None  # bound it (e.g. 12) on big samples: unbounded forests get huge
    missforest_max_samples: float | None = None  # share of sample rows per tree; None: bootstrap of all
    # BodyPartExamined is the evaluation target (after imputation), so it is not a feature by default.
    exclude_columns: list[str] = field(default_factory=lambda: ["BodyPartExamined"])
    fit_sample_rows: int = 20_000
    embedder: str = "autoencoder"  # autoencoder | pca
    ae_bottleneck: int = 32
    ae_hidden: list[int] = field(default_factory=lambda: [256, 128])
    ae_batch_size: int = 32
    ae_learning_rate: float = 1e-3
    ae_max_epochs: int = 100
    ae_patience: int = 5
    pca_components: int = 50
    bpe_rules_path: str | None = None  # None: the rules shipped in radnet_spark/tags/bpe_rules.yaml


@dataclass
class ImageConfig:
    cae_filters: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    cae_bottleneck_channels: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    max_epochs: int = 40
    patience: int = 5
    train_sample_rows: int = 50_000
    validation_sample_rows: int = 5_000  # validation images scored per epoch
    pca_sample_rows: int = 20_000  # images whose codes the PCA is fitted on
    pca_components: int | None = 500  # None: use the flattened code as is
    inference_batch_rows: int = 256


@dataclass
class TextConfig:
    min_word_frequency: int = 5
    embedder: str = "pv_dbow"  # bow | tfidf | pv_dm | pv_dbow
    vector_size: int = 100
    window: int = 5
    epochs: int = 50
    lda_topics: int = 20
    seed: int = 42
    max_train_docs: int = 200_000  # distinct training diagnoses doc2vec trains on, on the driver


@dataclass
class ClusterConfig:
    views: list[str] = field(default_factory=lambda: ["tags", "image", "diagnosis"])
    fusion: str = "embeddings"  # embeddings | clusterdists | clusterprobs
    missing_view: str = "zero_fill"  # zero_fill (plus indicator) | available_views
    algorithm: str = "kmeans"  # kmeans | kmedoids
    distance: str = "euclidean"  # euclidean | cosine
    engine: str = "sample"  # sample | mllib
    k: int | None = None  # None: choose by the elbow
    k_min: int = 2
    k_max: int = 60
    k_step: int = 2
    view_k: dict[str, int] = field(
        default_factory=lambda: {"tags": 25, "image": 40, "diagnosis": 20}
    )
    fit_sample_rows: int = 200_000
    elbow_sample_rows: int = 50_000
    kmedoids_sample_rows: int = 20_000
    max_iter: int = 20
    seed: int = 42
    images_per_cluster: int = 16  # report mosaics


@dataclass
class RadnetConfig:
    spark: SparkConfig = field(default_factory=SparkConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the field's declared type, or raise ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        is_null = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_null and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], where)
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}.")
        return [_coerce(v, args[0], where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}.")
        return {str(k): _coerce(v, args[1], where) for k, v in value.items()}
    try:
        if annotation is bool:
            if isinstance(value, str):
                lowered = value.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if annotation in (int, float, str):
            return annotation(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {annotation.__name__}, got {value!r}.") from None
    return value


def _apply(section: Any, updates: dict[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(section))
    names = {f.name for f in dataclasses.fields(section)}
    for key, value in updates.items():
        if key not in names:
            raise ConfigError(f"Unknown setting {where}.{key}; known: {', '.join(sorted(names))}.")
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key} must be a mapping.")
            _apply(current, value, f"{where}.{key}")
        else:
            setattr(section, key, _coerce(value, hints[key], f"{where}.{key}"))


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> RadnetConfig:
    """Build the effective config: defaults, then the YAML file, then ``section.field=value`` overrides."""
    config = RadnetConfig()
    if path is not None:
        config_path = Path(path)
        if not config_path.is_file():
            raise ConfigError(f"Config file {config_path} does not exist.")
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"Config file {config_path} is not valid YAML: {error}.") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"Config file {config_path} must hold a mapping of sections.")
        _apply(config, loaded, "config")
    for override in overrides or []:
        if "=" not in override:
            raise ConfigError(f"Override {override!r} must look like section.field=value.")
        dotted, raw = override.split("=", 1)
        nested: dict[str, Any] = {}
        cursor = nested
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        _apply(config, nested, "config")
    return config


def write_effective_config(config: RadnetConfig, out_dir: str | os.PathLike[str], name: str) -> Path:
    """Write the effective config as ``<out_dir>/_config/<name>.yaml`` and return its path."""
    target = Path(out_dir) / "_config" / f"{name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    return target
