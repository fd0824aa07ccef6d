"""The Databricks notebooks: source format, and a local end-to-end run of all four on a tiny dump."""

from __future__ import annotations

import ast
import json
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from radnet_spark.tables import read_table

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"

# Settings that make training take seconds (tests/test_pipeline.py's, with the simple imputer), passed
# the way a user passes them to the notebooks: `;`-separated in RADNET_NB_OVERRIDES.
FAST = [
    "tags.imputer=simple", "tags.ae_max_epochs=3",
    "image.max_epochs=2", "image.cae_filters=[8,8,16,16]", "image.pca_components=16",
    "text.epochs=5", "text.vector_size=16", "text.min_word_frequency=2",
    "cluster.k_min=2", "cluster.k_max=8", "cluster.k_step=1",
]


def _cells(source: str) -> list[str]:
    return [cell.strip("\n") for cell in source.split(f"\n{SEPARATOR}\n")]


def test_there_is_a_notebook_for_each_step():
    names = [path.name for path in NOTEBOOKS]
    assert names == ["01_explore_tables.py", "02_train_pipeline.py", "03_label_new_dump.py", "04_read_report.py"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_databricks_source_with_markdown_and_code_cells(path):
    source = path.read_text(encoding="utf-8")
    assert source.splitlines()[0] == HEADER
    cells = _cells(source.split("\n", 1)[1])
    assert len(cells) >= 3
    assert all(cell.strip() for cell in cells), "no empty cells"
    markdown = [cell for cell in cells if cell.startswith("# MAGIC %md")]
    assert markdown, "each notebook explains itself in a markdown cell"
    for cell in markdown:
        assert all(line.startswith("# MAGIC") for line in cell.splitlines()), cell
    # Only the exact separator splits cells; a near miss would silently merge two cells on import.
    for line in source.splitlines():
        if line.startswith("# COMMAND"):
            assert line == SEPARATOR
    ast.parse(source, filename=str(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_takes_its_session_from_the_library_and_its_paths_from_widgets(path):
    source = path.read_text(encoding="utf-8")
    assert "SparkSession.builder" not in source
    if "spark" in source.replace("radnet_spark", ""):
        assert "get_spark(" in source
    assert "dbutils.widgets.text(" in source and "RADNET_NB_" in source


def _run_notebook(name: str, init_globals: dict[str, Any] | None = None) -> dict[str, Any]:
    return runpy.run_path(str(NOTEBOOK_DIR / name), init_globals=init_globals, run_name="__main__")


@pytest.fixture(scope="module")
def notebook_run(spark, tmp_path_factory):
    """Notebooks 1-4 run in order, locally, on a generated dump: returns (root, {name: globals})."""
    root = tmp_path_factory.mktemp("notebooks")
    library_log = logging.getLogger("radnet_spark")
    handlers, level = list(library_log.handlers), library_log.level
    results: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADNET_NB_ROOT", str(root))
        mp.setenv("RADNET_NB_OVERRIDES", "; ".join(FAST))
        mp.setenv("RADNET_NB_SYNTHETIC_EXAMS", "8")
        results["01"] = _run_notebook("01_explore_tables.py")
        results["02"] = _run_notebook("02_train_pipeline.py")
        mp.setenv("RADNET_NB_SYNTHETIC_EXAMS", "2")
        results["03"] = _run_notebook("03_label_new_dump.py")
        results["04"] = _run_notebook("04_read_report.py")
    # The notebooks attach a stderr handler for progress; it must not outlive pytest's capture.
    library_log.handlers[:] = handlers
    library_log.setLevel(level)
    return root, results


def test_explore_notebook_generates_ingests_and_draws_sample_images(spark, notebook_run):
    root, results = notebook_run
    explore = results["01"]
    assert (root / "pacs" / "dicom").is_dir()
    assert explore["summary"].new_files > 0
    assert explore["summary"].counts["tags"] > 0
    png = root / "warehouse" / "_notebooks" / "sample_images.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_notebook_saves_a_complete_pipeline_under_the_models_widget(notebook_run):
    root, results = notebook_run
    result = results["02"]["result"]
    assert result.pipeline.root.parent == (root / "models" / "default").resolve()
    manifest = json.loads((result.pipeline.root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert result.k >= 2
    # The FAST overrides reached the pipeline: its saved config is the one training used.
    assert result.pipeline.config().image.cae_filters == [8, 8, 16, 16]


def test_label_notebook_labels_the_new_dump_with_the_latest_pipeline(spark, notebook_run):
    root, results = notebook_run
    trained = results["02"]["result"]
    labelled = results["03"]["result"]
    assert results["03"]["pipeline"] == str(trained.pipeline.root)
    assert labelled.pipeline_version == trained.pipeline.version
    assert labelled.new_labels > 0
    assert labelled.drift
    labels = read_table(spark, str(root / "warehouse"), "labels")
    assert labels.where(f"label_run_id != 'run' AND pipeline_version = '{trained.pipeline.version}'").count() == (
        labelled.new_labels
    )


def test_report_notebook_finds_the_report_of_the_training_run(notebook_run):
    _, results = notebook_run
    assert Path(results["04"]["report"]) == results["02"]["result"].report


def test_report_notebook_on_databricks_reads_widgets_and_displays_the_html(notebook_run):
    root, _ = notebook_run
    values = {"warehouse": str(root / "warehouse"), "models": str(root / "models")}
    declared: dict[str, str] = {}
    shown: list[str] = []
    widgets = SimpleNamespace(
        text=lambda name, default, *label: declared.setdefault(name, default),
        get=lambda name: values[name],
    )
    _run_notebook(
        "04_read_report.py",
        {"dbutils": SimpleNamespace(widgets=widgets), "displayHTML": shown.append, "display": print},
    )
    assert set(declared) == {"warehouse", "models"}
    assert declared["warehouse"].startswith("/Volumes/")
    assert len(shown) == 1 and shown[0].lstrip().lower().startswith(("<!doctype html", "<html"))
