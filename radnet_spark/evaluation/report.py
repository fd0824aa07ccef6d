"""One self-contained HTML report of a clustering: plots as inline PNG, no external CSS, JS or images.

Sections (each an ``<section id=...>``): ``summary`` (headline metrics), ``elbow``, ``sizes``,
``composition`` (Modality and BPE per cluster), ``cluster-metrics`` (per-cluster purity and
in-cluster cosine distances), ``mosaics`` (sample images per cluster) and ``cards``.

:func:`write_report` renders from plain Python values; :func:`build_report` computes those values
from the warehouse tables with Spark, bringing only aggregates and at most ``images_per_cluster``
images per cluster to the driver.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from radnet_spark.clustering.elbow import ElbowResult, plot_elbow
from radnet_spark.evaluation.cards import cards_html, cluster_cards
from radnet_spark.evaluation.metrics import MISSING_LABEL, evaluate_clusters

log = logging.getLogger(__name__)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px}
body{color:#222}
h1{margin-bottom:.2em} section{margin:2em 0} img{max-width:100%}
table.metrics td,table.metrics th{padding:.2em .8em;text-align:right;border-bottom:1px solid #ddd}
.mosaics{display:flex;flex-wrap:wrap;gap:1em} .mosaic{text-align:center;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em;width:320px;font-size:.85em}
.card h3{margin:.1em 0 .4em} .card th{text-align:left;vertical-align:top;padding-right:.5em}
"""


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on workers, CI or Databricks drivers
    import matplotlib.pyplot as plt

    return plt


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{_png_data_uri(png)}" alt="{html.escape(alt)}">'


def sizes_png(sizes: dict[int, int]) -> bytes:
    """Bar chart of images per cluster."""
    plt = _pyplot()
    clusters = sorted(sizes)
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(clusters) + 2), 3.2))
    ax.bar([str(c) for c in clusters], [sizes[c] for c in clusters], color="#4c72b0")
    ax.set_xlabel("cluster")
    ax.set_ylabel("images")
    ax.set_title("Cluster sizes")
    ax.tick_params(axis="x", labelsize=7, rotation=90)
    return _figure_png(fig)


def composition_png(counts: dict[int, dict[str, int]], name: str, max_labels: int = 12) -> bytes:
    """Stacked bars of label shares per cluster.

    Labels beyond the ``max_labels`` most common merge into 'other'.
    """
    plt = _pyplot()
    clusters = sorted(counts)
    totals: dict[str, int] = {}
    for per_label in counts.values():
        for label, count in per_label.items():
            totals[label] = totals.get(label, 0) + count
    kept = [label for label, _ in sorted(totals.items(), key=lambda item: -item[1])[:max_labels]]
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(clusters) + 3), 3.6))
    colours = plt.get_cmap("tab20").colors
    bottom = np.zeros(len(clusters))
    names = [str(c) for c in clusters]
    cluster_totals = np.array([max(sum(counts[c].values()), 1) for c in clusters], dtype=float)
    for index, label in enumerate([*kept, "other"]):
        if label == "other":
            values = np.array(
                [sum(v for k, v in counts[c].items() if k not in kept) for c in clusters], float
            )
            if not values.any():
                continue
        else:
            values = np.array([counts[c].get(label, 0) for c in clusters], dtype=float)
        shares = values / cluster_totals
        ax.bar(
            names,
            shares,
            bottom=bottom,
            label="missing" if label == MISSING_LABEL else label,
            color=colours[index % len(colours)] if label != "other" else "#bbbbbb",
        )
        bottom += shares
    ax.set_ylim(0, 1)
    ax.set_xlabel("cluster")
    ax.set_ylabel("share of images")
    ax.set_title(f"{name} composition per cluster")
    ax.tick_params(axis="x", labelsize=7, rotation=90)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return _figure_png(fig)


def cluster_metrics_png(per_cluster: dict[str, dict[int, float]]) -> bytes:
    """One bar panel per per-cluster metric (purity, in-cluster cosine distances)."""
    plt = _pyplot()
    names = [name for name, values in per_cluster.items() if values]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        values = per_cluster[name]
        clusters = sorted(values)
        ax.bar([str(c) for c in clusters], [values[c] for c in clusters], color="#55a868")
        ax.set_title(name.replace("_distance", " in-cluster cosine distance"), fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=90)
    fig.tight_layout()
    return _figure_png(fig)


def mosaic_png(images: list[np.ndarray], columns: int = 4, tile: int = 64) -> bytes:
    """Grey images tiled into one PNG (each resized to ``tile``² on a black canvas)."""
    from PIL import Image

    rows = max(1, -(-len(images) // columns))
    canvas = Image.new("L", (columns * tile, rows * tile))
    for index, pixels in enumerate(images):
        picture = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).resize((tile, tile), Image.BILINEAR)
        canvas.paste(picture, ((index % columns) * tile, (index // columns) * tile))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def purity(counts: dict[int, dict[str, int]]) -> dict[int, float]:
    """Share of each cluster's most common label."""
    return {c: max(v.values()) / sum(v.values()) for c, v in counts.items() if v and sum(v.values())}


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


HEADLINE = [
    ("hs_modality", "HS Modality"),
    ("nmi_modality", "NMI Modality"),
    ("hs_bpe", "HS BPE"),
    ("nmi_bpe", "NMI BPE"),
    ("score", "Score (harmonic mean)"),
    ("image_distance", "Image cosine distance (mean over clusters)"),
    ("image_distance_weighted", "Image cosine distance (size-weighted)"),
    ("diagnosis_distance", "Diagnosis cosine distance (mean over clusters)"),
    ("diagnosis_distance_weighted", "Diagnosis cosine distance (size-weighted)"),
]


def write_report(
    out_html: str | Path,
    *,
    elbow: ElbowResult | None,
    sizes: dict[int, int],
    compositions: dict[str, dict[int, dict[str, int]]],
    metrics: dict[str, Any] | None,
    mosaics: dict[int, list[np.ndarray]],
    cards: list[dict[str, Any]],
    title: str = "radnet-spark clusters",
    evaluation: dict[str, dict[str, Any]] | None = None,
    facts: dict[str, str] | None = None,
) -> Path:
    """Render the report as one HTML file with every picture inline.

    Args:
        out_html: file to write (parent folders created).
        elbow: the k sweep, or None when k was fixed.
        sizes: cluster → images.
        compositions: label name (e.g. ``Modality``, ``BPE``) → cluster → label → count.
        metrics: :func:`~radnet_spark.evaluation.metrics.evaluate_clusters` output, or None.
        mosaics: cluster → 8-bit grey images (2-D uint8 arrays).
        cards: :func:`~radnet_spark.evaluation.cards.cluster_cards` output.
        title: page title.
        evaluation: split → headline metrics (the pipeline's ``metrics.json``); when given, the
            summary shows these, the figures ``radnet run`` printed, instead of ``metrics``.
        facts: what the pipeline decided (views used, rows per view combination, scope), shown
            under the summary.

    Returns:
        The written path.
    """
    metrics = metrics or {}
    parts = [
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>{len(sizes)} clusters, {sum(sizes.values())} images. "
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.</p>",
    ]
    if evaluation:
        splits = list(evaluation)
        header = "<tr><th></th>" + "".join(f"<th>{html.escape(split)}</th>" for split in splits) + "</tr>"
        rows = header + "".join(
            f"<tr><th>{label}</th>" + "".join(f"<td>{_format(evaluation[s].get(key))}</td>" for s in splits) + "</tr>"
            for key, label in HEADLINE
            if any(key in evaluation[s] for s in splits)
        )
    else:
        rows = "".join(
            f"<tr><th>{label}</th><td>{_format(metrics.get(key))}</td></tr>"
            for key, label in HEADLINE
            if key in metrics
        )
    fact_rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>" for name, value in (facts or {}).items()
    )
    parts.append(
        '<section id="summary"><h2>Summary</h2>'
        f'<table class="metrics">{rows or "<tr><td>no metrics</td></tr>"}</table>'
        + (f'<table class="facts">{fact_rows}</table>' if fact_rows else "")
        + "</section>"
    )
    if elbow is not None:
        note = "" if elbow.knee_found else " (no knee found; fallback rule)"
        parts.append(
            f'<section id="elbow"><h2>Elbow</h2><p>Chosen k = {elbow.chosen_k}{note} (rule: {elbow.rule}'
            + (f"; the silhouette's best other k: {elbow.runner_up}" if elbow.runner_up else "") + ").</p>"
            f"{_img(_figure_png(plot_elbow(elbow)), 'elbow curve')}</section>"
        )
    if sizes:
        parts.append(
            f'<section id="sizes"><h2>Cluster sizes</h2>{_img(sizes_png(sizes), "cluster sizes")}</section>'
        )
    if compositions:
        images = "".join(
            _img(composition_png(counts, name), f"{name} composition")
            for name, counts in compositions.items()
            if counts
        )
        parts.append(f'<section id="composition"><h2>Composition</h2>{images}</section>')
    per_cluster = {f"{name} purity": purity(counts) for name, counts in compositions.items()}
    per_cluster.update(metrics.get("per_cluster", {}))
    if any(per_cluster.values()):
        parts.append(
            '<section id="cluster-metrics"><h2>Per-cluster metrics</h2>'
            f"{_img(cluster_metrics_png(per_cluster), 'per-cluster metrics')}</section>"
        )
    tiles = "".join(
        f'<div class="mosaic">{_img(mosaic_png(images), f"cluster {c} samples")}<br>cluster {c}</div>'
        for c, images in sorted(mosaics.items())
        if images
    )
    parts.append(
        '<section id="mosaics"><h2>Sample images</h2>'
        f'<div class="mosaics">{tiles or "no images"}</div></section>'
    )
    parts.append(f'<section id="cards"><h2>Cluster cards</h2>{cards_html(cards)}</section>')
    parts.append("</body></html>")
    target = Path(out_html)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(parts), encoding="utf-8")
    return target


def sample_images(
    assignments: DataFrame,
    images: DataFrame,
    *,
    per_cluster: int = 16,
    seed: int = 42,
    cluster_col: str = "cluster",
) -> dict[int, list[np.ndarray]]:
    """At most ``per_cluster`` images per cluster, picked in Spark by a seeded hash order.

    The picking ranks keys only; the image bytes of the few picked rows (k × per_cluster) are joined
    afterwards, so no image crosses a shuffle and only the picked rows reach the driver.
    """
    picked = (
        assignments.where(F.col(cluster_col).isNotNull())
        .select("sop_instance_uid", F.col(cluster_col).alias("cluster"))
        .withColumn(
            "_rank",
            F.row_number().over(
                Window.partitionBy("cluster").orderBy(F.xxhash64("sop_instance_uid", F.lit(seed)), "sop_instance_uid")
            ),
        )
        .where(F.col("_rank") <= per_cluster)
        .select("sop_instance_uid", "cluster")
    )
    ranked = images.select("sop_instance_uid", "image", "image_size").join(
        F.broadcast(picked), "sop_instance_uid"
    ).select("cluster", "image", "image_size")
    result: dict[int, list[np.ndarray]] = {}
    for row in ranked.collect():
        size = int(row["image_size"])
        pixels = np.frombuffer(bytes(row["image"]), dtype=np.uint8)
        if pixels.size == size * size:
            result.setdefault(int(row["cluster"]), []).append(pixels.reshape(size, size))
    return result


def _read_table(spark: SparkSession, warehouse: str | Path, name: str) -> DataFrame | None:
    from radnet_spark.tables import read_table, table_exists

    # Committed rows only (docs/tables.md): never the debris of a killed ingest or stage.
    if not table_exists(str(warehouse), name):
        log.info("Table %s not found under %s; its report parts are skipped.", name, warehouse)
        return None
    return read_table(spark, str(warehouse), name)


def build_report(
    spark: SparkSession,
    warehouse: str | Path,
    labels_df: DataFrame,
    *,
    out_html: str | Path,
    elbow: ElbowResult | str | Path | None = None,
    images_per_cluster: int = 16,
    top_n: int = 10,
    title: str = "radnet-spark clusters",
    cluster_col: str = "cluster",
    seed: int = 42,
    evaluation: dict[str, dict[str, Any]] | str | Path | None = None,
    language: str = "croatian",
    facts: dict[str, str] | None = None,
) -> Path:
    """Compute the report's inputs from the warehouse and write it.

    Args:
        spark: the session.
        warehouse: folder holding the tables (``tag_features``, ``images``, ``diagnoses``,
            ``embeddings_image``, ``embeddings_diagnosis``; missing ones are skipped).
        labels_df: cluster assignments: ``sop_instance_uid`` and ``cluster_col`` (the ``labels``
            table or ``model.assign`` output).
        out_html: report file.
        elbow: an :class:`ElbowResult`, the path of its JSON, or None.
        images_per_cluster: mosaic size bound per cluster.
        top_n: stems per cluster card.
        title: page title.
        cluster_col: cluster column of ``labels_df``.
        seed: image sampling seed.
        evaluation: split → headline metrics, or the path of the ``metrics.json`` holding them; the
            summary then shows the evaluation as written rather than figures over every split.
        language: stemming language of the diagnoses; its stop-words stay off the cluster cards.
        facts: what the pipeline decided (views used, scope …), shown under the summary.

    Returns:
        The written path.
    """
    if isinstance(evaluation, (str, Path)):
        evaluation = json.loads(Path(evaluation).read_text(encoding="utf-8"))
    tag_features = _read_table(spark, warehouse, "tag_features")
    if tag_features is None:
        raise ValueError(f"The report needs the tag_features table under {warehouse} for Modality and BPE.")
    assignments = labels_df.select("sop_instance_uid", F.col(cluster_col).alias("cluster"))
    assignments = assignments.join(
        tag_features.select("sop_instance_uid", "exam_id"), "sop_instance_uid", "left"
    )
    assignments = assignments.cache()
    labels = tag_features.select("sop_instance_uid", "modality", "bpe")
    metrics = evaluate_clusters(
        assignments,
        labels,
        image_embeddings=_read_table(spark, warehouse, "embeddings_image"),
        diagnosis_embeddings=_read_table(spark, warehouse, "embeddings_diagnosis"),
    )
    cards = cluster_cards(assignments, labels, _read_table(spark, warehouse, "diagnoses"), top_n=top_n,
                          language=language)
    images = _read_table(spark, warehouse, "images")
    mosaics = (
        sample_images(assignments, images, per_cluster=images_per_cluster, seed=seed)
        if images is not None
        else {}
    )
    if isinstance(elbow, (str, Path)):
        elbow = ElbowResult.load(elbow)
    compositions = {
        "Modality": {c["cluster"]: c["modality"] for c in cards},
        "BPE": {c["cluster"]: c["bpe"] for c in cards},
    }
    path = write_report(
        out_html,
        elbow=elbow,
        sizes=metrics["sizes"],
        compositions=compositions,
        metrics=metrics,
        mosaics=mosaics,
        cards=cards,
        title=title,
        evaluation=evaluation,
        facts=facts,
    )
    assignments.unpersist()
    return path
