"""Cluster cards and the self-contained HTML report."""

from __future__ import annotations

import json
import re

import numpy as np

from radnet_spark.clustering.elbow import ElbowResult
from radnet_spark.evaluation.cards import cards_markdown, cluster_cards, load_cards, save_cards
from radnet_spark.evaluation.report import build_report, sample_images, write_report
from radnet_spark.tables import write_table

SECTIONS = ("summary", "elbow", "sizes", "composition", "cluster-metrics", "mosaics", "cards")


def _assert_self_contained(text: str) -> None:
    assert "data:image/png;base64," in text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, flags=re.IGNORECASE)
    assert "<script" not in text.lower() and "<link" not in text.lower()


def _card(cluster: int) -> dict:
    return {
        "cluster": cluster,
        "size": 10,
        "modality": {"CT": 7, "MR": 3},
        "bpe": {"HEAD": 10},
        "top_stems": [{"stem": "glav", "count": 4, "score": 0.5}],
    }


def test_report_is_one_self_contained_file_with_every_section(tmp_path):
    rng = np.random.default_rng(0)
    path = write_report(
        tmp_path / "report.html",
        elbow=ElbowResult(ks=[2, 3, 4, 5], wcss=[100.0, 40.0, 30.0, 25.0], chosen_k=3),
        sizes={0: 10, 1: 10},
        compositions={
            "Modality": {0: {"CT": 7, "MR": 3}, 1: {"CR": 10}},
            "BPE": {0: {"HEAD": 10}, 1: {"CHEST": 10}},
        },
        metrics={
            "hs_modality": 0.8,
            "nmi_modality": 0.7,
            "hs_bpe": 0.6,
            "nmi_bpe": 0.5,
            "score": 0.64,
            "per_cluster": {"image_distance": {0: 0.3, 1: 0.2}},
        },
        mosaics={0: [rng.integers(0, 255, (32, 32), dtype=np.uint8) for _ in range(5)]},
        cards=[_card(0), _card(1)],
        title="Test <report>",
    )
    text = path.read_text(encoding="utf-8")
    _assert_self_contained(text)
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert "Test &lt;report&gt;" in text and "glav" in text


def test_cards_round_trip_and_render_markdown(tmp_path):
    cards = [_card(0)]
    assert load_cards(save_cards(cards, tmp_path / "cards.json")) == cards
    markdown = cards_markdown(cards)
    assert "Cluster 0" in markdown and "CT 70%" in markdown and "glav" in markdown


def _warehouse(spark, root):
    rows, images = [], []
    for i in range(12):
        cluster = i % 2
        modality, bpe = ("CT", "HEAD") if cluster == 0 else ("CR", "CHEST")
        rows.append((f"u{i}", f"e{i // 2}", "test", modality, bpe, "dicom", [0.0]))
        images.append((f"u{i}", f"e{i // 2}", bytes([i * 10]) * 64, 8))
    write_table(spark.createDataFrame(
        rows,
        "sop_instance_uid string, exam_id string, split string, modality string, bpe string, "
        "bpe_source string, features array<float>",
    ), str(root), "tag_features")
    write_table(spark.createDataFrame(
        images, "sop_instance_uid string, exam_id string, image binary, image_size int"
    ), str(root), "images")
    diagnoses = [(f"e{e}", "x", "x", ["glav", "ct"] if e % 2 == 0 else ["plu", "rtg"]) for e in range(6)]
    write_table(spark.createDataFrame(
        diagnoses, "exam_id string, diagnosis_raw string, diagnosis_clean string, stems array<string>"
    ), str(root), "diagnoses")
    emb = [(f"u{i}", f"e{i // 2}", "test", [1.0, float(i % 2)]) for i in range(12)]
    write_table(spark.createDataFrame(
        emb, "sop_instance_uid string, exam_id string, split string, embedding array<float>"
    ), str(root), "embeddings_image")
    labels = spark.createDataFrame(
        [(f"u{i}", (i // 2) % 2) for i in range(12)], "sop_instance_uid string, cluster int"
    )
    return labels


def test_cards_rank_stems_that_set_a_cluster_apart(spark, tmp_path):
    labels = _warehouse(spark, tmp_path)
    features = spark.read.parquet(f"{tmp_path}/tag_features")
    assignments = labels.join(features.select("sop_instance_uid", "exam_id"), "sop_instance_uid")
    cards = cluster_cards(assignments, features, spark.read.parquet(f"{tmp_path}/diagnoses"), top_n=2)
    by_cluster = {c["cluster"]: c for c in cards}
    assert {s["stem"] for s in by_cluster[0]["top_stems"]} == {"glav", "ct"}
    assert {s["stem"] for s in by_cluster[1]["top_stems"]} == {"plu", "rtg"}
    assert sum(by_cluster[0]["modality"].values()) == by_cluster[0]["size"] == 6


def test_mosaic_sampling_brings_at_most_the_bound_per_cluster(spark, tmp_path):
    labels = _warehouse(spark, tmp_path)
    mosaics = sample_images(labels, spark.read.parquet(f"{tmp_path}/images"), per_cluster=4)
    assert sorted(mosaics) == [0, 1]
    assert all(len(images) == 4 and images[0].shape == (8, 8) for images in mosaics.values())


def test_build_report_reads_the_warehouse_and_writes_the_sections(spark, tmp_path):
    labels = _warehouse(spark, tmp_path)
    path = build_report(
        spark,
        tmp_path,
        labels,
        out_html=tmp_path / "out" / "report.html",
        elbow=ElbowResult(ks=[2, 3, 4], wcss=[9.0, 4.0, 3.5], chosen_k=3),
    )
    text = path.read_text(encoding="utf-8")
    _assert_self_contained(text)
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert "plu" in text


def test_the_summary_shows_the_evaluation_it_is_given(spark, tmp_path):
    labels = _warehouse(spark, tmp_path)
    evaluation = {"validation": {"score": 0.123456, "nmi_bpe": 0.5}, "test": {"score": 0.654321, "nmi_bpe": 0.25}}
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(json.dumps(evaluation), encoding="utf-8")
    text = build_report(spark, tmp_path, labels, out_html=tmp_path / "r.html", evaluation=metrics_file).read_text()
    summary = text[text.index('<section id="summary">'):text.index("</section>", text.index('<section id="summary">'))]
    assert "<th>validation</th><th>test</th>" in summary
    assert "0.123" in summary and "0.654" in summary and "0.250" in summary


def test_stop_words_and_stems_common_to_every_cluster_never_set_a_cluster_apart(spark, tmp_path):
    labels = _warehouse(spark, tmp_path)
    common = ["i", "u", "bez", "uredn", "nalaz"]
    diagnoses = [(f"e{e}", (["glav", "ct"] if e % 2 == 0 else ["plu", "rtg"]) + common) for e in range(6)]
    features = spark.read.parquet(f"{tmp_path}/tag_features")
    assignments = labels.join(features.select("sop_instance_uid", "exam_id"), "sop_instance_uid")
    frame = spark.createDataFrame(diagnoses, "exam_id string, stems array<string>")
    cards = cluster_cards(assignments, features, frame, top_n=10, language="croatian")
    assert [{s["stem"] for s in card["top_stems"]} for card in cards] == [{"glav", "ct"}, {"plu", "rtg"}]


def test_a_cluster_without_reports_says_so():
    card = {"cluster": 3, "size": 5, "modality": {"US": 5}, "bpe": {}, "top_stems": [], "reports": 0}
    assert "no reports" in cards_markdown([card])
    assert "none stands out" in cards_markdown([{**card, "reports": 4}])


def test_each_stem_is_shown_with_its_most_frequent_written_word(spark):
    from radnet_spark.evaluation.cards import surface_words

    frame = spark.createDataFrame(
        [("e1", "nodules in both lungs", ["nodul", "both", "lung"]), ("e2", "lung nodule nodule lung", ["lung", "nodul"])],
        "exam_id string, diagnosis_clean string, stems array<string>",
    )
    assert surface_words(frame, {"lung", "nodul"}, "english") == {"lung": "lung", "nodul": "nodule"}


def test_the_summary_states_what_the_pipeline_decided(spark, tmp_path):
    labels = _warehouse(spark, tmp_path)
    facts = {"Views used": "tags, image", "Scope": "modalities: CT, MR; files out of scope: 3 (modality_out_of_scope 3)",
             "Instances per view combination": "tags+image 10, tags <2>"}
    text = build_report(spark, tmp_path, labels, out_html=tmp_path / "r.html", facts=facts).read_text()
    summary = text[text.index('<section id="summary">'):text.index("</section>", text.index('<section id="summary">'))]
    assert "<th>Views used</th><td>tags, image</td>" in summary
    assert "<th>Scope</th><td>modalities: CT, MR; files out of scope: 3 (modality_out_of_scope 3)</td>" in summary
    assert "<th>Instances per view combination</th><td>tags+image 10, tags &lt;2&gt;</td>" in summary
