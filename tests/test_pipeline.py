"""`radnet run` and `radnet label` end to end on a small generated dump, with fast settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radnet_spark import stage_work
from radnet_spark.cli import main
from radnet_spark.config import load_config
from radnet_spark.pipeline import label, run
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import read_table

FAST = [
    "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.ae_max_epochs=3",
    "image.max_epochs=2", "image.cae_filters=[8,8,16,16]", "image.pca_components=16",
    "text.epochs=5", "text.vector_size=16", "text.min_word_frequency=2",
    "cluster.k_min=2", "cluster.k_max=8", "cluster.k_step=1",
]


@pytest.fixture(scope="module")
def fast_config():
    return load_config(None, FAST)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory, fast_config):
    """A first run killed in its evaluate stage, then resumed: returns (dump, warehouse, models, result)."""
    root = tmp_path_factory.mktemp("pipeline")
    dump = root / "pacs"
    generate_pacs(dump, exams=24, seed=5, defect_rates=DefectRates.none(), workers=1)
    warehouse, models = str(root / "warehouse"), str(root / "models")

    original = stage_work.evaluate

    def killed(inputs, model):  # noqa: ANN001, ANN202
        raise RuntimeError("killed during evaluate")

    stage_work.evaluate = killed
    try:
        with pytest.raises(RuntimeError, match="killed"):
            run(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), warehouse, fast_config, models_root=models)
    finally:
        stage_work.evaluate = original
    result = run(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), warehouse, fast_config, models_root=models)
    return dump, warehouse, models, result


def _labels(spark, warehouse: str, version: str) -> dict[str, int]:
    rows = read_table(spark, warehouse, "labels").where(f"pipeline_version = '{version}'").collect()
    return {r["sop_instance_uid"]: r["cluster"] for r in rows}


def test_a_killed_run_resumes_at_the_stage_it_stopped_in(trained):
    _, _, models, result = trained
    assert result.stages_run == ["evaluate", "report"]
    assert "cluster" in result.stages_skipped and "features" in result.stages_skipped
    versions = list((Path(models) / "default").iterdir())
    assert versions == [result.pipeline.root]


def test_run_labels_every_instance_and_writes_a_report(spark, trained):
    _, warehouse, _, result = trained
    tags = {r["sop_instance_uid"] for r in read_table(spark, warehouse, "tags").select("sop_instance_uid").collect()}
    labels = _labels(spark, warehouse, result.pipeline.version)
    assert set(labels) == tags
    assert len(set(labels.values())) == result.k >= 2
    html = result.report.read_text(encoding="utf-8")
    assert "data:image/png;base64" in html
    assert result.metrics["validation"]["score"] is not None


def test_cluster_cards_of_a_generated_dump_show_no_stop_word(trained):
    import re

    from radnet_spark.text.stopwords import stop_stems

    html = trained[3].report.read_text(encoding="utf-8")
    cells = re.findall(r"<th>Stems</th><td>(.*?)</td>", html)
    shown = {entry.strip().split(" (")[0] for cell in cells for entry in cell.split(",")}
    assert shown - {"no reports", "none stands out"}
    assert not shown & stop_stems("croatian")


def test_pipeline_manifest_lists_every_fitted_step(trained):
    _, _, _, result = trained
    manifest = result.pipeline.manifest()
    assert manifest["complete"] is True
    for part in ("tags/preprocessing", "tags/embedder", "image/embedder", "diagnosis/embedder", "fusion", "kmeans"):
        assert part in manifest["artifacts"], part
        assert (result.pipeline.root / part).exists()
    assert manifest["bpe_rules_version"]
    assert manifest["libraries"]["pyspark"].startswith("4.")


def test_a_complete_run_is_skipped_entirely(spark, trained, fast_config):
    dump, warehouse, models, result = trained
    again = run(spark, None, None, warehouse, fast_config, models_root=models)
    assert again.stages_run == []
    assert again.pipeline.root == result.pipeline.root


def test_models_list_shows_the_version(trained, capsys):
    _, _, models, result = trained
    assert main(["models", "list", "--models", models]) == 0
    out = capsys.readouterr().out
    assert result.pipeline.version in out and "complete" in out
    assert main(["models", "show", str(result.pipeline.root)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == result.pipeline.version


def test_label_appends_new_instances_idempotently_without_changing_old_labels(spark, trained, tmp_path):
    dump, warehouse, _, result = trained
    version = result.pipeline.version
    before = _labels(spark, warehouse, version)
    new_dump = tmp_path / "new"
    generate_pacs(new_dump, exams=3, seed=77, defect_rates=DefectRates.none(), workers=1)

    first = label(spark, str(result.pipeline.root), str(new_dump / "dicom"), str(new_dump / "diagnoses.csv"), warehouse)
    after = _labels(spark, warehouse, version)
    assert first.new_labels == len(after) - len(before) > 0
    assert {uid: after[uid] for uid in before} == before
    assert first.drift and all(0 <= row["share_new"] <= 1 for row in first.drift)

    second = label(spark, str(result.pipeline.root), str(new_dump / "dicom"), str(new_dump / "diagnoses.csv"), warehouse)
    assert second.new_labels == 0
    assert _labels(spark, warehouse, version) == after


def test_label_refuses_an_unfinished_pipeline(spark, tmp_path):
    broken = tmp_path / "models" / "x" / "v1"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text(json.dumps({"complete": False}))
    code = main(["label", "--pipeline", str(broken), "--dicom", str(tmp_path), "--out", str(tmp_path / "wh")])
    assert code == 2



def test_report_and_manifest_state_the_views_the_scope_and_the_view_combinations(spark, trained):
    import re

    _, warehouse, _, result = trained
    manifest = result.pipeline.manifest()
    assert manifest["views"] == ["tags", "image", "diagnosis"]
    assert all(manifest["usable_rows"][view] >= 10 for view in manifest["views"])
    assert manifest["scope"] == {"modalities": None, "max_files_per_exam": None, "rejected_by_scope": 0,
                                 "rejected_by_reason": {}}
    from radnet_spark.labels import TRAINING_RUN, version_labels

    # Instances of the training run (the label test may have added others to the warehouse).
    instances = version_labels(spark, warehouse, result.pipeline.version).where(f"label_run_id = '{TRAINING_RUN}'")
    assert sum(manifest["view_combinations"].values()) == instances.count()
    html = result.report.read_text(encoding="utf-8")
    assert "<th>Views used</th><td>tags, image, diagnosis</td>" in html
    assert ("<th>Scope</th><td>modalities: every modality; files per exam: no bound; "
            "files out of scope (rejects, stage scope): 0</td>") in html
    combinations = re.search(r"<th>Instances per view combination</th><td>(.*?)</td>", html).group(1)
    shown = {views: int(n) for views, n in (entry.rsplit(" ", 1) for entry in combinations.split(", "))}
    assert shown == manifest["view_combinations"] and "tags+image+diagnosis" in shown
