"""The work of each stage of ``run``: read warehouse tables, call the model's steps, write tables.

:mod:`radnet_spark.pipeline` decides which of these run (fingerprints, resuming); each function
here does one stage's work and returns what the stage ledger records.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark import artifacts as A
from radnet_spark.evaluation.compare import compare_fusions, write_comparison
from radnet_spark.evaluation.metrics import evaluate_clusters
from radnet_spark.evaluation.report import build_report
from radnet_spark.inference import arrow_batch_rows
from radnet_spark.ingest.scope import SCOPE_STAGE
from radnet_spark.labels import TRAINING_RUN, labels_rows, version_labels, write_labels
from radnet_spark.model import RadnetModel, fit_tag_features
from radnet_spark.storage import to_local_path
from radnet_spark.tables import canonical_layout, table_exists, write_table
from radnet_spark.views import ViewInputs, get_view

log = logging.getLogger(__name__)


class BeforeFeatures(ViewInputs):
    """The warehouse as the views' usable-row counts see it before the features stage has run.

    ``tag_features`` stands for what that stage will write: one row with a feature vector for every
    ``tags`` row, in the same exam-level split. So every view is counted, and a view or the whole run
    is given up, before the first fit of a run (the tag preprocessing's MissForest).
    """

    def table(self, name: str) -> DataFrame:
        if name != "tag_features":
            return super().table(name)
        tags = self.with_split(super().table("tags"))
        return tags.select("sop_instance_uid", "exam_id", "split",
                           F.array().cast("array<float>").alias("features"))


def before_features(inputs: ViewInputs) -> ViewInputs:
    """``inputs`` for counting usable rows before the features stage (see :class:`BeforeFeatures`)."""
    return BeforeFeatures(inputs.spark, inputs.warehouse, inputs.config)


def scope_record(inputs: ViewInputs) -> dict[str, Any]:
    """What was in scope: ``ingest.modalities``, ``ingest.max_files_per_exam`` and the files left out, by reason.

    Returns:
        ``modalities`` (None: every modality), ``max_files_per_exam`` (None: no bound),
        ``rejected_by_scope`` (files in ``rejects`` with stage ``scope``) and ``rejected_by_reason``.
    """
    ingest = inputs.config.ingest
    by_reason: dict[str, int] = {}
    if table_exists(inputs.warehouse, "rejects"):
        rows = inputs.table("rejects").where(F.col("stage") == SCOPE_STAGE).groupBy("reason").count().collect()
        by_reason = {row["reason"]: int(row["count"]) for row in sorted(rows, key=lambda r: r["reason"])}
    modalities = sorted({m.strip().upper() for m in ingest.modalities}) if ingest.modalities is not None else None
    return {"modalities": modalities, "max_files_per_exam": ingest.max_files_per_exam,
            "rejected_by_scope": sum(by_reason.values()), "rejected_by_reason": by_reason}


def features(inputs: ViewInputs, model: RadnetModel) -> dict[str, Any]:
    tags = inputs.table("tags")
    info = fit_tag_features(tags, inputs.config, model.pipeline)
    log.info("BodyPartExamined fill rate: %s", info["bpe_fill_rates"])
    write_table(canonical_layout(model.tag_features(tags)), inputs.warehouse, "tag_features")
    return info


def train(inputs: ViewInputs, model: RadnetModel, name: str) -> dict[str, Any]:
    return {"metrics": model.fit_view(name, inputs).info.get("metrics", {})}


def embed(inputs: ViewInputs, model: RadnetModel, name: str) -> dict[str, Any]:
    view = get_view(name)
    # Image rows carry 16 KB each: a spark-submit session without our defaults would send Spark's
    # default 10,000 rows per Arrow batch to a worker, so the batch is bounded here.
    with arrow_batch_rows(inputs.spark, inputs.config.image.inference_batch_rows):
        write_table(model.embed(name, inputs.table(view.source_table)), inputs.warehouse, view.embeddings_table)
    return {}


def instances(inputs: ViewInputs) -> DataFrame:
    return inputs.table("tag_features").select("sop_instance_uid", "exam_id", "split")


def view_embeddings(inputs: ViewInputs, views: list[str]) -> dict[str, DataFrame]:
    return {name: inputs.table(get_view(name).embeddings_table) for name in views}


def cluster(inputs: ViewInputs, model: RadnetModel) -> dict[str, Any]:
    write_table(model.fit_fusion(view_embeddings(inputs, model.views), instances(inputs)), inputs.warehouse, "fused")
    clusterer = model.fit_clusterer(inputs.table("fused"))
    assigned = model.assign(inputs.table("fused"))
    rows = labels_rows(assigned, inputs.table("tags"), model.pipeline.version, TRAINING_RUN)
    write_labels(rows, inputs.warehouse, model.pipeline.version, TRAINING_RUN)
    return {"k": clusterer.k}


def evaluate(inputs: ViewInputs, model: RadnetModel) -> dict[str, Any]:
    labels = version_labels(inputs.spark, inputs.warehouse, model.pipeline.version).join(
        instances(inputs), "sop_instance_uid"
    )
    embeddings = view_embeddings(inputs, [name for name in ("image", "diagnosis") if name in model.views])
    results: dict[str, Any] = {}
    for split in ("validation", "test"):
        found = evaluate_clusters(
            labels.where(F.col("split") == split), inputs.table("tag_features"),
            image_embeddings=embeddings.get("image"), diagnosis_embeddings=embeddings.get("diagnosis"),
        )
        results[split] = {key: value for key, value in found.items() if key != "per_cluster"}
    Path(model.pipeline.path(A.METRICS)).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    headline = {split: {k: v for k, v in found.items() if k != "sizes"} for split, found in results.items()}
    model.pipeline.update_manifest(metrics=headline)
    return {}


def compare(inputs: ViewInputs, model: RadnetModel) -> dict[str, Any]:
    """Every single view and every fusion of every view combination, like the paper's Table 7."""
    c = inputs.config.cluster
    table = compare_fusions(
        view_embeddings(inputs, model.views), inputs.table("tag_features"), c, instances=instances(inputs),
        scalings=("none", "unit_variance"),
    )
    csv_path, md_path = write_comparison(table, Path(to_local_path(inputs.warehouse)) / "evaluation")
    shutil.copyfile(md_path, model.pipeline.path("comparison.md"))
    print(md_path.read_text(encoding="utf-8"))
    return {"csv": str(csv_path), "markdown": str(md_path)}


def report_facts(inputs: ViewInputs, model: RadnetModel) -> dict[str, str]:
    """Views used (with every view's usable training rows), the scope and how many instances had which views.

    The scope is the one the run recorded in the manifest; the view combinations are added to it.
    """
    manifest = model.pipeline.manifest()
    usable = manifest.get("usable_rows", {})
    facts = {"Views used": ", ".join(model.views),
             "Usable training rows per view": ", ".join(f"{v} {n}" for v, n in usable.items()) or "—"}
    scope = manifest.get("scope") or scope_record(inputs)
    reasons = ", ".join(f"{reason} {n}" for reason, n in scope["rejected_by_reason"].items())
    facts["Scope"] = (f"modalities: {', '.join(scope['modalities']) if scope['modalities'] else 'every modality'}; "
                      f"files per exam: {scope['max_files_per_exam'] or 'no bound'}; "
                      f"files out of scope (rejects, stage scope): {scope['rejected_by_scope']}"
                      + (f" ({reasons})" if reasons else ""))
    rows = inputs.table("fused").groupBy(F.array_join("views_present", "+").alias("views")).count().collect()
    combinations = {row["views"] or "none": int(row["count"])
                    for row in sorted(rows, key=lambda r: (-r["count"], r["views"] or ""))}
    model.pipeline.update_manifest(view_combinations=combinations)
    facts["Instances per view combination"] = ", ".join(f"{views} {n}" for views, n in combinations.items())
    return facts


def report(inputs: ViewInputs, model: RadnetModel) -> dict[str, Any]:
    pipeline = model.pipeline
    out = Path(to_local_path(inputs.warehouse)) / "report" / "index.html"
    build_report(
        inputs.spark, to_local_path(inputs.warehouse), version_labels(inputs.spark, inputs.warehouse, pipeline.version),
        out_html=out, elbow=pipeline.path(A.ELBOW) if pipeline.has(A.ELBOW) else None,
        images_per_cluster=inputs.config.cluster.images_per_cluster,
        evaluation=pipeline.path(A.METRICS) if pipeline.has(A.METRICS) else None,
        language=inputs.config.ingest.stem_language, facts=report_facts(inputs, model),
        title=f"radnet-spark clusters — {pipeline.name}/{pipeline.version}",
    )
    return {"report": str(out)}
