"""End-to-end cost curve: `radnet ingest` + `radnet run` on local[cores] for growing dumps.

    .venv/bin/python bench/scale.py --sizes 1000 2000 4000 8000 16000 --cores 2

For each N (instances), the dump is the smallest prefix of generated parts holding at least N files
(parts are generated once with consecutive exam ranges and reused by every N; each N's dump is a
folder of hard links). Each N runs in a fresh warehouse as two processes, `radnet ingest` then
`radnet run`, exactly as a scheduled job would. Recorded per stage: wall seconds (ingest steps from
the ingest summary, pipeline stages from the stage ledger), rows/s, peak RSS of the Python driver,
of the JVM (driver and executor in local mode) and of the largest Python worker, sampled every
0.25 s over the process tree; per N: output sizes and Parquet file counts per table.

Writes ``scale.csv`` and ``scale.png`` (log-log seconds vs N per stage) under --out and prints the
Markdown tables for docs/benchmarks.md, with the least-squares slope of log(seconds) on log(N) per
stage over --slope-from..--slope-to.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
STAGE_ORDER = [
    "ingest", "features", "train_tags", "embed_tags", "train_image", "embed_image",
    "train_diagnosis", "embed_diagnosis", "cluster", "evaluate", "report", "total",
]


# --------------------------------------------------------------------------------------------
# dumps
# --------------------------------------------------------------------------------------------
def _count_rows(csv_path: Path) -> int:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def ensure_parts(root: Path, files_needed: int, part_exams: int, seed: int) -> list[tuple[Path, int]]:
    """Generate parts of ``part_exams`` exams until they hold ``files_needed`` files; reuse existing ones."""
    from radnet_spark.synth import generate_pacs

    parts: list[tuple[Path, int]] = []
    total = 0
    index = 0
    while total < files_needed:
        part = root / "parts" / f"part_{index:04d}"
        if not (part / "ground_truth.csv").exists():
            shutil.rmtree(part, ignore_errors=True)
            # Default defect rates: the curve includes the rejects a real dump has.
            summary = generate_pacs(part, exams=part_exams, seed=seed, first_exam=index * part_exams)
            print(f"generated {part.name}: {summary}", flush=True)
        files = _count_rows(part / "ground_truth.csv")
        parts.append((part, files))
        total += files
        index += 1
    return parts


def dump_for(root: Path, parts: list[tuple[Path, int]], size: int) -> tuple[Path, int]:
    """A dump of the smallest prefix of parts with at least ``size`` files (hard links, made once)."""
    chosen, files = [], 0
    for part, count in parts:
        chosen.append(part)
        files += count
        if files >= size:
            break
    dump = root / f"n{size}"
    if not (dump / "diagnoses.csv").exists():
        shutil.rmtree(dump, ignore_errors=True)
        for part in chosen:
            shutil.copytree(part / "dicom", dump / "dicom" / part.name, copy_function=os.link)
        with open(dump / "diagnoses.csv.tmp", "w", encoding="utf-8") as out:
            for position, part in enumerate(chosen):
                lines = (part / "diagnoses.csv").read_text(encoding="utf-8").splitlines(keepends=True)
                out.writelines(lines if position == 0 else lines[1:])
        (dump / "diagnoses.csv.tmp").rename(dump / "diagnoses.csv")
    return dump, files


# --------------------------------------------------------------------------------------------
# measuring one process tree
# --------------------------------------------------------------------------------------------
@dataclass
class MemorySample:
    at: float
    driver: int
    jvm: int
    worker_max: int
    workers_total: int


@dataclass
class Sampler:
    """Polls RSS of a process tree: the Python driver, the JVM, and the pyspark.daemon workers."""

    process: psutil.Process
    interval: float = 0.25
    samples: list[MemorySample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                driver = self.process.memory_info().rss
                children = self.process.children(recursive=True)
            except psutil.Error:
                break
            jvm, workers = 0, []
            for child in children:
                try:
                    rss = child.memory_info().rss
                    name = child.name()
                except psutil.Error:
                    continue
                if "java" in name:
                    jvm += rss
                elif "python" in name:
                    workers.append(rss)
            self.samples.append(MemorySample(time.time(), driver, jvm, max(workers, default=0), sum(workers)))
            self._stop.wait(self.interval)

    def peaks(self, start: float = 0.0, end: float = math.inf) -> dict[str, int]:
        window = [s for s in self.samples if start <= s.at <= end] or self.samples
        return {
            "driver_rss": max((s.driver for s in window), default=0),
            "jvm_rss": max((s.jvm for s in window), default=0),
            "worker_rss_max": max((s.worker_max for s in window), default=0),
            "workers_rss_total": max((s.workers_total for s in window), default=0),
        }


def run_radnet(args: list[str], log_path: Path, env: dict[str, str]) -> tuple[float, Sampler, float]:
    """Run ``python -m radnet_spark ARGS``; returns (wall seconds, memory sampler, start time)."""
    started_at = time.time()
    with open(log_path, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "radnet_spark", *args], stdout=log_file, stderr=subprocess.STDOUT, env=env,
            cwd=REPO,
        )
        with Sampler(psutil.Process(process.pid)) as sampler:
            code = process.wait()
    seconds = time.time() - started_at
    if code != 0:
        raise SystemExit(f"radnet {' '.join(args[:1])} failed with exit code {code}; see {log_path}")
    return seconds, sampler, started_at


def _ingest_steps(log_path: Path) -> dict[str, float]:
    steps: dict[str, float] = {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        # "ingest <run id>: <step> done in <seconds> s" (radnet_spark.ingest.job.IngestSummary.step)
        if "ingest " in line and " done in " in line:
            head, _, tail = line.rpartition(" done in ")
            name = head.rsplit(": ", 1)[-1]
            steps[name] = steps.get(name, 0.0) + float(tail.split()[0])
    return steps


def _ledger_stages(warehouse: Path) -> dict[str, tuple[float, float]]:
    """Stage name → (start epoch seconds, wall seconds), from the stage ledger."""
    stages = {}
    for path in sorted((warehouse / "_stages").glob("*.json")):
        info = json.loads(path.read_text(encoding="utf-8"))
        if "seconds" not in info or "finished_at" not in info:
            continue
        finished = datetime.fromisoformat(info["finished_at"]).timestamp()
        stages[path.stem] = (finished - info["seconds"], float(info["seconds"]))
    return stages


def _tree_size(path: Path) -> tuple[int, int]:
    """(bytes, number of Parquet part files) below path."""
    total, parts = 0, 0
    for item in path.rglob("*"):
        if item.is_file():
            total += item.stat().st_size
            parts += item.suffix == ".parquet"
    return total, parts


def measure(size: int, dump: Path, files: int, work: Path, config: Path, cores: int) -> tuple[list[dict], dict]:
    warehouse, models = work / "warehouse", work / "models"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "RADNET_SALT": os.environ.get("RADNET_SALT", "scale-bench"), "PYSPARK_PYTHON": sys.executable}
    common = ["--config", str(config), "--master", f"local[{cores}]"]
    ingest_seconds, ingest_memory, _ = run_radnet(
        ["ingest", "--dicom", str(dump / "dicom"), "--diagnoses", str(dump / "diagnoses.csv"),
         "--out", str(warehouse), *common], work / "ingest.log", env,
    )
    run_seconds, run_memory, _ = run_radnet(
        ["run", "--out", str(warehouse), "--models", str(models), "--name", "scale", *common], work / "run.log", env,
    )
    rows = [{
        "n": size, "files": files, "stage": "ingest", "seconds": round(ingest_seconds, 2),
        "rows_per_s": round(files / ingest_seconds, 1), **ingest_memory.peaks(),
        "detail": json.dumps({k: round(v, 2) for k, v in _ingest_steps(work / "ingest.log").items()}),
    }]
    instances = _instances(warehouse)
    for stage, (start, seconds) in sorted(_ledger_stages(warehouse).items(), key=lambda item: item[1][0]):
        rows.append({
            "n": size, "files": files, "stage": stage, "seconds": round(seconds, 2),
            "rows_per_s": round(instances / max(seconds, 1e-9), 1),
            **run_memory.peaks(start, start + seconds), "detail": "",
        })
    total = ingest_seconds + run_seconds
    peaks = {key: max(ingest_memory.peaks()[key], run_memory.peaks()[key]) for key in ingest_memory.peaks()}
    rows.append({
        "n": size, "files": files, "stage": "total", "seconds": round(total, 2),
        "rows_per_s": round(files / total, 1), **peaks,
        "detail": json.dumps({"run_process_seconds": round(run_seconds, 2)}),
    })
    outputs = {"n": size, "files": files, "instances": instances}
    for name in ("files", "tags", "images", "diagnoses", "rejects", "labels"):
        size_bytes, part_files = _tree_size(warehouse / name)
        outputs[f"{name}_bytes"], outputs[f"{name}_parquet_files"] = size_bytes, part_files
    outputs["models_bytes"] = _tree_size(models)[0]
    return rows, outputs


def _instances(warehouse: Path) -> int:
    import pyarrow.dataset as ds

    return ds.dataset(str(warehouse / "images"), format="parquet").count_rows()


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log(seconds) on log(n)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(s, 1e-9)) for _, s in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = plt.get_cmap("tab20")
    for position, stage in enumerate(STAGE_ORDER):
        points = sorted((r["files"], r["seconds"]) for r in rows if r["stage"] == stage)
        if len(points) >= 2:
            ax.plot(*zip(*points, strict=True), marker="o", label=stage, color="black" if stage == "total" else colours(position),
                    linewidth=2.5 if stage == "total" else 1.2)
    sizes = sorted({r["files"] for r in rows})
    if sizes:
        base = max(r["seconds"] for r in rows if r["stage"] == "total" and r["files"] == sizes[0])
        ax.plot(sizes, [base * n / sizes[0] for n in sizes], "k:", label="slope 1 (linear)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("files in the dump (N)")
    ax.set_ylabel("wall seconds")
    ax.set_title("radnet ingest + run on local[2]: seconds per stage vs N")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(rows: list[dict], outputs: list[dict], slope_from: int, slope_to: int) -> str:
    sizes = sorted({r["files"] for r in rows})
    stages = [s for s in STAGE_ORDER if any(r["stage"] == s for r in rows)]
    lookup = {(r["stage"], r["files"]): r for r in rows}
    lines = ["| stage | " + " | ".join(f"N={n}" for n in sizes) + f" | slope {slope_from}–{slope_to} |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for stage in stages:
        cells = [f"{lookup[(stage, n)]['seconds']:.1f}" if (stage, n) in lookup else "–" for n in sizes]
        points = [(n, lookup[(stage, n)]["seconds"]) for n in sizes
                  if (stage, n) in lookup and slope_from <= n <= slope_to * 1.1]
        fitted = f"{slope(points):.2f}" if len(points) >= 2 else "–"
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {fitted} |")
    mib = 1024 * 1024
    lines += ["", "| N | driver peak RSS MiB | JVM peak RSS MiB | largest Python worker MiB | all workers MiB | rows/s end to end |",
              "|---|---|---|---|---|---|"]
    for n in sizes:
        total = lookup[("total", n)]
        lines.append(f"| {n} | {total['driver_rss'] / mib:.0f} | {total['jvm_rss'] / mib:.0f} | "
                     f"{total['worker_rss_max'] / mib:.0f} | {total['workers_rss_total'] / mib:.0f} | {total['rows_per_s']:.1f} |")
    lines += ["", "| N | instances | tags MiB (files) | images MiB (files) | labels MiB (files) | rejects (files) | models MiB |",
              "|---|---|---|---|---|---|---|"]
    for out in sorted(outputs, key=lambda o: o["files"]):
        lines.append(
            f"| {out['files']} | {out['instances']} | {out['tags_bytes'] / mib:.1f} ({out['tags_parquet_files']}) | "
            f"{out['images_bytes'] / mib:.1f} ({out['images_parquet_files']}) | "
            f"{out['labels_bytes'] / mib:.1f} ({out['labels_parquet_files']}) | {out['rejects_parquet_files']} | "
            f"{out['models_bytes'] / mib:.1f} |"
        )
    return "\n".join(lines)


# Driver-side fits run on bounded samples; at the paper's defaults they do more work than with
# configs/scale.yaml. Ratio of (sample rows × epochs or trees × iterations), paper ÷ scale config.
PAPER_TRAINING_FACTOR = {
    "train_image": (50_000 * 40) / (2_000 * 6),
    "train_tags": (20_000 * 100) / (2_000 * 30),
    "train_diagnosis": (200_000 * 50) / (1_000 * 30),
    "features": (20_000 * 256 * 10) / (2_000 * 32 * 5),
    # elbow sweep: sample rows × k values (2..60 step 2 vs 4..30 step 2)
    "cluster": (50_000 * 30) / (1_000 * 14),
}


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (a, b) of seconds = a + b·N (a clipped at 0)."""
    mean_n = sum(n for n, _ in points) / len(points)
    mean_s = sum(s for _, s in points) / len(points)
    denominator = sum((n - mean_n) ** 2 for n, _ in points) or 1.0
    b = max(0.0, sum((n - mean_n) * (s - mean_s) for n, s in points) / denominator)
    return max(0.0, mean_s - b * mean_n), b


def projection_markdown(rows: list[dict], target: int, cores: int, local_cores: int, efficiency: float,
                        driver_speedup: float, fit_from: int) -> str:
    """Seconds per stage at ``target`` rows on ``cores`` executor cores, from the measured curve.

    Distributed stages: the per-row part measured on ``local_cores`` spreads over ``cores`` at
    ``efficiency``; the fixed part stays. Driver-side fits: the fixed part times the paper-defaults
    factor, divided by ``driver_speedup`` (a GPU, or more driver cores, relative to this machine).
    """
    lines = [f"| stage | fit a + b·N (s) | projected s at N={target:,} | assumption |", "|---|---|---|---|"]
    total = 0.0
    for stage in STAGE_ORDER[:-1]:
        points = [(r["files"], r["seconds"]) for r in rows if r["stage"] == stage and r["files"] >= fit_from]
        if len(points) < 2:
            continue
        a, b = linear_fit(points)
        if stage.startswith("train_"):
            # Training reads bounded samples only: its cost at the largest N measured is its cost at any N.
            factor = PAPER_TRAINING_FACTOR[stage]
            seconds = max(points)[1] * factor / driver_speedup
            note = f"measured at the largest N × {factor:.0f} (paper defaults) ÷ {driver_speedup:g} (driver speed-up)"
        elif stage in PAPER_TRAINING_FACTOR:
            factor = PAPER_TRAINING_FACTOR[stage]
            # The fixed part is the fit on the driver; the per-row part is the distributed apply.
            seconds = a * factor / driver_speedup + b * target * local_cores / (cores * efficiency)
            note = f"fit ×{factor:.0f} (paper defaults) ÷ {driver_speedup:g}; per-row part over {cores} cores"
        else:
            seconds = a + b * target * local_cores / (cores * efficiency)
            note = f"per-row part over {cores} cores at {efficiency:.0%} efficiency"
        total += seconds
        lines.append(f"| {stage} | {a:.1f} + {b * 1000:.2f} ms·N | {seconds:,.0f} | {note} |")
    lines.append(f"| **total** | | **{total:,.0f}** (≈ {total / 3600:.1f} h) | |")
    return "\n".join(lines)


def ingest_steps_markdown(rows: list[dict]) -> str:
    ingest = sorted((r for r in rows if r["stage"] == "ingest" and r.get("detail")), key=lambda r: r["files"])
    steps = [json.loads(r["detail"]) for r in ingest]
    names = list(dict.fromkeys(name for step in steps for name in step))
    lines = ["| ingest step | " + " | ".join(f"N={r['files']}" for r in ingest) + " |",
             "|---|" + "---|" * len(ingest)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{step.get(name, 0):.1f}" for step in steps) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000, 16000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--config", default=str(REPO / "configs" / "scale.yaml"))
    parser.add_argument("--data", default="data/bench/scale", help="where parts and dumps are generated/reused")
    parser.add_argument("--out", default="docs/scale", help="where scale.csv and scale.png go")
    parser.add_argument("--part-exams", type=int, default=25, help="exams per generated part (~500 files)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--slope-from", type=int, default=2000)
    parser.add_argument("--slope-to", type=int, default=16000)
    parser.add_argument("--keep", action="store_true", help="keep each N's warehouse (default: removed after)")
    parser.add_argument("--report-only", action="store_true", help="redo the tables and plot from scale.csv")
    parser.add_argument("--project-rows", type=int, default=1_337_926, help="projection target (the paper's)")
    parser.add_argument("--project-cores", type=int, default=64, help="executor cores of the projected cluster")
    parser.add_argument("--project-efficiency", type=float, default=0.8, help="parallel efficiency assumed")
    parser.add_argument("--project-driver-speedup", type=float, default=30.0,
                        help="driver-side training speed-up vs this machine's 2 cores (a GPU driver)")
    args = parser.parse_args()

    data, out = Path(args.data).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [] if args.report_only else ensure_parts(data, max(args.sizes), args.part_exams, args.seed)
    csv_path = out / "scale.csv"
    rows: list[dict] = []
    outputs: list[dict] = []
    if csv_path.exists():  # measurements of other sizes from earlier invocations are kept
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if args.report_only or int(r["n"]) not in args.sizes]
        for r in rows:
            for key in ("n", "files", "driver_rss", "jvm_rss", "worker_rss_max", "workers_rss_total"):
                r[key] = int(r[key])
            r["seconds"], r["rows_per_s"] = float(r["seconds"]), float(r["rows_per_s"])
    outputs_path = out / "outputs.json"
    if outputs_path.exists():
        outputs = [o for o in json.loads(outputs_path.read_text()) if args.report_only or o["n"] not in args.sizes]
    for size in [] if args.report_only else sorted(args.sizes):
        dump, files = dump_for(data, parts, size)
        print(f"N={size}: {files} files, running ingest + run on local[{args.cores}] ...", flush=True)
        work = data / "runs" / f"n{size}"
        size_rows, size_outputs = measure(size, dump, files, work, Path(args.config), args.cores)
        rows += size_rows
        outputs.append(size_outputs)
        total = size_rows[-1]
        print(f"N={size}: {total['seconds']:.0f} s end to end, driver peak {total['driver_rss'] / 2**20:.0f} MiB", flush=True)
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        outputs_path.write_text(json.dumps(outputs, indent=1))
        if not args.keep:
            shutil.rmtree(work / "warehouse", ignore_errors=True)
    for row in rows:  # ingest step seconds missing from the CSV: from the kept logs (each step is logged)
        log_path = data / "runs" / f"n{row['n']}" / "ingest.log"
        if row["stage"] == "ingest" and not row.get("detail") and log_path.exists():
            row["detail"] = json.dumps({k: round(v, 2) for k, v in _ingest_steps(log_path).items()})
    plot(rows, out / "scale.png")
    print(markdown(rows, outputs, args.slope_from, args.slope_to))
    print()
    print(ingest_steps_markdown(rows))
    print()
    print(projection_markdown(rows, args.project_rows, args.project_cores, args.cores, args.project_efficiency,
                              args.project_driver_speedup, args.slope_from))


if __name__ == "__main__":
    main()
