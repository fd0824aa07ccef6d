"""The interface every view implements: an estimator that fits on the training split, a fitted view
that turns source rows into one ``embedding`` column.

The pattern is Spark's own ``pyspark.ml``: :meth:`View.fit` returns a :class:`FittedView`, whose
:meth:`FittedView.transform` is a lazy DataFrame transform. A fitted view lives in one folder of the
pipeline version (executors load it from there); ``view.json`` in that folder says which view wrote
it, in which format, and how long its vectors are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.config import RadnetConfig
from radnet_spark.splits import with_split
from radnet_spark.tables import read_table, table_exists, table_path

VIEW_FORMAT_VERSION = 1
VIEW_MANIFEST = "view.json"


@dataclass
class ViewInputs:
    """What a view reads while fitting or applying: the warehouse, the session and the settings."""

    spark: SparkSession
    warehouse: str
    config: RadnetConfig

    def table(self, name: str) -> DataFrame:
        """Warehouse table ``name`` as a DataFrame."""
        return read_table(self.spark, self.warehouse, name)

    def table_path(self, name: str) -> str:
        """URI of warehouse table ``name`` (for readers that stream Parquet themselves)."""
        return table_path(self.warehouse, name)

    def with_split(self, df: DataFrame) -> DataFrame:
        """``df`` with the exam-level ``split`` column of these settings."""
        return with_split(df, self.config.split)


@dataclass
class FittedView:
    """A view's fitted state in ``folder``; :meth:`transform` embeds source rows with it.

    Attributes:
        view: The view that fitted it.
        folder: Where the fitted state lies (readable from every executor).
        embedding_size: Length of every embedding.
        info: Fit details recorded in the manifest (kind, metrics).
    """

    view: View
    folder: str
    embedding_size: int
    info: dict[str, Any] = field(default_factory=dict)

    def transform(self, source: DataFrame, config: RadnetConfig) -> DataFrame:
        """``sop_instance_uid``/``exam_id``, ``split`` and ``embedding`` for every row of ``source``."""
        return self.view.transform(self, source, config)

    def save(self) -> None:
        """Write ``view.json`` beside the fitted state (the fit wrote the state itself)."""
        write_step_manifest(self.folder, VIEW_MANIFEST, f"{self.view.name} view", VIEW_FORMAT_VERSION,
                            embedding_size=self.embedding_size, info=self.info)


class View(ABC):
    """One view of an instance. Subclasses set the class attributes and implement fit and transform.

    Attributes:
        name: The name ``cluster.views`` uses.
        key: ``sop_instance_uid`` (one embedding per image) or ``exam_id`` (one per exam).
        source_table: Warehouse table the view embeds.
        config_sections: Config sections its fit reads; they, and only they, decide when it re-fits.
        default_k: k of the view on its own when ``cluster.view_k`` names none (a view added outside
            the config); the built-in views' k (the paper's) is the default of ``cluster.view_k``.
    """

    name: ClassVar[str]
    key: ClassVar[str] = "sop_instance_uid"
    source_table: ClassVar[str]
    config_sections: ClassVar[tuple[str, ...]] = ()
    default_k: ClassVar[int] = 20

    @property
    def embeddings_table(self) -> str:
        """The warehouse table ``run`` writes this view's embeddings to."""
        return f"embeddings_{self.name}"

    @property
    def artifact(self) -> str:
        """The fitted state's folder inside a pipeline version."""
        return f"{self.name}/embedder"

    def check_settings(self, config: RadnetConfig) -> None:
        """Raise a one-sentence error when the view's settings point at something unusable.

        Called before any Spark work of ``run`` (a missing model file must not cost an ingest);
        by default a view needs nothing outside the warehouse.
        """
        return None

    def usable_rows(self, inputs: ViewInputs) -> tuple[int, str]:
        """Training rows this view can learn from, and what counts as usable (for the warning).

        By default: training rows of the source table; a view whose rows need more (a report with
        frequent words) says so by overriding this.
        """
        if not table_exists(inputs.warehouse, self.source_table):
            return 0, f"rows in the {self.source_table} table (there is none)"
        rows = inputs.with_split(inputs.table(self.source_table)).where(F.col("split") == "train")
        return rows.count(), f"training rows in {self.source_table}"

    @abstractmethod
    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        """Fit on the training split of ``inputs`` and write the fitted state into ``folder``."""

    @abstractmethod
    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        """Embed ``source`` rows (lazy): the key columns, ``split`` and ``embedding``."""

    def load(self, folder: str) -> FittedView:
        """The fitted view saved in ``folder``; one sentence when it is missing, of another view or format."""
        manifest = read_step_manifest(folder, VIEW_MANIFEST, f"{self.name} view", VIEW_FORMAT_VERSION)
        return FittedView(self, folder, int(manifest["embedding_size"]), manifest.get("info", {}))
