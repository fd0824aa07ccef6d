"""Shared fixtures: one local SparkSession for the whole test session, small generated data."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("RADNET_SALT", "test-salt-not-secret")
    # Workers run PYSPARK_PYTHON (default `python3` from PATH, which lacks our packages).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("radnet-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.driver.memory", "2g")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _test_salt(monkeypatch):
    monkeypatch.setenv("RADNET_SALT", "test-salt-not-secret")


# Training budgets scaled down to seconds (the method is unchanged; test_pipeline.py uses the same).
TINY_TRAINING = [
    "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.ae_max_epochs=3",
    "image.max_epochs=2", "image.cae_filters=[8,8,16,16]", "image.pca_components=16",
    "text.epochs=5", "text.vector_size=16", "text.min_word_frequency=2",
    "cluster.k_min=2", "cluster.k_max=8", "cluster.k_step=1",
]


@pytest.fixture(scope="session")
def tracked_pipeline(spark, tmp_path_factory):
    """A tiny dump trained by `radnet run --set tracking.mlflow=true` against a local SQLite MLflow store.

    Shared by the object-storage and tracking tests (one training for both). Returns a dict with the
    dump, warehouse, pipeline folder, the MLflow tracking URI and the run's printed output.
    """
    pytest.importorskip("mlflow")
    from radnet_spark.cli import main
    from radnet_spark.synth import generate_pacs

    root = tmp_path_factory.mktemp("tracked")
    dump = root / "pacs"
    generate_pacs(dump, exams=10, seed=11, workers=1)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    warehouse, models = root / "warehouse", root / "models"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        patch.chdir(root)  # MLflow puts a SQLite store's artifacts under ./mlruns
        args = ["run", "--dicom", str(dump / "dicom"), "--diagnoses", str(dump / "diagnoses.csv"),
                "--out", str(warehouse), "--models", str(models), "--name", "tiny"]
        for setting in [*TINY_TRAINING, "tracking.mlflow=true", "tracking.alias=champion"]:
            args += ["--set", setting]
        assert main(args) == 0
    (pipeline,) = sorted((models / "tiny").glob("v*"))
    return {"root": root, "dump": dump, "warehouse": warehouse, "models": models, "pipeline": pipeline,
            "tracking_uri": tracking_uri}
