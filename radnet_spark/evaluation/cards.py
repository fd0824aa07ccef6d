"""Cluster cards: size, Modality and BPE composition, and the diagnosis stems that set a cluster apart.

Distinguishing stems are ranked by class-based TF-IDF: each cluster is one document made of the
stems of its exams' diagnoses (an exam counts once per cluster however many of its images fell
there), ``tf = count(stem, cluster) / stems in cluster`` and
``idf = ln((1 + clusters) / (1 + clusters containing the stem)) + 1``. A stem frequent in one cluster
and rare in the rest ranks first. All counting happens in Spark; only the top stems per cluster
come to the driver.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from radnet_spark.evaluation.metrics import MISSING_LABEL, cluster_sizes, contingency_counts


def composition(
    assignments: DataFrame, labels: DataFrame, label_col: str, cluster_col: str = "cluster"
) -> dict[int, dict[str, int]]:
    """Rows per label within each cluster: cluster → label → count (null labels as ``__missing__``)."""
    joined = assignments.select("sop_instance_uid", F.col(cluster_col).alias("cluster")).join(
        labels.select("sop_instance_uid", label_col), "sop_instance_uid", "left"
    )
    counts = contingency_counts(joined, label_col)
    result: dict[int, dict[str, int]] = {}
    for row in counts.sort_values(["cluster", "count"], ascending=[True, False]).itertuples(index=False):
        result.setdefault(int(row.cluster), {})[str(row.label)] = int(row.count)
    return result


def top_stems(
    assignments: DataFrame, diagnoses: DataFrame, *, top_n: int = 10, cluster_col: str = "cluster"
) -> dict[int, list[dict[str, Any]]]:
    """The ``top_n`` stems of each cluster by class-based TF-IDF (see module docstring).

    Args:
        assignments: ``exam_id`` and ``cluster_col`` per instance.
        diagnoses: ``exam_id``, ``stems`` array<string>.
        top_n: stems kept per cluster.
        cluster_col: cluster column.

    Returns:
        cluster → list of ``{"stem", "count", "score"}``, best first.
    """
    exams = (
        assignments.where(F.col(cluster_col).isNotNull())
        .select(F.col(cluster_col).alias("cluster"), "exam_id")
        .distinct()
    )
    stems = exams.join(diagnoses.select("exam_id", "stems"), "exam_id").select(
        "cluster", F.explode("stems").alias("stem")
    )
    counts = stems.groupBy("cluster", "stem").count()
    clusters = counts.select("cluster").distinct().count()
    by_cluster = Window.partitionBy("cluster")
    by_stem = Window.partitionBy("stem")
    scored = (
        counts.withColumn("tf", F.col("count") / F.sum("count").over(by_cluster))
        .withColumn("clusters_with_stem", F.count(F.lit(1)).over(by_stem))
        .withColumn(
            "score", F.col("tf") * (F.log((1.0 + clusters) / (1.0 + F.col("clusters_with_stem"))) + 1.0)
        )
        .withColumn("rank", F.row_number().over(by_cluster.orderBy(F.desc("score"), F.asc("stem"))))
        .where(F.col("rank") <= top_n)
    )
    result: dict[int, list[dict[str, Any]]] = {}
    for row in scored.orderBy("cluster", "rank").collect():
        result.setdefault(int(row["cluster"]), []).append(
            {"stem": row["stem"], "count": int(row["count"]), "score": float(row["score"])}
        )
    return result


def cluster_cards(
    assignments: DataFrame,
    labels: DataFrame,
    diagnoses: DataFrame | None = None,
    *,
    top_n: int = 10,
    cluster_col: str = "cluster",
    modality_col: str = "modality",
    bpe_col: str = "bpe",
) -> list[dict[str, Any]]:
    """One card per cluster.

    Args:
        assignments: ``sop_instance_uid``, ``exam_id``, ``cluster_col``.
        labels: ``sop_instance_uid``, ``modality``, ``bpe`` (e.g. ``tag_features``).
        diagnoses: ``diagnoses`` table (``exam_id``, ``stems``); None to skip stems.
        top_n: distinguishing stems per card.
        cluster_col: cluster column.
        modality_col: modality column of ``labels``.
        bpe_col: BPE column of ``labels``.

    Returns:
        ``[{"cluster", "size", "modality": {label: count}, "bpe": {...}, "top_stems": [...]}]``
        sorted by cluster.
    """
    sizes = cluster_sizes(assignments, cluster_col)
    modality = composition(assignments, labels, modality_col, cluster_col)
    bpe = composition(assignments, labels, bpe_col, cluster_col)
    stems = (
        top_stems(assignments, diagnoses, top_n=top_n, cluster_col=cluster_col)
        if diagnoses is not None
        else {}
    )
    return [
        {
            "cluster": c,
            "size": n,
            "modality": modality.get(c, {}),
            "bpe": bpe.get(c, {}),
            "top_stems": stems.get(c, []),
        }
        for c, n in sizes.items()
    ]


def save_cards(cards: list[dict[str, Any]], path: str | Path) -> Path:
    """Write the cards as JSON and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cards, indent=2, ensure_ascii=False), encoding="utf-8")
    return target


def load_cards(path: str | Path) -> list[dict[str, Any]]:
    """Read cards written by :func:`save_cards`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _shares(counts: dict[str, int], limit: int = 5) -> list[tuple[str, float]]:
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:limit]
    return [("missing" if label == MISSING_LABEL else label, count / total) for label, count in ranked]


def card_markdown(card: dict[str, Any]) -> str:
    """One card as Markdown."""
    lines = [f"### Cluster {card['cluster']} — {card['size']} images", ""]
    for name in ("modality", "bpe"):
        shares = ", ".join(f"{label} {share:.0%}" for label, share in _shares(card[name]))
        lines.append(f"- **{name.upper() if name == 'bpe' else name.capitalize()}**: {shares or '—'}")
    stems = ", ".join(s["stem"] for s in card["top_stems"])
    lines.append(f"- **Distinguishing stems**: {stems or '—'}")
    return "\n".join(lines) + "\n"


def cards_markdown(cards: list[dict[str, Any]]) -> str:
    """All cards as one Markdown document."""
    return "\n".join(card_markdown(card) for card in cards)


def card_html(card: dict[str, Any]) -> str:
    """One card as an HTML snippet (no external resources; text escaped)."""
    rows = []
    for name, title in (("modality", "Modality"), ("bpe", "BPE")):
        shares = ", ".join(f"{html.escape(label)} {share:.0%}" for label, share in _shares(card[name]))
        rows.append(f"<tr><th>{title}</th><td>{shares or '&mdash;'}</td></tr>")
    stems = ", ".join(html.escape(s["stem"]) for s in card["top_stems"])
    rows.append(f"<tr><th>Stems</th><td>{stems or '&mdash;'}</td></tr>")
    return (
        f'<div class="card"><h3>Cluster {int(card["cluster"])} <small>{int(card["size"])} images</small></h3>'
        f"<table>{''.join(rows)}</table></div>"
    )


def cards_html(cards: list[dict[str, Any]]) -> str:
    """All cards as one HTML snippet."""
    return '<div class="cards">' + "".join(card_html(card) for card in cards) + "</div>"
