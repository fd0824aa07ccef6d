"""Annotation quality: ``radnet run --compare`` beside references written without the project's code.

For each diagnosis language (Croatian and English by default) the bench generates a dump, runs
``radnet run --compare`` on it as a separate process, then computes on the *same rows* (same splits,
same Modality and imputed BodyPartExamined labels, same k per row) references that use only
pyarrow, scikit-learn and gensim:

- tags: scikit-learn PCA (50) + k-means (k 25) on the encoded tag features;
- image: scikit-learn PCA (50) + k-means (k 40) on the 8-bit images, pixels scaled to [0, 1];
- diagnosis: plain gensim ``Doc2Vec(dm=0, vector_size=100, min_count=5, epochs=50)`` trained on every
  document's stems, its *trained* document vectors + k-means (k 20) — as in the issue that asked for
  it (transductive: validation and test documents are trained on too, which the view cannot do);
  the same model's ``infer_vector`` for every document; scikit-learn TF-IDF + k-means.

Score = harmonic mean of homogeneity and NMI against Modality and against BodyPartExamined, the
project's proxy, computed here with scikit-learn. Each k-means is fitted on the training split and
applied to validation and test. Output: one Markdown file per language and a summary of the targets
(fused > every single view by >= 0.01 on validation and test; diagnosis view / gensim trained >= 1.0).

    .venv/bin/python bench/quality.py --exams 160 --languages hr en
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from scipy.stats import hmean
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import homogeneity_score, normalized_mutual_info_score

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("validation", "test")
SEED = 42


def committed_table(warehouse: Path, name: str) -> pd.DataFrame:
    """A warehouse table as pandas, committed runs only for run tables (see docs/tables.md)."""
    runs = [json.loads(p.read_text()) for p in (warehouse / "_runs").glob("*.json")]
    folders = [r["partitions"][name] for r in runs if name in r.get("partitions", {})]
    if folders:
        frames = [ds.dataset(warehouse / name / f, format="parquet").to_table().to_pandas() for f in folders]
        return pd.concat(frames, ignore_index=True)
    return ds.dataset(warehouse / name, format="parquet", partitioning="hive").to_table().to_pandas()


def score(labels: pd.DataFrame, clusters: np.ndarray) -> float:
    values = []
    for column in ("modality", "bpe"):
        truth = labels[column].fillna("<missing>").to_numpy()
        values += [homogeneity_score(truth, clusters), normalized_mutual_info_score(truth, clusters)]
    return 0.0 if min(values) <= 0 else float(hmean(values))


def kmeans_scores(vectors: np.ndarray, rows: pd.DataFrame, k: int) -> dict[str, float]:
    """k-means fitted on the training rows, scored on each evaluated split."""
    train = (rows["split"] == "train").to_numpy()
    model = KMeans(n_clusters=min(k, int(train.sum())), n_init=4, random_state=SEED).fit(vectors[train])
    out = {}
    for split in SPLITS:
        mask = (rows["split"] == split).to_numpy()
        out[split] = score(rows[mask], model.predict(vectors[mask])) if mask.any() else float("nan")
    return out


def pca_vectors(matrix: np.ndarray, rows: pd.DataFrame, components: int = 50) -> np.ndarray:
    train = (rows["split"] == "train").to_numpy()
    pca = PCA(n_components=min(components, int(train.sum()) - 1, matrix.shape[1]), random_state=SEED)
    return pca.fit(matrix[train]).transform(matrix)


def references(warehouse: Path) -> list[dict[str, object]]:
    """Reference rows on the tables ``radnet run`` wrote (inputs only: tag features, images, stems)."""
    labels = committed_table(warehouse, "tag_features")[["sop_instance_uid", "exam_id", "split", "modality", "bpe", "features"]]
    rows: list[dict[str, object]] = []

    tag_matrix = np.stack(labels["features"].to_numpy()).astype(np.float64)
    rows.append({"model": "tags", "reference": "sklearn PCA 50 + k-means", "k": 25,
                 **kmeans_scores(pca_vectors(tag_matrix, labels), labels, 25)})

    images = committed_table(warehouse, "images")[["sop_instance_uid", "image"]]
    with_images = labels.merge(images, on="sop_instance_uid")
    pixels = np.stack([np.frombuffer(b, dtype=np.uint8) for b in with_images["image"]]).astype(np.float32) / 255
    rows.append({"model": "image", "reference": "sklearn PCA 50 + k-means", "k": 40,
                 **kmeans_scores(pca_vectors(pixels, with_images), with_images, 40)})

    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    diagnoses = committed_table(warehouse, "diagnoses")[["exam_id", "stems"]]
    diagnoses = diagnoses[diagnoses["stems"].map(lambda s: s is not None and len(s) > 0)].reset_index(drop=True)
    documents = [TaggedDocument(list(s), [i]) for i, s in enumerate(diagnoses["stems"])]
    model = Doc2Vec(documents, dm=0, vector_size=100, min_count=5, epochs=50, seed=SEED, workers=1)
    trained = np.stack([model.dv[i] for i in range(len(documents))])
    inferred = np.stack([model.infer_vector(d.words) for d in documents])
    tfidf = TfidfVectorizer(analyzer=lambda stems: stems, min_df=2).fit_transform(diagnoses["stems"])
    exam_rows = labels.merge(diagnoses[["exam_id"]].reset_index(), on="exam_id")  # instance rows with a report
    for name, vectors in (
        ("gensim PV-DBOW, trained vectors", trained),
        ("gensim PV-DBOW, infer_vector", inferred),
        ("sklearn TF-IDF", tfidf),
    ):
        per_instance = vectors[exam_rows["index"].to_numpy()]
        rows.append({"model": "diagnosis", "reference": name, "k": 20,
                     **kmeans_scores(per_instance, exam_rows, 20)})
    cosine = trained / np.linalg.norm(trained, axis=1, keepdims=True)
    rows.append({"model": "diagnosis", "reference": "gensim trained vectors: mean pairwise cosine",
                 "k": 0, "validation": float((cosine @ cosine.T).mean()), "test": float("nan")})
    return rows


def view_collapse(warehouse: Path) -> float:
    """Mean pairwise cosine similarity of the diagnosis view's embeddings (1 = all parallel)."""
    vectors = np.stack(committed_table(warehouse, "embeddings_diagnosis")["embedding"].to_numpy()).astype(np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return float((unit @ unit.T).mean())


def run_language(language: str, seed: int, args: argparse.Namespace) -> dict[str, object]:
    base = args.out / language
    dump = base / "pacs"
    python = sys.executable
    if not (dump / "ground_truth.csv").exists():
        subprocess.run([python, "-m", "radnet_spark", "synth", "--out", str(dump), "--exams", str(args.exams),
                        "--seed", str(seed), "--language", language], check=True)
    warehouse, models = base / "warehouse", base / "models"
    started = time.perf_counter()
    if not (warehouse / "evaluation" / "comparison.csv").exists() or args.rerun:
        command = [python, "-m", "radnet_spark", "run", "--dicom", str(dump / "dicom"),
                   "--diagnoses", str(dump / "diagnoses.csv"), "--out", str(warehouse), "--models", str(models),
                   "--name", "quality", "--config", str(args.config), "--compare"]
        for setting in args.set or []:
            command += ["--set", setting]
        subprocess.run(command, check=True)
    run_seconds = time.perf_counter() - started
    compared = pd.read_csv(warehouse / "evaluation" / "comparison.csv")
    refs = pd.DataFrame(references(warehouse))
    return {"language": language, "compared": compared, "references": refs,
            "view_cosine": view_collapse(warehouse), "run_seconds": run_seconds,
            "instances": len(committed_table(warehouse, "tag_features"))}


def targets(result: dict[str, object]) -> list[str]:
    compared: pd.DataFrame = result["compared"]  # type: ignore[assignment]
    refs: pd.DataFrame = result["references"]  # type: ignore[assignment]
    single = compared[compared["fusion"] == "-"]
    fused = compared[compared["model"] == "[tags]-[image]-[diagnosis]"]
    lines = []
    for split in SPLITS:
        column = f"{split}_score"
        best_single = single.loc[single[column].idxmax()]
        for _, row in fused.iterrows():
            margin = row[column] - best_single[column]
            lines.append(f"- {split}: all three `{row['fusion']}` {row[column]:.3f} vs best single view "
                         f"{best_single['model']} {best_single[column]:.3f}: margin {margin:+.3f}"
                         f"{' (target met)' if margin >= 0.01 else ''}")
    view = single[single["model"] == "diagnosis"]
    gensim = refs[refs["reference"] == "gensim PV-DBOW, trained vectors"]
    for split in SPLITS:
        if len(view) and len(gensim):
            ratio = float(view[f"{split}_score"].iloc[0]) / float(gensim[split].iloc[0])
            lines.append(f"- {split}: diagnosis view / gensim trained vectors = {ratio:.2f}"
                         f"{' (target met)' if ratio >= 1.0 else ''}")
    lines.append(f"- diagnosis view mean pairwise cosine: {result['view_cosine']:.3f}")
    return lines


def to_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    cells = frame.map(lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
    return header + "\n".join("| " + " | ".join(r) + " |" for r in cells.itertuples(index=False, name=None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=160, help="exams per dump (160 ≈ 3,100 instances)")
    parser.add_argument("--languages", nargs="+", default=["hr", "en"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench" / "quality")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    parser.add_argument("--set", action="append", help="extra radnet settings, section.field=value")
    parser.add_argument("--rerun", action="store_true", help="run radnet again even if a comparison exists")
    args = parser.parse_args()
    report = [f"# Quality bench ({time.strftime('%Y-%m-%d %H:%M')}, exams {args.exams}, seed {args.seed}, "
              f"config {args.config.name}, settings {args.set or []})"]
    for index, language in enumerate(args.languages):
        result = run_language(language, args.seed + index, args)  # another seed: another dump
        compared: pd.DataFrame = result["compared"]  # type: ignore[assignment]
        keep = ["model", "fusion", "k", "validation_score", "test_score"]
        keep += [c for c in ("validation_diagnosis_distance", "test_diagnosis_distance") if c in compared]
        report += [f"\n## {language}: {result['instances']} instances, radnet run {result['run_seconds']:.0f} s\n",
                   to_markdown(compared[keep]), "\nReferences (no radnet_spark code):\n",
                   to_markdown(result["references"]), "\nTargets:\n", *targets(result)]  # type: ignore[list-item]
    text = "\n".join(report) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
