"""Cluster cards: size, Modality and BPE composition, and the diagnosis stems that set a cluster apart.

Distinguishing stems contrast a cluster with the rest by the log-odds ratio with an informative
Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin' Words"): each cluster is one document made
of the stems of its exams' diagnoses (an exam counts once per cluster however many of its images
fell there); a stem's z-score compares its odds inside the cluster with its odds in every other
cluster, shrunk towards its share in the whole archive, so a stem common to every cluster ("normal",
"without") scores near zero and a rare stem needs more than one mention to rank. Stop-words of the
stemming language (:mod:`radnet_spark.text.stopwords`), digits and one-letter tokens never rank.
All counting happens in Spark; only the top stems per cluster come to the driver.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from radnet_spark.evaluation.metrics import MISSING_LABEL, cluster_sizes, contingency_counts
from radnet_spark.text.stemming import get_stemmer
from radnet_spark.text.stopwords import stop_stems


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


# Total pseudo-count of the prior, spread over stems by their share in the whole archive.
PRIOR_COUNT = 500.0


def top_stems(
    assignments: DataFrame,
    diagnoses: DataFrame,
    *,
    top_n: int = 10,
    cluster_col: str = "cluster",
    language: str = "croatian",
) -> dict[int, list[dict[str, Any]]]:
    """The ``top_n`` stems that set each cluster apart, by log-odds z-score (see module docstring).

    Args:
        assignments: ``exam_id`` and ``cluster_col`` per instance.
        diagnoses: ``exam_id``, ``stems`` array<string>.
        top_n: stems kept per cluster.
        cluster_col: cluster column.
        language: stemming language of the stems; its stop-words are left out.

    Returns:
        cluster → list of ``{"stem", "count", "score"}`` with a positive score, best first
        (:func:`cluster_cards` adds each stem's most frequent written ``word``).
    """
    exams = (
        assignments.where(F.col(cluster_col).isNotNull())
        .select(F.col(cluster_col).alias("cluster"), "exam_id")
        .distinct()
    )
    stop = sorted(stop_stems(language))
    stems = (
        exams.join(diagnoses.select("exam_id", "stems"), "exam_id")
        .select("cluster", F.explode("stems").alias("stem"))
        .where((F.length("stem") > 1) & ~F.col("stem").rlike(r"^[0-9]+$"))
    )
    if stop:
        stems = stems.where(~F.col("stem").isin(stop))
    counts = stems.groupBy("cluster", "stem").agg(F.count(F.lit(1)).cast("double").alias("in_cluster"))
    everything = Window.partitionBy()
    scored = (
        counts.withColumn("cluster_total", F.sum("in_cluster").over(Window.partitionBy("cluster")))
        .withColumn("stem_total", F.sum("in_cluster").over(Window.partitionBy("stem")))
        .withColumn("total", F.sum("in_cluster").over(everything))
        .withColumn("prior", F.lit(PRIOR_COUNT) * F.col("stem_total") / F.col("total"))
        .withColumn("in_rest", F.col("stem_total") - F.col("in_cluster"))
        .withColumn("rest_total", F.col("total") - F.col("cluster_total"))
        .withColumn("delta", _log_odds("in_cluster", "cluster_total") - _log_odds("in_rest", "rest_total"))
        .withColumn("score", F.col("delta") / F.sqrt(1.0 / (F.col("in_cluster") + F.col("prior"))
                                                     + 1.0 / (F.col("in_rest") + F.col("prior"))))
        .where(F.col("score") > 0)
        .withColumn("rank", F.row_number().over(Window.partitionBy("cluster").orderBy(F.desc("score"), F.asc("stem"))))
        .where(F.col("rank") <= top_n)
    )
    result: dict[int, list[dict[str, Any]]] = {}
    for row in scored.orderBy("cluster", "rank").collect():
        result.setdefault(int(row["cluster"]), []).append(
            {"stem": row["stem"], "count": int(row["in_cluster"]), "score": float(row["score"])}
        )
    return result


def _log_odds(count: str, total: str) -> Column:
    """``ln((y + a) / (n + A - y - a))`` of a stem with prior ``a`` in a part of ``n`` stems."""
    hits = F.col(count) + F.col("prior")
    return F.log(hits / (F.col(total) + F.lit(PRIOR_COUNT) - hits))


def surface_words(diagnoses: DataFrame, stems: set[str], language: str) -> dict[str, str]:
    """The most frequent written word of each stem in the diagnoses' cleaned text (what a reader knows).

    Only words that begin with one of ``stems`` are counted in Spark (stemmers strip endings, so a
    stem is a prefix of its words), then stemmed on the driver: a few hundred rows at most.
    """
    if not stems or "diagnosis_clean" not in diagnoses.columns:
        return {}
    prefix = "^(" + "|".join(re.escape(stem) for stem in sorted(stems)) + ")"
    words = (
        diagnoses.select(F.explode(F.split(F.coalesce("diagnosis_clean", F.lit("")), " ")).alias("word"))
        .where(F.col("word").rlike(prefix))
        .groupBy("word").count()
        .collect()
    )
    stem = get_stemmer(language)
    best: dict[str, tuple[int, str]] = {}
    for row in words:
        root = stem(row["word"])
        if root in stems and (row["count"], row["word"]) > best.get(root, (0, "")):
            best[root] = (int(row["count"]), row["word"])
    return {root: word for root, (_, word) in best.items()}


def exams_with_reports(assignments: DataFrame, diagnoses: DataFrame, cluster_col: str = "cluster") -> dict[int, int]:
    """Exams per cluster that have a diagnosis with at least one stem."""
    exams = assignments.where(F.col(cluster_col).isNotNull()).select(F.col(cluster_col).alias("cluster"), "exam_id")
    reported = diagnoses.where(F.size("stems") > 0).select("exam_id").distinct()
    rows = exams.distinct().join(reported, "exam_id").groupBy("cluster").count().collect()
    return {int(row["cluster"]): int(row["count"]) for row in rows}


def cluster_cards(
    assignments: DataFrame,
    labels: DataFrame,
    diagnoses: DataFrame | None = None,
    *,
    top_n: int = 10,
    cluster_col: str = "cluster",
    modality_col: str = "modality",
    bpe_col: str = "bpe",
    language: str = "croatian",
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
        language: stemming language of the diagnoses (its stop-words never rank).

    Returns:
        ``[{"cluster", "size", "modality": {label: count}, "bpe": {...}, "top_stems": [...],
        "reports": exams with a report}]`` sorted by cluster.
    """
    sizes = cluster_sizes(assignments, cluster_col)
    modality = composition(assignments, labels, modality_col, cluster_col)
    bpe = composition(assignments, labels, bpe_col, cluster_col)
    stems = (
        top_stems(assignments, diagnoses, top_n=top_n, cluster_col=cluster_col, language=language)
        if diagnoses is not None
        else {}
    )
    reports = exams_with_reports(assignments, diagnoses, cluster_col) if diagnoses is not None else {}
    if diagnoses is not None:
        words = surface_words(diagnoses, {s["stem"] for top in stems.values() for s in top}, language)
        for top in stems.values():
            for entry in top:
                entry["word"] = words.get(entry["stem"])
    return [
        {
            "cluster": c,
            "size": n,
            "modality": modality.get(c, {}),
            "bpe": bpe.get(c, {}),
            "top_stems": stems.get(c, []),
            "reports": reports.get(c, 0),
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


def _stems_text(card: dict[str, Any]) -> str:
    stems = ", ".join(f"{s['stem']} ({s['word']})" if s.get("word") and s["word"] != s["stem"] else s["stem"]
                      for s in card["top_stems"])
    if stems:
        return stems
    return "no reports" if not card.get("reports") else "none stands out"


def card_markdown(card: dict[str, Any]) -> str:
    """One card as Markdown."""
    lines = [f"### Cluster {card['cluster']} — {card['size']} images", ""]
    for name in ("modality", "bpe"):
        shares = ", ".join(f"{label} {share:.0%}" for label, share in _shares(card[name]))
        lines.append(f"- **{name.upper() if name == 'bpe' else name.capitalize()}**: {shares or '—'}")
    lines.append(f"- **Distinguishing stems**: {_stems_text(card)}")
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
    rows.append(f"<tr><th>Stems</th><td>{html.escape(_stems_text(card))}</td></tr>")
    return (
        f'<div class="card"><h3>Cluster {int(card["cluster"])} <small>{int(card["size"])} images</small></h3>'
        f"<table>{''.join(rows)}</table></div>"
    )


def cards_html(cards: list[dict[str, Any]]) -> str:
    """All cards as one HTML snippet."""
    return '<div class="cards">' + "".join(card_html(card) for card in cards) + "</div>"
