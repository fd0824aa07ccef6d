"""MLflow tracking against a local SQLite store: `radnet run` logs and registers, `label` resolves models:/."""

from __future__ import annotations

import json

import pytest

from radnet_spark.cli import main

mlflow = pytest.importorskip("mlflow")


@pytest.fixture()
def tracking(tracked_pipeline, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked_pipeline["tracking_uri"])
    monkeypatch.chdir(tracked_pipeline["root"])
    return tracked_pipeline


def test_run_logs_the_version_as_an_mlflow_run_and_registers_it(tracking):
    from mlflow.tracking import MlflowClient

    manifest = json.loads((tracking["pipeline"] / "manifest.json").read_text())
    record = manifest["mlflow"]
    client = MlflowClient()
    run = client.get_run(record["run_id"])
    assert run.data.params["tracking.mlflow"] == "True"
    assert run.data.params["image.max_epochs"] == "2"
    assert run.data.metrics["k"] == manifest["k"]
    assert run.data.metrics["validation.score"] == pytest.approx(manifest["metrics"]["validation"]["score"])
    assert run.data.tags["radnet.pipeline_version"] == tracking["pipeline"].name
    artifacts = {a.path for a in client.list_artifacts(record["run_id"])}
    assert {"pipeline", "report", "plots"} <= artifacts
    logged = {a.path for a in client.list_artifacts(record["run_id"], "pipeline")}
    assert "pipeline/manifest.json" in logged and "pipeline/kmeans" in logged
    version = client.get_model_version("tiny", record["model_version"])
    assert version.run_id == record["run_id"]
    assert client.get_model_version_by_alias("tiny", "champion").version == version.version


def test_logging_a_version_again_changes_nothing(tracking, capsys):
    from mlflow.tracking import MlflowClient

    before = MlflowClient().search_model_versions("name='tiny'")
    assert main(["models", "log", str(tracking["pipeline"]), "--set", "tracking.alias=champion"]) == 0
    assert len(MlflowClient().search_model_versions("name='tiny'")) == len(before) == 1
    assert "models:/tiny/1" in capsys.readouterr().out


@pytest.mark.parametrize("reference", ["models:/tiny/1", "models:/tiny@champion"])
def test_label_resolves_the_registry_to_the_same_pipeline_version(tracking, reference, capsys):
    warehouse = tracking["warehouse"]
    assert main(["label", "--pipeline", reference, "--dicom", str(tracking["dump"] / "dicom"),
                 "--out", str(warehouse)]) == 0
    resolved = warehouse / "_registry" / "tiny" / tracking["pipeline"].name
    assert json.loads((resolved / "manifest.json").read_text())["complete"] is True
    # The registered artifacts are the version folder plus an MLmodel descriptor with a signature.
    assert mlflow.models.Model.load(str(resolved)).signature.inputs.input_names() == ["path"]
    # Same pipeline_version as the training run: every instance already has its label, none is added.
    assert f"labelled 0 new instances with pipeline {tracking['pipeline'].name}" in capsys.readouterr().out


@pytest.mark.parametrize(("reference", "words"), [
    ("models:/absent/1", "no version 1 of model 'absent'"),
    ("models:/tiny@nobody", "no alias @nobody of model 'tiny'"),
    ("models:/tiny", "must look like models:/<name>/<version>"),
])
def test_a_missing_registry_entry_is_one_sentence_and_exit_2(tracking, tmp_path, capsys, reference, words):
    code = main(["label", "--pipeline", reference, "--dicom", str(tracking["dump"] / "dicom"),
                 "--out", str(tmp_path / "wh")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "wh").exists()
