"""One typed configuration for every stage.

Defaults are the RadiologyNET paper's values (see DESIGN). A YAML file overrides them, and CLI
flags of the form ``--set section.field=value`` override the YAML. The effective configuration is
written next to every job's output so a run can be reproduced.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

log = logging.getLogger(__name__)

# The allowed values of every enumerated setting live in its type: `_coerce` checks them while the
# config is loaded, so a typo fails in one sentence before Spark starts.
# The built-in views; a view registered with `radnet_spark.views.register_view` is accepted as well.
ViewName = Literal["tags", "image", "diagnosis", "pretrained_image", "pretrained_text"]


class ConfigError(ValueError):
    """A configuration value a user gave is unusable; the message says which and why."""


@dataclass
class SparkConfig:
    """The Spark session: master, app name, defaults file and extra settings."""

    master: str | None = None  # None: spark-submit / SPARK_MASTER / local[*], in that order
    app_name: str = "radnet-spark"
    defaults_file: str | None = None  # None: the repository's spark-defaults.conf when present
    conf: dict[str, str] = field(default_factory=dict)
    quiet_logs: bool = True  # keep Spark's own INFO/WARN lines off the terminal (`--verbose` sets False)


@dataclass
class PrivacyConfig:
    """De-identification: the salt's environment variable, UID hashing, dates and the names lexicon."""

    salt_env: str = "RADNET_SALT"  # the salt itself is never stored in config or output
    hash_sop_instance_uid: bool = False
    keep_dates: bool = False  # PS3.15 "retain longitudinal temporal information" option
    names_lexicon: str = "hr_HR,sl_SI,hu_HU,it_IT,de_DE,de_AT,cs_CZ,sk_SK,pl_PL,en_US,en_GB"  # comma-separated Faker locales of the names lexicon; "" turns it off
    names_lexicon_file: str | None = None  # None, or a UTF-8 text file of extra names, one per line


@dataclass
class IngestConfig:
    """Reading the dump: task sizes, scope, file and pixel limits, image policies and the diagnoses export."""

    file_batch_size: int = 64  # files per Arrow batch in the read task; bounds task memory
    # Each read task costs a Python worker round trip (~0.1 s here), so tasks are large; memory stays
    # bounded by file_batch_size, not by this. At least tasks_per_slot tasks per slot balance the tail.
    files_per_partition: int = 512
    tasks_per_slot: int = 4
    max_file_bytes: int = 512 * 1024 * 1024  # larger files are rejected before reading pixels
    # Scope: the modalities clustered (None: every one; the paper's five: [CT, MR, CR, XA, RF]) and
    # the most image files an exam may have (None: no bound). Files outside go to rejects (stage scope).
    modalities: list[str] | None = None
    max_files_per_exam: int | None = None
    max_pixel_bytes: int = 256 * 1024 * 1024  # decoded pixel array cap (huge multi-frame)
    max_inflated_bytes: int = 512 * 1024 * 1024  # deflated datasets inflating past this are rejected (inflated_too_large)
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


@dataclass
class SplitConfig:
    """The exam-level train/validation/test split: shares and seed."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 42


@dataclass
class TagsConfig:
    """The tags view: tag selection, imputation, BodyPartExamined rules and the tag embedder."""

    min_fill_rate: float = 0.2
    min_distinct: int = 2
    max_categories: int = 50
    categorical_overflow: Literal["drop", "bucket"] = "drop"
    imputer: Literal["missforest", "simple"] = "missforest"
    missforest_trees: int = 256
    missforest_max_iter: int = 10
    missforest_max_depth: int | None = None  # bound it (e.g. 12) on big samples: unbounded forests get huge
    missforest_max_samples: float | None = None  # share of sample rows per tree; None: bootstrap of all
    # BodyPartExamined is the evaluation target (after imputation), so it is not a feature by default.
    exclude_columns: list[str] = field(default_factory=lambda: ["BodyPartExamined"])
    fit_sample_rows: int = 20_000
    embedder: Literal["autoencoder", "pca"] = "autoencoder"
    ae_bottleneck: int = 32
    ae_hidden: list[int] = field(default_factory=lambda: [256, 128])
    ae_batch_size: int = 32
    ae_learning_rate: float = 1e-3
    ae_max_epochs: int = 100
    ae_patience: int = 5
    # torch threads while training: the weights depend on it (float sums are split across threads),
    # so it is fixed, not the machine's core count; 0 uses every core and gives up that guarantee.
    ae_train_threads: int = 2
    pca_components: int = 50
    bpe_rules_path: str | None = None  # None: the rules shipped in radnet_spark/tags/bpe_rules.yaml


@dataclass
class ImageConfig:
    """The image view: the convolutional autoencoder, its training samples, PCA and inference batches."""

    cae_filters: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    cae_bottleneck_channels: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    max_epochs: int = 40
    patience: int = 5
    train_threads: int = 2  # like tags.ae_train_threads: fixed so training gives the same weights anywhere
    train_sample_rows: int = 50_000
    validation_sample_rows: int = 5_000  # validation images scored per epoch
    pca_sample_rows: int = 20_000  # images whose codes the PCA is fitted on
    pca_components: int | None = 500  # None: use the flattened code as is
    inference_batch_rows: int = 256


@dataclass
class TextConfig:
    """The diagnosis view: vocabulary threshold and the text embedder (BOW, TF-IDF, LSA, doc2vec)."""

    min_word_frequency: int = 5
    embedder: Literal["bow", "tfidf", "lsa", "pv_dm", "pv_dbow"] = "pv_dbow"
    vector_size: int = 100
    window: int = 5
    epochs: int = 50
    seed: int = 42
    max_train_docs: int = 200_000  # distinct training diagnoses doc2vec and LSA fit on, on the driver
    # doc2vec: sampled training documents are inferred like new ones, or keep their trained vectors
    # (model.dv). Inferred is the default: trained vectors have other norms than inferred ones, so
    # centres fitted on them misplace every new report on small corpora (docs/benchmarks.md).
    training_vectors: Literal["trained", "inferred"] = "inferred"
    inference_epochs: int | None = None  # doc2vec inference; None: epochs
    inference_alpha: float | None = None  # doc2vec inference's starting learning rate; None: training's (0.025)
    lsa_components: int = 100  # embedder lsa: TF-IDF reduced by a truncated SVD to this many components
    # lsa and doc2vec vectors: subtract the training mean (else nearly parallel); optionally scale to unit
    # length, which amplifies the noise of short reports near the mean on small corpora (docs/benchmarks.md).
    centre: bool = True
    unit_length: bool = False


@dataclass
class ClusterConfig:
    """Fusion and clustering: views, fusion method, scaling, algorithm, k (by elbow or given) and samples."""

    views: list[ViewName] = field(default_factory=lambda: ["tags", "image", "diagnosis"])
    fusion: Literal["embeddings", "clusterdists", "clusterprobs"] = "embeddings"
    missing_view: Literal["zero_fill", "available_views"] = "zero_fill"  # zero_fill adds an indicator
    # Each view's block centred and scaled to total variance 1 on the training split before fusing
    # (none: the paper's plain concatenation, where the block with the largest spread decides; the
    # scaling is the default by measurement, docs/benchmarks.md); view_weights multiply the scaled blocks.
    block_scaling: Literal["none", "unit_variance"] = "unit_variance"
    view_weights: dict[ViewName, float] = field(default_factory=dict)
    algorithm: Literal["kmeans", "kmedoids"] = "kmeans"
    distance: Literal["euclidean", "cosine"] = "euclidean"
    engine: Literal["sample", "mllib"] = "sample"
    k: int | None = None  # None: choose by the elbow
    k_min: int = 2
    k_max: int = 60
    k_step: int = 2
    # k of each view on its own (clusterdists/clusterprobs, --compare): the paper's, and the only place
    # the tags, image and diagnosis k are written; a view it does not name uses its View.default_k.
    view_k: dict[ViewName, int] = field(
        default_factory=lambda: {"tags": 25, "image": 40, "diagnosis": 20}
    )
    fit_sample_rows: int = 200_000
    elbow_sample_rows: int = 50_000
    kmedoids_sample_rows: int = 20_000
    max_iter: int = 20
    seed: int = 42
    images_per_cluster: int = 16  # report mosaics
    # A view with fewer usable training rows is left out with a warning (false: stop with an error).
    min_view_rows: int = 10
    drop_empty_views: bool = True


@dataclass
class TrackingConfig:
    """MLflow tracking of finished pipeline versions."""

    # Log every finished pipeline version of `radnet run` as an MLflow run (params, metrics, artifacts)
    # and register it as a model version; the tracking server is MLflow's own MLFLOW_TRACKING_URI.
    mlflow: bool = False
    experiment: str = "radnet-spark"  # on Databricks a workspace path, e.g. /Users/<you>/radnet
    model_name: str | None = None  # None: the pipeline's --name; Unity Catalog: <catalog>.<schema>.<model>
    alias: str | None = None  # set on each new model version (e.g. champion), for `--pipeline models:/<name>@<alias>`


@dataclass
class PretrainedConfig:
    """Frozen pretrained encoders from local disk, for the pretrained views."""

    # Frozen encoders from local disk (never downloaded), see docs/pretrained.md.
    # The pretrained_image view: a TorchScript or torch.export image encoder, frozen.
    image_model: str | None = None  # a torch.jit.save'd or torch.export.save'd module: (N, C, S, S) -> (N, D)
    # "exported" (TorchScript or torch.export) is the one kind that loads. A str, not a Literal: "timm"
    # and "open_clip" are recognised only to be refused with the export route (both need torchvision,
    # which this stack leaves out), see _check_pretrained.
    image_kind: str = "exported"
    image_input_size: int = 224
    image_channels: int = 3  # grey images are replicated to this many channels
    image_mean: list[float] = field(default_factory=lambda: [0.5])  # per channel, or one for all
    image_std: list[float] = field(default_factory=lambda: [0.5])
    image_batch_rows: int = 32
    image_pca_components: int | None = None  # reduce the pooled output like the CAE's PCA (None: keep)
    image_pca_sample_rows: int = 20_000
    # The pretrained_text view: a sentence-transformers model folder (modules.json, config, weights,
    # tokenizer), loaded with local files only; needs the [sentence-transformers] extra.
    text_model: str | None = None
    text_column: Literal["diagnosis_raw", "diagnosis_clean"] = "diagnosis_raw"  # scrubbed text, or cleaned
    text_batch_rows: int = 32  # texts per model call (fixed-size blocks: embeddings do not depend on batching)


@dataclass
class RadnetConfig:
    """Every setting of radnet-spark, one section per stage."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    pretrained: PretrainedConfig = field(default_factory=PretrainedConfig)

    def to_dict(self) -> dict[str, Any]:
        """Every section as nested plain dicts (what ``config.yaml`` holds)."""
        return dataclasses.asdict(self)


# Settings earlier releases had and nothing read; a saved pipeline's config.yaml may still name them.
REMOVED_SETTINGS = frozenset({
    "ingest.dicom_extensions", "text.lda_topics",
})

# What `radnet label` may change on a saved pipeline: how to run and read inputs, never what the
# pipeline computes. Every other setting is fixed by the pipeline version.
LABEL_ADJUSTABLE = (
    "spark.",
    "tracking.",
    "privacy.salt_env",
    "ingest.file_batch_size",
    "ingest.files_per_partition",
    "ingest.tasks_per_slot",
    "ingest.max_file_bytes",
    "ingest.max_pixel_bytes",
    "ingest.diagnoses_key_column",
    "ingest.diagnoses_text_column",
    "image.inference_batch_rows",
)


def _allowed(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def _registered_views() -> tuple[str, ...]:
    """Views registered beyond the built-in ones (imported only when a name is not built in)."""
    from radnet_spark.views import VIEWS

    return tuple(view for view in VIEWS if view not in typing.get_args(ViewName))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the field's declared type, or raise ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        if value not in args:
            allowed = args + _registered_views() if annotation is ViewName else args
            if value not in allowed:
                raise ConfigError(f"{where} must be one of {_allowed(allowed)}; got {value!r}.")
        return value
    if origin is typing.Union or origin is types.UnionType:
        is_null = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_null and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], where)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.strip("[]").split(",") if v.strip() != ""]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}.")
        return [_coerce(v, args[0], where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}.")
        return {_coerce(k, args[0], f"{where} key"): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    try:
        if annotation is bool:
            if isinstance(value, str):
                lowered = value.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
            if isinstance(value, bool):
                return value
            raise ValueError(value)
        if annotation is int:
            # int(2.7) would silently truncate and int(True) is 1: accept whole numbers only.
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if annotation is str:
            if isinstance(value, dict | list):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {annotation.__name__}, got {value!r}.") from None
    return value


def _apply(section: Any, updates: dict[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(section))
    names = {f.name for f in dataclasses.fields(section)}
    for key, value in updates.items():
        dotted = f"{where}.{key}".removeprefix("config.")
        if key not in names:
            if dotted in REMOVED_SETTINGS:
                log.warning("Setting %s was removed (nothing read it); ignoring it.", dotted)
                continue
            raise ConfigError(f"Unknown setting {dotted}; {where.removeprefix('config.') or 'config'} has: "
                              f"{', '.join(sorted(names))}.")
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted} is a section and must be a mapping of settings.")
            _apply(current, value, f"{where}.{key}")
        elif isinstance(current, dict) and isinstance(value, dict):
            # A mapping setting (cluster.view_k, spark.conf) is updated key by key, not replaced.
            setattr(section, key, {**current, **_coerce(value, hints[key], dotted)})
        else:
            setattr(section, key, _coerce(value, hints[key], dotted))


def _check_range(ok: bool, setting: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{setting} must be {rule}; got {value!r}.")


def _check_pretrained(pretrained: PretrainedConfig) -> None:
    """The pretrained encoders' settings; timm and open_clip models come in exported (see docs/pretrained.md)."""
    packages = {"timm": "timm", "open_clip": "open_clip_torch"}
    if pretrained.image_kind in packages:
        package = packages[pretrained.image_kind]
        raise ConfigError(
            f"pretrained.image_kind={pretrained.image_kind} cannot load here: {package} requires torchvision, "
            f"which radnet-spark does not install, so export the model once with torch.jit.trace or "
            f"torch.export on a machine that has {package} (docs/pretrained.md shows the five lines) and give "
            f"that file as pretrained.image_model with pretrained.image_kind=exported."
        )
    _check_range(pretrained.image_kind == "exported", "pretrained.image_kind", pretrained.image_kind,
                 "exported (a TorchScript or torch.export file; timm and open_clip models are exported first)")
    for name in ("image_batch_rows", "text_batch_rows", "image_input_size", "image_channels"):
        _check_range(getattr(pretrained, name) >= 1, f"pretrained.{name}", getattr(pretrained, name), "at least 1")


def validate(config: RadnetConfig) -> RadnetConfig:
    """Check the rules a type cannot express (ranges, sums, cross-field bounds); raise ConfigError."""
    from radnet_spark.text.stemming import available_languages

    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for item in dataclasses.fields(values):
            value = getattr(values, item.name)
            setting = f"{section.name}.{item.name}"
            if isinstance(value, bool) or not isinstance(value, int | float) or item.name.endswith("seed"):
                continue
            _check_range(value >= 0, setting, value, "zero or more")
    split = config.split
    total = split.train + split.validation + split.test
    _check_range(abs(total - 1.0) < 1e-6, "split.train + split.validation + split.test", round(total, 6), "1")
    _check_range(split.train > 0, "split.train", split.train, "more than 0")
    ingest, cluster = config.ingest, config.cluster
    for name in ("file_batch_size", "files_per_partition", "tasks_per_slot", "image_size"):
        _check_range(getattr(ingest, name) >= 1, f"ingest.{name}", getattr(ingest, name), "at least 1")
    for name in ("min_distinct_ratio", "min_distinct_ratio_xa_multiframe", "min_aspect_ratio"):
        _check_range(getattr(ingest, name) <= 1, f"ingest.{name}", getattr(ingest, name), "at most 1")
    languages = available_languages()
    _check_range(ingest.stem_language.strip().lower() in languages, "ingest.stem_language",
                 ingest.stem_language, f"one of {_allowed(languages)}")
    _check_privacy(config.privacy)
    _check_range(len(cluster.views) > 0, "cluster.views", cluster.views, "at least one of tags, image, diagnosis")
    _check_range(len(set(cluster.views)) == len(cluster.views), "cluster.views", cluster.views, "without repeats")
    _check_range(cluster.k_min >= 2, "cluster.k_min", cluster.k_min, "at least 2")
    _check_range(cluster.k_max >= cluster.k_min, "cluster.k_max", cluster.k_max, f"at least cluster.k_min ({cluster.k_min})")
    _check_range(cluster.k_step >= 1, "cluster.k_step", cluster.k_step, "at least 1")
    _check_range(cluster.k is None or cluster.k >= 2, "cluster.k", cluster.k, "at least 2 or null (elbow)")
    _check_range(config.tags.min_fill_rate <= 1, "tags.min_fill_rate", config.tags.min_fill_rate, "at most 1")
    _check_pretrained(config.pretrained)
    return config


def _faker_person_locales() -> tuple[str, ...]:
    """The locales Faker ships person names for, read from its package folder (importing Faker takes ~1 s)."""
    import importlib.util

    spec = importlib.util.find_spec("faker")
    if spec is None or not spec.submodule_search_locations:
        return ()
    folder = Path(next(iter(spec.submodule_search_locations))) / "providers" / "person"
    return tuple(sorted(entry.name for entry in folder.iterdir() if (entry / "__init__.py").is_file()))


def _check_privacy(privacy: PrivacyConfig) -> None:
    """The names lexicon's locales and extra file exist here, not first in an executor's traceback."""
    locales = [part.strip() for part in privacy.names_lexicon.split(",") if part.strip()]
    if locales:
        known = _faker_person_locales()
        unknown = [locale for locale in locales if locale not in known]
        _check_range(not unknown, "privacy.names_lexicon", ",".join(unknown),
                     f"Faker locales with person names (\"\" for none), one of {_allowed(known)}"
                     if known else "empty, as Faker is not installed")
    extra = privacy.names_lexicon_file
    _check_range(extra is None or Path(extra).is_file(), "privacy.names_lexicon_file", extra,
                 "an existing text file of names, one per line, or null")


def read_settings(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The settings a user gave, as ``{section: {field: value}}``: the YAML file, then the overrides."""
    settings: dict[str, Any] = {}
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
        _merge(settings, loaded)
    for override in overrides or []:
        if "=" not in override:
            raise ConfigError(f"Override {override!r} must look like section.field=value.")
        dotted, raw = override.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"Override {override!r} must look like section.field=value.")
        nested: dict[str, Any] = {}
        cursor = nested
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        try:
            cursor[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            cursor[parts[-1]] = raw
        _merge(settings, nested)
    return settings


def _merge(into: dict[str, Any], updates: dict[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "conf":
            _merge(into[key], value)
        else:
            into[key] = value


def config_from_settings(settings: dict[str, Any], base: RadnetConfig | None = None) -> RadnetConfig:
    """Apply user settings on top of ``base`` (default: the paper's values) and validate the result."""
    config = copy.deepcopy(base) if base is not None else RadnetConfig()
    _apply(config, settings, "config")
    return validate(config)


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> RadnetConfig:
    """Build the effective config: defaults, then the YAML file, then ``section.field=value`` overrides."""
    return config_from_settings(read_settings(path, overrides))


def flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; ``spark.conf`` stays one mapping."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted != "spark.conf":
            flat.update(flatten_settings(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def label_config(pipeline_config: RadnetConfig, settings: dict[str, Any], pipeline: str) -> RadnetConfig:
    """The config ``radnet label`` runs with: the pipeline's own, plus the settings label may change.

    A setting that would change what the pipeline computes (image size, tag encoding, embedders,
    fusion, k, …) is fixed by the pipeline version: giving it a different value is an error that
    names it, rather than being dropped silently. Giving the pipeline's own value is fine, so the
    training YAML can be passed to ``label`` unchanged.
    """
    requested = config_from_settings(settings, base=pipeline_config)
    fixed = []
    for dotted in flatten_settings(settings):
        if dotted in REMOVED_SETTINGS or any(dotted.startswith(a) if a.endswith(".") else dotted == a
                                             for a in LABEL_ADJUSTABLE):
            continue
        section, name = dotted.split(".", 1)
        wanted = getattr(getattr(requested, section), name)
        saved = getattr(getattr(pipeline_config, section), name)
        if wanted != saved:
            fixed.append(f"{dotted}={wanted!r} (pipeline has {saved!r})")
    if fixed:
        raise ConfigError(
            f"radnet label cannot change {'; '.join(fixed)}: these are fixed by pipeline {pipeline}; "
            f"train a new version with `radnet run` to change them, or drop them from the label command."
        )
    return requested


def write_effective_config(config: RadnetConfig, out_dir: str | os.PathLike[str], name: str) -> Path:
    """Write the effective config as ``<out_dir>/_config/<name>.yaml`` and return its path."""
    target = Path(out_dir) / "_config" / f"{name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    return target
