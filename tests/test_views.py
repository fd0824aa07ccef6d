"""A fourth view is one class and one registration: it trains, embeds, fuses, clusters and labels.

The toy view below (an intensity histogram of the 8-bit image) touches no module of the package:
``register_view`` is the only line that tells the pipeline about it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from radnet_spark.config import ConfigError, RadnetConfig, load_config
from radnet_spark.errors import PipelineError
from radnet_spark.pipeline import label, run
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import read_table
from radnet_spark.views import VIEWS, FittedView, View, ViewInputs, get_view, register_view

BINS = 8


class HistogramView(View):
    """Share of pixels in each of eight intensity bins, centred on the training mean."""

    name = "histogram"
    source_table = "images"
    default_k = 4

    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        train = inputs.with_split(inputs.table("images")).where(F.col("split") == "train")
        sample = [bytes(row["image"]) for row in train.select("image").orderBy("sop_instance_uid").limit(64).collect()]
        mean = np.mean([np.bincount(np.frombuffer(b, np.uint8) // 32, minlength=BINS) / len(b) for b in sample], axis=0)
        Path(folder).mkdir(parents=True, exist_ok=True)
        np.save(Path(folder) / "mean.npy", mean)
        return FittedView(self, folder, BINS, {"kind": "histogram", "training_images": len(sample)})

    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        mean = np.load(Path(fitted.folder) / "mean.npy").astype(np.float32)

        def histograms(frames):  # noqa: ANN001, ANN202 - pickled by value to the workers
            for frame in frames:
                vectors = [
                    (np.bincount(np.frombuffer(image, np.uint8) // 32, minlength=8) / len(image)).astype(np.float32)
                    - mean
                    for image in frame["image"]
                ]
                yield pd.DataFrame({"sop_instance_uid": frame["sop_instance_uid"], "exam_id": frame["exam_id"],
                                    "split": frame["split"], "embedding": [v.tolist() for v in vectors]})

        schema = T.StructType([
            T.StructField("sop_instance_uid", T.StringType()), T.StructField("exam_id", T.StringType()),
            T.StructField("split", T.StringType()), T.StructField("embedding", T.ArrayType(T.FloatType())),
        ])
        rows = ViewInputs(source.sparkSession, "", config).with_split(source)
        return rows.select("sop_instance_uid", "exam_id", "split", "image").mapInPandas(histograms, schema)


@pytest.fixture(scope="module")
def histogram_view():
    view = register_view(HistogramView())
    yield view
    VIEWS.pop(view.name, None)


FAST = [
    "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.ae_max_epochs=3",
    "cluster.k_min=2", "cluster.k_max=6", "cluster.k_step=1", "cluster.views=[tags,histogram]",
]


def test_an_unregistered_view_is_a_config_error_naming_the_known_views():
    with pytest.raises(ConfigError, match="one of tags, image, diagnosis, pretrained_image, pretrained_text; got .histogramm"):
        load_config(None, ["cluster.views=[tags,histogramm]"])
    with pytest.raises(ValueError, match="Unknown view 'histogramm'"):
        get_view("histogramm")


def test_a_registered_fourth_view_is_trained_embedded_clustered_and_applied(spark, tmp_path, histogram_view):
    dump, new_dump = tmp_path / "pacs", tmp_path / "new-pacs"
    generate_pacs(dump, exams=10, seed=11, defect_rates=DefectRates.none(), workers=1)
    generate_pacs(new_dump, exams=3, seed=12, defect_rates=DefectRates.none(), workers=1)
    warehouse, models = str(tmp_path / "warehouse"), str(tmp_path / "models")
    result = run(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), warehouse, load_config(None, FAST),
                 models_root=models, until="cluster")
    assert "train_histogram" in result.stages_run and "train_image" not in result.stages_run

    manifest = json.loads((result.pipeline.root / "manifest.json").read_text())
    assert manifest["artifacts"]["histogram/embedder"]["size"] == BINS
    images = read_table(spark, warehouse, "images").count()
    embeddings = read_table(spark, warehouse, "embeddings_histogram")
    assert embeddings.count() == images
    assert {len(row["embedding"]) for row in embeddings.select("embedding").collect()} == {BINS}
    fusion = json.loads((result.pipeline.root / "fusion" / "fusion.json").read_text())
    assert fusion["views"] == ["tags", "histogram"]

    result = run(spark, None, None, warehouse, load_config(None, FAST), models_root=models)
    labels = read_table(spark, warehouse, "labels").where(F.col("pipeline_version") == result.pipeline.version)
    assert labels.count() == read_table(spark, warehouse, "tags").count()

    # A cluster setting alone trains a new version from the fitted views of this one.
    changed = run(spark, None, None, warehouse, load_config(None, [*FAST, "cluster.k=3"]), models_root=models)
    assert changed.pipeline.root != result.pipeline.root and changed.k == 3
    assert changed.stages_run == ["cluster", "evaluate", "report"]
    assert {"features", "train_tags", "train_histogram", "embed_histogram"} <= set(changed.stages_skipped)
    for part in ("bpe_rules.yaml", "tags/preprocessing", "tags/embedder", "histogram/embedder"):
        assert (changed.pipeline.root / part).exists(), part
    assert "histogram/embedder" in changed.pipeline.manifest()["artifacts"]
    labelled = label(spark, str(result.pipeline.root), str(new_dump / "dicom"), str(new_dump / "diagnoses.csv"),
                     warehouse)
    assert labelled.new_labels == read_table(spark, warehouse, "tags").count() - labels.count() > 0


def test_a_fitted_view_refuses_a_folder_of_another_view(tmp_path, histogram_view):
    FittedView(histogram_view, str(tmp_path), BINS).save()
    with pytest.raises(PipelineError, match="holds the 'histogram view' step, not 'tags view'"):
        get_view("tags").load(str(tmp_path))


def test_a_dump_without_reports_drops_the_diagnosis_view_with_a_warning(spark, tmp_path, caplog):
    dump = tmp_path / "pacs"
    generate_pacs(dump, exams=8, seed=13, defect_rates=DefectRates.none(), workers=1)
    (dump / "diagnoses.csv").write_text("AccessionNumber,diagnosis\n", encoding="utf-8")
    # PCA for tags: eight exams leave no validation split for the tag autoencoder to stop on.
    settings = [*FAST[:-1], "cluster.views=[tags,diagnosis]", "text.min_word_frequency=2", "tags.embedder=pca"]
    warehouse, models = str(tmp_path / "warehouse"), str(tmp_path / "models")
    with caplog.at_level("WARNING", logger="radnet_spark.model"):
        result = run(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), warehouse,
                     load_config(None, settings), models_root=models)
    assert "view diagnosis has 0 training diagnoses" in caplog.text and "cluster.views" in caplog.text
    manifest = result.pipeline.manifest()
    assert manifest["views"] == ["tags"] and manifest["usable_rows"]["diagnosis"] == 0
    assert "train_diagnosis" not in result.stages_run
    assert "Views used</th><td>tags<" in result.report.read_text(encoding="utf-8")

    strict = [*settings, "cluster.drop_empty_views=false"]
    with pytest.raises(PipelineError, match="view diagnosis has 0 .*cluster.views"):
        run(spark, None, None, warehouse, load_config(None, strict), models_root=models)


def _without_reports(dump: Path) -> None:
    (dump / "diagnoses.csv").write_text("AccessionNumber,diagnosis\n", encoding="utf-8")


def test_no_usable_view_is_one_sentence_and_exit_2_before_anything_is_fitted(spark, tmp_path, capsys):
    from radnet_spark.cli import main

    dump = tmp_path / "pacs"
    generate_pacs(dump, exams=4, seed=14, defect_rates=DefectRates.none(), workers=1)
    _without_reports(dump)
    warehouse, models = tmp_path / "warehouse", tmp_path / "models"
    args = ["run", "--dicom", str(dump / "dicom"), "--diagnoses", str(dump / "diagnoses.csv"), "--out", str(warehouse),
            "--models", str(models)]
    for setting in [*FAST[:-1], "cluster.views=[diagnosis]"]:
        args += ["--set", setting]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("radnet run: error:")]
    assert len(errors) == 1
    assert "No view has 10 usable training rows (diagnosis: 0)" in errors[0] and errors[0].count(". ") == 0
    # Stopped before the features stage (the first fit, MissForest) and before a version folder.
    assert (warehouse / "tags").exists() and not (warehouse / "tag_features").exists()
    assert not (warehouse / "_stages" / "features.json").exists()
    assert not models.exists() or not any(models.rglob("manifest.json"))


IMAGE_FAST = ["image.max_epochs=2", "image.cae_filters=[8,8,16,16]", "image.pca_components=8"]


def test_label_applies_exactly_the_views_of_the_manifest_and_report_and_manifest_state_views_and_scope(
        spark, tmp_path, monkeypatch):
    import re

    dump, new_dump = tmp_path / "pacs", tmp_path / "new-pacs"
    generate_pacs(dump, exams=12, seed=17, defect_rates=DefectRates.none(), workers=1)
    _without_reports(dump)
    generate_pacs(new_dump, exams=4, seed=16, defect_rates=DefectRates.none(), workers=1)  # with reports
    # The default views (tags, image, diagnosis); CR, CT and MR in scope, so XA and RF files are rejects.
    settings = [*FAST[:-1], *IMAGE_FAST, "tags.embedder=pca", "text.min_word_frequency=2",
                "ingest.modalities=[CT, MR, CR]"]
    config = load_config(None, settings)
    assert config.cluster.views == ["tags", "image", "diagnosis"]
    warehouse, models = str(tmp_path / "warehouse"), str(tmp_path / "models")
    result = run(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), warehouse, config, models_root=models)
    assert not {"train_diagnosis", "embed_diagnosis"} & set(result.stages_run)

    manifest = result.pipeline.manifest()
    assert manifest["views"] == ["tags", "image"]
    assert manifest["usable_rows"]["diagnosis"] == 0 and manifest["usable_rows"]["image"] >= 10
    rejects = read_table(spark, warehouse, "rejects").where(F.col("stage") == "scope")
    by_reason = {row["reason"]: row["count"] for row in rejects.groupBy("reason").count().collect()}
    assert by_reason and set(by_reason) == {"modality_out_of_scope"}
    assert manifest["scope"] == {"modalities": ["CR", "CT", "MR"], "max_files_per_exam": None,
                                 "rejected_by_scope": sum(by_reason.values()), "rejected_by_reason": by_reason}
    tags = read_table(spark, warehouse, "tags")
    instances = tags.count()
    assert sum(manifest["view_combinations"].values()) == instances
    assert set(manifest["view_combinations"]) <= {"tags+image", "tags"}

    html = result.report.read_text(encoding="utf-8")
    assert "<th>Views used</th><td>tags, image</td>" in html
    assert (f"<th>Scope</th><td>modalities: CR, CT, MR; files per exam: no bound; files out of scope "
            f"(rejects, stage scope): {by_reason['modality_out_of_scope']} "
            f"(modality_out_of_scope {by_reason['modality_out_of_scope']})</td>") in html
    combinations = re.search(r"<th>Instances per view combination</th><td>(.*?)</td>", html).group(1)
    shown = dict(entry.rsplit(" ", 1) for entry in combinations.split(", "))
    assert {views: int(n) for views, n in shown.items()} == manifest["view_combinations"]

    # The new dump has reports, and the label config names the diagnosis view: label still applies
    # only the version's views and never embeds a diagnosis.
    def no_diagnosis(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("label embedded diagnoses, a view the pipeline version does not use")

    monkeypatch.setattr(type(get_view("diagnosis")), "transform", no_diagnosis)
    labelled = label(spark, str(result.pipeline.root), str(new_dump / "dicom"), str(new_dump / "diagnoses.csv"),
                     warehouse, config)
    assert read_table(spark, warehouse, "diagnoses").count() > 0
    new_instances = read_table(spark, warehouse, "tags").count() - instances
    assert labelled.new_labels == new_instances > 0
    labels = read_table(spark, warehouse, "labels").where(F.col("pipeline_version") == result.pipeline.version)
    assert labels.count() == instances + new_instances
