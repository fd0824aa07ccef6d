"""The tag view's preprocessing as one fitted Spark transform: ``tags`` → ``tag_features``.

Fitting (driver): profile every tag column in one aggregation pass over the whole table, select the
columns (``selection.py``), draw a bounded sample of training-split rows (a sampling fraction plus a
limit — the table is never collected), fix the categories (top values plus ``__other__`` for bucketed
columns), fit the imputer (MissForest or mean/mode) and the encoder on that sample.

Applying (executors): ``mapInPandas`` normalises, buckets, imputes and encodes each Arrow batch into
``sop_instance_uid``, ``exam_id``, ``split``, ``modality``, ``features`` (array<float>). The BPE columns
of ``tag_features`` are added separately by ``radnet_spark.tags.bpe``.

The encoder's ranges come from the observed sample values: imputed values cannot leave them (forests
average observed values, the initial fill is the observed mean), so imputing first would not change them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.config import SplitConfig, TagsConfig
from radnet_spark.errors import UserError
from radnet_spark.sampling import smallest_hash_rows
from radnet_spark.splits import split_column
from radnet_spark.tags.encoding import TagEncoder
from radnet_spark.tags.missforest import SimpleTagImputer, load_imputer, make_imputer, normalise_tag_frame
from radnet_spark.tags.selection import KEY_COLUMNS, OTHER_CATEGORY, TagSelection, profile_tags, select_tags

log = logging.getLogger(__name__)

STEP = "tag preprocessing"
FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"
SELECTION_FILE = "selection.json"
ENCODER_FILE = "encoder.json"
IMPUTER_DIR = "imputer"

# The DICOM keyword copied to tag_features.modality (the evaluation's label).
MODALITY_COLUMN = "Modality"

OUTPUT_SCHEMA = "sop_instance_uid string, exam_id string, split string, modality string, features array<float>"


def category_levels(
    pdf: pd.DataFrame, categorical: list[str], bucketed: list[str], max_categories: int
) -> dict[str, list[str]]:
    """The categories of each categorical column, from a normalised sample.

    Args:
        pdf: Normalised sample (see ``normalise_tag_frame``).
        categorical: Categorical columns.
        bucketed: Columns reduced to their ``max_categories - 1`` most frequent values + ``__other__``.
        max_categories: Category limit of bucketed columns.

    Returns:
        Column → ordered category list (most frequent first for bucketed columns, sorted otherwise).
    """
    levels: dict[str, list[str]] = {}
    for col in categorical:
        counts = pdf[col].dropna().astype(str).value_counts()
        if col in bucketed:
            ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            levels[col] = [value for value, _ in ordered[: max_categories - 1]] + [OTHER_CATEGORY]
        else:
            levels[col] = sorted(counts.index)
    return levels


def prepare_tag_batch(
    pdf: pd.DataFrame,
    continuous: list[str],
    categorical: list[str],
    levels: dict[str, list[str]],
    bucketed: list[str],
) -> pd.DataFrame:
    """Normalise a batch and map values outside a bucketed column's top values to ``__other__``."""
    frame = normalise_tag_frame(pdf, continuous, categorical)
    for col in bucketed:
        known = set(levels[col])
        values = frame[col].to_numpy(dtype=object)
        outside = np.array([v is not None and v not in known for v in values], dtype=bool)
        values[outside] = OTHER_CATEGORY
        frame[col] = values
    return frame


def encode_tag_batch(
    pdf: pd.DataFrame,
    imputer: SimpleTagImputer,
    encoder: TagEncoder,
    levels: dict[str, list[str]],
    bucketed: list[str],
) -> np.ndarray:
    """Prepare, impute and encode one batch of ``tags`` rows (pure; what each executor task runs).

    Args:
        pdf: Rows of the ``tags`` table; absent tag columns count as missing.
        imputer: Fitted imputer.
        encoder: Fitted encoder.
        levels: Categories per categorical column.
        bucketed: Bucketed categorical columns.

    Returns:
        float32 array ``(len(pdf), encoder.n_features)``.
    """
    prepared = prepare_tag_batch(pdf, encoder.continuous, encoder.categorical, levels, bucketed)
    return encoder.encode_frame(imputer.transform(prepared))


@dataclass
class TagPreprocessing:
    """Fitted tag preprocessing: selection, categories, imputer and encoder, plus the split settings.

    Attributes:
        selection: Which tag columns are features, and as what kind.
        levels: Categories per categorical column.
        imputer: The fitted imputer.
        encoder: The fitted one-hot/min-max encoder.
        split: ``train``, ``validation`` and ``seed`` of the exam split every output row carries.
        modality_column: Tag column copied to the output's ``modality``.
        directory: Where the preprocessing was saved or loaded from; executors then read it there.
    """

    selection: TagSelection
    levels: dict[str, list[str]]
    imputer: SimpleTagImputer
    encoder: TagEncoder
    split: dict[str, Any]
    modality_column: str = MODALITY_COLUMN
    directory: str | None = None

    @property
    def feature_names(self) -> list[str]:
        """Names of the positions of ``features``."""
        return self.encoder.feature_names

    def encode_batch(self, pdf: pd.DataFrame) -> np.ndarray:
        """Encode one pandas batch of ``tags`` rows on the driver (same result as ``transform``)."""
        return encode_tag_batch(pdf, self.imputer, self.encoder, self.levels, self.selection.bucketed)

    def transform(self, tags_df: DataFrame, ship_model: str = "auto") -> DataFrame:
        """Turn ``tags`` rows into ``tag_features`` rows (without the BPE columns), distributed.

        Args:
            tags_df: The ``tags`` table; tag columns it lacks count as missing everywhere.
            ship_model: ``"path"``: executors load the saved directory (it must be readable from
                them); ``"bytes"``: the fitted parts travel pickled with the task (PySpark broadcasts
                large task payloads by itself); ``"auto"``: the path once saved or loaded, else bytes.

        Returns:
            DataFrame with ``sop_instance_uid``, ``exam_id``, ``split``, ``modality``, ``features``.
        """
        if ship_model not in ("auto", "path", "bytes"):
            raise UserError(f"ship_model must be 'auto', 'path' or 'bytes', got {ship_model!r}.")
        if ship_model == "path" and self.directory is None:
            raise UserError("ship_model='path' needs a saved tag preprocessing; call save(directory) first.")
        for required in ("sop_instance_uid", "exam_id"):
            if required not in tags_df.columns:
                raise UserError(f"The tags table has no {required} column; is it the output of ingest?")
        columns = self.encoder.continuous + self.encoder.categorical
        present = set(tags_df.columns)
        # Positional names: Spark resolves names case-insensitively, so "Modality" the feature and
        # "modality" the output column would collide.
        inputs = [
            F.col("sop_instance_uid").cast("string").alias("sop_instance_uid"),
            F.col("exam_id").cast("string").alias("exam_id"),
            split_column("exam_id", self.split["train"], self.split["validation"], self.split["seed"]).alias("split"),
            (F.col(f"`{self.modality_column}`").cast("string") if self.modality_column in present
             else F.lit(None).cast("string")).alias("modality"),
        ]
        for index, col in enumerate(columns):
            source = F.col(f"`{col}`").cast("string") if col in present else F.lit(None).cast("string")
            inputs.append(source.alias(f"__tag{index}"))
        renames = {f"__tag{index}": col for index, col in enumerate(columns)}

        if self.directory is not None and ship_model != "bytes":
            directory: str | None = self.directory
            payload: bytes | None = None
            key = f"tag-preprocessing:{directory}:{_manifest_stamp(directory)}"
        else:
            directory = None
            payload = pickle.dumps((self.imputer, self.encoder, self.levels, self.selection.bucketed))
            key = "tag-preprocessing:" + hashlib.sha256(payload).hexdigest()

        def encode_batches(batches: Any) -> Any:
            import pickle as _pickle

            import pandas as _pd

            from radnet_spark.tags.features import TagPreprocessing as _TagPreprocessing
            from radnet_spark.tags.features import encode_tag_batch as _encode
            from radnet_spark.worker_cache import cached

            def _load() -> Any:
                if directory is not None:
                    loaded = _TagPreprocessing.load(directory)
                    return loaded.imputer, loaded.encoder, loaded.levels, loaded.selection.bucketed
                return _pickle.loads(payload)

            imputer, encoder, levels, bucketed = cached(key, _load)
            for batch in batches:
                tags = batch.rename(columns=renames)
                features = _encode(tags, imputer, encoder, levels, bucketed)
                yield _pd.DataFrame({
                    "sop_instance_uid": batch["sop_instance_uid"],
                    "exam_id": batch["exam_id"],
                    "split": batch["split"],
                    "modality": batch["modality"],
                    "features": list(features),
                })

        return tags_df.select(*inputs).mapInPandas(encode_batches, schema=OUTPUT_SCHEMA)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write every fitted part and a manifest to ``directory``; later transforms read from it.

        Args:
            directory: Target directory (created).

        Returns:
            The directory.
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        self.selection.save(target / SELECTION_FILE)
        # For people reading the pipeline directory; nothing loads it.
        (target / "selection.md").write_text(self.selection.to_markdown() + "\n", encoding="utf-8")
        self.encoder.save(target / ENCODER_FILE)
        self.imputer.save(target / IMPUTER_DIR)
        # The manifest last: its presence marks a complete artifact.
        write_step_manifest(
            target, MANIFEST_FILE, STEP, FORMAT_VERSION,
            imputer=self.imputer.kind,
            split=self.split,
            modality_column=self.modality_column,
            continuous=self.encoder.continuous,
            categorical=self.encoder.categorical,
            bucketed=self.selection.bucketed,
            levels=self.levels,
            n_features=self.encoder.n_features,
            feature_names=self.feature_names,
            files={"selection": SELECTION_FILE, "encoder": ENCODER_FILE, "imputer": IMPUTER_DIR},
        )
        self.directory = str(target)
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TagPreprocessing:
        """Load a preprocessing written by :meth:`save`.

        Args:
            directory: The saved directory.

        Returns:
            The fitted preprocessing, which transforms exactly as the saved one did.
        """
        source = Path(directory)
        manifest = read_step_manifest(source, MANIFEST_FILE, STEP, FORMAT_VERSION)
        return cls(
            selection=TagSelection.load(source / manifest["files"]["selection"]),
            levels={k: list(v) for k, v in manifest["levels"].items()},
            imputer=load_imputer(source / manifest["files"]["imputer"]),
            encoder=TagEncoder.load(source / manifest["files"]["encoder"]),
            split=dict(manifest["split"]),
            modality_column=manifest["modality_column"],
            directory=str(source),
        )


def _manifest_stamp(directory: str) -> str:
    manifest = Path(directory) / MANIFEST_FILE
    return str(manifest.stat().st_mtime_ns) if manifest.is_file() else "unsaved"


def _training_sample(
    tags_df: DataFrame, columns: list[str], rows: int, limit: int, train: float, validation: float, seed: int
) -> pd.DataFrame:
    """At most ``limit`` training-split rows of ``columns`` as pandas (falls back to all splits if none)."""
    selected = [F.col(f"`{c}`").cast("string").alias(c) for c in columns]
    training = tags_df.where(split_column("exam_id", train, validation, seed) == "train")
    # Order by a seeded hash of the key: the same rows in the same order whatever the partitioning.
    rank, key = F.xxhash64(F.lit(seed), F.col("sop_instance_uid")), F.col("sop_instance_uid")
    pdf = smallest_hash_rows(training, limit, rank, [key]).select(*selected).toPandas()
    if len(pdf) == 0:
        log.warning("No training-split rows in the tags table; fitting the tag preprocessing on all splits.")
        pdf = smallest_hash_rows(tags_df, limit, rank, [key], total=rows).select(*selected).toPandas()
    return pdf


def fit_tag_preprocessing(
    tags_df: DataFrame,
    tags: TagsConfig,
    split: SplitConfig,
    *,
    selection_options: dict[str, Any] | None = None,
) -> TagPreprocessing:
    """Fit the tag view's preprocessing on the ``tags`` table.

    Args:
        tags_df: The ``tags`` table.
        tags: The settings read: ``exclude_columns`` (not features, beside our keys), the selection
            thresholds ``min_fill_rate``, ``min_distinct``, ``max_categories`` and
            ``categorical_overflow`` (see ``select_tags``), ``imputer`` with the ``missforest_*``
            settings, and ``fit_sample_rows`` (most training rows brought to the driver for fitting).
        split: The exam split (training rows are sampled from it) and the seed of the sample and
            the forests.
        selection_options: Further keyword arguments of ``select_tags`` (``numeric_share``,
            ``identifier_ratio``, ``identifier_min_rows``, ``text_min_space_share``, ``text_min_mean_length``).

    Returns:
        The fitted preprocessing (not yet saved).
    """
    fit_sample_rows, seed = tags.fit_sample_rows, split.seed
    if fit_sample_rows < 1:
        raise UserError(f"fit_sample_rows must be at least 1, got {fit_sample_rows}.")
    if "exam_id" not in tags_df.columns:
        raise UserError("The tags table has no exam_id column; is it the output of ingest?")
    profile = profile_tags(tags_df, exclude=KEY_COLUMNS | set(tags.exclude_columns))
    selection = select_tags(
        profile, tags.min_fill_rate, tags.min_distinct, tags.max_categories, tags.categorical_overflow,
        **(selection_options or {}),
    )
    log.info("%s", selection.to_markdown())
    continuous, categorical = selection.continuous, selection.categorical
    if not continuous and not categorical:
        raise UserError(
            "No DICOM tag column survived the selection (fill rate, distinct values, identifiers, text); "
            "check the tags table or relax min_fill_rate/max_categories."
        )
    sample = _training_sample(
        tags_df, continuous + categorical, profile.rows, fit_sample_rows, split.train, split.validation, seed
    )
    log.info("Fitting tag preprocessing on %d sampled rows.", len(sample))
    normalised = normalise_tag_frame(sample, continuous, categorical)
    levels = category_levels(normalised, categorical, selection.bucketed, tags.max_categories)
    prepared = prepare_tag_batch(normalised, continuous, categorical, levels, selection.bucketed)
    params: dict[str, Any] = {}
    if tags.imputer == "missforest":
        params = {
            "n_estimators": tags.missforest_trees, "max_iter": tags.missforest_max_iter, "seed": seed,
            "max_depth": tags.missforest_max_depth, "max_samples": tags.missforest_max_samples,
        }
    fitted_imputer = make_imputer(tags.imputer, continuous, categorical, **params).fit(prepared)
    encoder = TagEncoder(continuous, categorical).fit(prepared, categories=levels)
    return TagPreprocessing(
        selection=selection,
        levels=levels,
        imputer=fitted_imputer,
        encoder=encoder,
        split={"train": split.train, "validation": split.validation, "seed": seed},
    )
