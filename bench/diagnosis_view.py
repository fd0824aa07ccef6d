"""Diagnosis view against plain gensim and scikit-learn on the same stems of the same exams.

For each language (Croatian ``hr``, English ``en``) the script

1. makes the narrative diagnoses of a generated dump with their ground truth: by default the exact
   per-exam draws of :func:`radnet_spark.synth.generate_pacs` (same seed, same exams, same texts)
   without writing the DICOM files, or the ``diagnoses.csv``/``ground_truth.csv`` of a dump given
   with ``--dump``;
2. builds the ``diagnoses`` table with the project's ingest code (scrub, clean, stem) in Spark and
   splits it by exam like the pipeline;
3. fits and applies the diagnosis view (``DiagnosisView.fit``/``transform``) in several settings
   (``--inference-variants`` adds longer and faster doc2vec inference);
4. computes references from the table's ``stems`` column WITHOUT radnet_spark's text code: plain
   gensim ``Doc2Vec(dm=0, vector_size=100, min_count=5, epochs=50)`` trained on the training
   exams' stems (trained vectors ``model.dv``; and ``model.infer_vector`` for every exam), the same
   model trained on every exam (the transductive reading of "trained vectors"), scikit-learn
   TF-IDF, and TF-IDF + TruncatedSVD(100);
5. scores every method the way the pipeline uses it: k-means (scikit-learn, k = number of
   ground-truth groups, ``--repeats`` seeds) fitted on the training exams' vectors, NMI against the
   ground truth on the training exams and on the held-out (validation + test) exams, which are
   assigned to the training centres. Labels: modality × body part (``group``) and body part.
   Also the mean pairwise cosine of all vectors and the mean in-cluster cosine distance.

Run (2 shared cores: a few minutes per language)::

    .venv/bin/python bench/diagnosis_view.py --exams 3000 --languages hr en
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

SALT = "bench-diagnosis-view"
STEMMERS = {"hr": "croatian", "en": "english"}


def generated_diagnoses(exams: int, seed: int, language: str, out: Path) -> tuple[Path, dict[str, tuple[str, str]]]:
    """Write ``diagnoses.csv`` as ``generate_pacs`` would for these exams, without the DICOM files.

    Returns:
        The CSV path and ``accession -> (modality, body part)`` of every exam.
    """
    from radnet_spark.synth import tags as tg
    from radnet_spark.synth import vocabulary as voc
    from radnet_spark.synth.diagnoses import diagnosis_text
    from radnet_spark.synth.writer import _weighted  # the generator's own draw, so exams match

    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, tuple[str, str]] = {}
    path = out / "diagnoses.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["AccessionNumber", "diagnosis"])
        for e in range(exams):
            # The first draws of radnet_spark.synth.writer._generate_exam, in the same order.
            rng = np.random.default_rng([seed, e])
            modality = _weighted(rng, voc.MODALITY_WEIGHTS)
            part = _weighted(rng, voc.MODALITY_BODY_PARTS[modality])
            patient_index = int(np.random.default_rng([seed, 99, e]).integers(0, max(1, int(exams * 0.75))))
            ctx = tg.make_exam_context(seed, e, modality, part, tg.make_patient(seed, patient_index), rng)
            text = diagnosis_text(part, modality, language, np.random.default_rng([seed, e, 5]),
                                  ctx.patient.patient_id, ctx.study_date)
            truth[ctx.accession] = (modality, part)
            if text is not None:
                writer.writerow([ctx.accession, text])
    return path, truth


def dump_truth(dump: Path) -> dict[str, tuple[str, str]]:
    """``accession -> (modality, body part)`` from a generated dump's ``ground_truth.csv``."""
    truth: dict[str, tuple[str, str]] = {}
    with open(dump / "ground_truth.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["modality"] and row["body_part"]:
                truth.setdefault(row["accession_number"], (row["modality"], row["body_part"]))
    return truth


def score(vectors: np.ndarray, train: np.ndarray, labels: dict[str, np.ndarray], repeats: int, k: int) -> dict:
    """NMI of k-means fitted on the training rows (train, held-out), mean cosine and in-cluster distance."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    x = np.asarray(vectors, dtype=np.float64)
    result: dict[str, float] = {}
    sums: dict[str, list[float]] = {}
    distances = []
    for repeat in range(repeats):
        km = KMeans(n_clusters=k, n_init=4, random_state=repeat).fit(x[train])
        assigned = km.predict(x)
        for name, truth in labels.items():
            sums.setdefault(f"{name}_train", []).append(normalized_mutual_info_score(truth[train], assigned[train]))
            sums.setdefault(f"{name}_heldout", []).append(
                normalized_mutual_info_score(truth[~train], assigned[~train]))
        distances.append(in_cluster_cosine_distance(x, assigned))
    for key, values in sums.items():
        result[key] = float(np.mean(values))
    result["mean_cosine"] = mean_cosine(x)
    result["in_cluster_distance"] = float(np.mean(distances))
    return result


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1)
    return x / np.where(norms > 0, norms, 1.0)[:, None]


def mean_cosine(x: np.ndarray) -> float:
    u = _unit(x)
    total = u.sum(axis=0)
    n = len(u)
    return float((total @ total - n) / (n * (n - 1)))


def in_cluster_cosine_distance(x: np.ndarray, assigned: np.ndarray) -> float:
    """The pipeline's proxy: mean over clusters (size-weighted) of 1 - mean pairwise cosine inside."""
    u = _unit(x)
    total, pairs = 0.0, 0
    for cluster in np.unique(assigned):
        members = u[assigned == cluster]
        n = len(members)
        if n < 2:
            continue
        s = members.sum(axis=0)
        total += n * (1.0 - (s @ s - n) / (n * (n - 1)))
        pairs += n
    return total / pairs if pairs else float("nan")


def plain_references(stems: list[list[str]], train: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Vectors from the stems without radnet_spark's text code (gensim and scikit-learn as documented)."""
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    out: dict[str, np.ndarray] = {}
    train_ids = np.flatnonzero(train)
    corpus = [TaggedDocument(stems[i], [j]) for j, i in enumerate(train_ids)]
    model = Doc2Vec(dm=0, vector_size=100, min_count=5, epochs=50, seed=seed, workers=1)
    model.build_vocab(corpus)
    model.train(corpus, total_examples=model.corpus_count, epochs=model.epochs)
    inferred = np.vstack([model.infer_vector(words) for words in stems])
    trained = inferred.copy()  # held-out rows have no trained vector: they keep the inferred one
    trained[train_ids] = model.dv.vectors[: len(train_ids)]
    out["gensim trained (train) + infer_vector (held-out)"] = trained
    out["gensim infer_vector (every exam)"] = inferred
    everything = [TaggedDocument(words, [i]) for i, words in enumerate(stems)]
    transductive = Doc2Vec(dm=0, vector_size=100, min_count=5, epochs=50, seed=seed, workers=1)
    transductive.build_vocab(everything)
    transductive.train(everything, total_examples=transductive.corpus_count, epochs=transductive.epochs)
    out["gensim trained on every exam (transductive)"] = transductive.dv.vectors[: len(stems)].copy()
    tfidf = TfidfVectorizer(analyzer=list, min_df=1).fit([stems[i] for i in train_ids])
    matrix = tfidf.transform(stems)
    out["scikit-learn TF-IDF"] = matrix.toarray()
    svd = TruncatedSVD(100, random_state=seed).fit(matrix[train_ids])
    out["scikit-learn TF-IDF + TruncatedSVD(100)"] = svd.transform(matrix)
    return out


# Every variant spells out its settings, so a change of the defaults does not rename a row.
VIEW_SETTINGS: dict[str, list[str]] = {
    "view pv_dbow, trained + inferred, centred, unit length (default before 2026-12-07)": [
        "text.training_vectors=trained", "text.centre=true", "text.unit_length=true"],
    "view pv_dbow, every row inferred, centred, unit length": [
        "text.training_vectors=inferred", "text.centre=true", "text.unit_length=true"],
    "view pv_dbow, every row inferred, centred (default)": [
        "text.training_vectors=inferred", "text.centre=true", "text.unit_length=false"],
    "view pv_dbow, trained + inferred, raw (no centring or unit length)": [
        "text.training_vectors=trained", "text.centre=false", "text.unit_length=false"],
    "view lsa (100 components), centred, unit length": ["text.embedder=lsa", "text.centre=true", "text.unit_length=true"],
    "view lsa (100 components), centred": ["text.embedder=lsa", "text.centre=true", "text.unit_length=false"],
    "view tfidf": ["text.embedder=tfidf"],
}
# --inference-variants: does longer or faster inference match the trained vectors better?
INFERENCE_SETTINGS: dict[str, list[str]] = {
    "view pv_dbow, inference 200 epochs": ["text.inference_epochs=200"],
    "view pv_dbow, inference alpha 0.1": ["text.inference_alpha=0.1"],
    "view pv_dbow, inference 200 epochs, alpha 0.1": ["text.inference_epochs=200", "text.inference_alpha=0.1"],
}


def run_language(spark, language: str, args: argparse.Namespace, out: Path) -> list[dict]:  # noqa: ANN001
    from pyspark.sql import functions as F

    from radnet_spark.config import load_config
    from radnet_spark.dicom.deid import exam_id_for
    from radnet_spark.tables import write_table
    from radnet_spark.text.diagnoses_table import diagnoses_table, read_diagnoses
    from radnet_spark.views import ViewInputs, get_view

    folder = out / language
    if args.dump:
        dump = Path(args.dump) / language if (Path(args.dump) / language).is_dir() else Path(args.dump)
        csv_path, truth = dump / "diagnoses.csv", dump_truth(dump)
    else:
        csv_path, truth = generated_diagnoses(args.exams, args.seed, language, folder)
    by_exam = {exam_id_for(accession, None, SALT): value for accession, value in truth.items()}
    warehouse = str(folder / "warehouse")
    diagnoses, _ = diagnoses_table(read_diagnoses(spark, str(csv_path)), source_path=str(csv_path), salt=SALT,
                                   language=STEMMERS[language])
    write_table(diagnoses, warehouse, "diagnoses")

    base = ["split.seed=42"]
    config = load_config(None, base)
    inputs = ViewInputs(spark, warehouse, config)
    rows = inputs.with_split(inputs.table("diagnoses")).select("exam_id", "split", "stems").orderBy("exam_id").collect()
    exam_ids = [row["exam_id"] for row in rows]
    stems = [list(row["stems"]) for row in rows]
    train = np.array([row["split"] == "train" for row in rows])
    groups = [by_exam[e] for e in exam_ids]
    labels = {"group": np.array([f"{m}/{p}" for m, p in groups]), "body_part": np.array([p for _, p in groups])}
    k = len(set(labels["group"]))
    print(f"\n[{language}] {len(rows)} usable diagnoses ({int(train.sum())} training, {int((~train).sum())} held-out), "
          f"{k} modality x body-part groups; k = {k}", flush=True)
    seen = {tuple(words) for words, is_train in zip(stems, train, strict=True) if is_train}
    repeated = sum(tuple(words) in seen for words, is_train in zip(stems, train, strict=True) if not is_train)
    print(f"  held-out exams whose stems equal a training exam's (they get its trained vector): {repeated}", flush=True)

    methods: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    view = get_view("diagnosis")
    settings = {**VIEW_SETTINGS, **(INFERENCE_SETTINGS if args.inference_variants else {})}
    for name, overrides in settings.items():
        started = time.perf_counter()
        view_config = load_config(None, base + overrides)
        fitted = view.fit(ViewInputs(spark, warehouse, view_config), str(folder / "views" / str(len(methods))))
        table = fitted.transform(inputs.table("diagnoses"), view_config).select("exam_id", "embedding")
        vectors = {row["exam_id"]: np.asarray(row["embedding"], dtype=np.float64)
                   for row in table.where(F.col("exam_id").isNotNull()).collect()}
        methods[name] = np.vstack([vectors[e] for e in exam_ids])
        seconds[name] = time.perf_counter() - started
    started = time.perf_counter()
    methods.update(plain_references(stems, train, args.seed))
    seconds["plain references"] = time.perf_counter() - started

    results = []
    for name, vectors in methods.items():
        result = {"language": language, "method": name, **score(vectors, train, labels, args.repeats, k)}
        results.append(result)
        print(f"  {name:68s} group NMI train {result['group_train']:.3f} held-out {result['group_heldout']:.3f}"
              f" | body part {result['body_part_train']:.3f} {result['body_part_heldout']:.3f}"
              f" | mean cos {result['mean_cosine']:.3f} in-cluster dist {result['in_cluster_distance']:.3f}",
              flush=True)
    print("  seconds: " + ", ".join(f"{n[:30]} {s:.0f}" for n, s in seconds.items()), flush=True)
    return results


def markdown(results: list[dict]) -> str:
    reference = "gensim trained (train) + infer_vector (held-out)"
    lines = ["| language | method | NMI group train | NMI group held-out | NMI body part train | "
             "NMI body part held-out | ratio train | ratio held-out | mean cosine | in-cluster cos dist |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        ref = next(r for r in results if r["language"] == result["language"] and r["method"] == reference)
        lines.append(
            f"| {result['language']} | {result['method']} | {result['group_train']:.3f} | "
            f"{result['group_heldout']:.3f} | {result['body_part_train']:.3f} | {result['body_part_heldout']:.3f} | "
            f"{result['group_train'] / ref['group_train']:.2f} | {result['group_heldout'] / ref['group_heldout']:.2f} | "
            f"{result['mean_cosine']:.3f} | {result['in_cluster_distance']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=3000, help="exams per language (about 85%% have a usable report)")
    parser.add_argument("--languages", nargs="+", default=["hr", "en"], choices=sorted(STEMMERS))
    parser.add_argument("--seed", type=int, default=2026, help="generator seed (and gensim/SVD seed)")
    parser.add_argument("--repeats", type=int, default=3, help="k-means seeds averaged per method")
    parser.add_argument("--dump", help="use this generated dump's diagnoses.csv and ground_truth.csv "
                        "(or its <language>/ subfolders) instead of generating the diagnoses")
    parser.add_argument("--inference-variants", action="store_true",
                        help="also fit the view with longer (200 epochs) and faster (alpha 0.1) inference")
    parser.add_argument("--out", default="data/bench/diagnosis_view")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from radnet_spark.config import SparkConfig
    from radnet_spark.session import get_spark

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spark = get_spark(SparkConfig(master=args.master, app_name="radnet-bench-diagnosis-view",
                                  conf={"spark.ui.showConsoleProgress": "false"}))
    started = time.perf_counter()
    results = []
    for language in args.languages:
        results.extend(run_language(spark, language, args, out))
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    table = markdown(results)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)
    print(f"\n{time.perf_counter() - started:.0f} s in all; results in {out}/results.{{md,json}}")


if __name__ == "__main__":
    main()
