"""Where a Spark ingest's time and CPU go, step by step: the JVM, the Python workers, the driver.

    .venv/bin/python bench/ingest_profile.py DUMP/dicom HALF/dicom --cores 2 --repeat 2

Runs the ingest job (``radnet_spark.ingest.job.ingest``, default settings) in one session on
``local[cores]``: first on the half dump (the session's cold run, reported on its own), then
``--repeat`` times on each of the half and the whole dump. Around every step the job logs it reads
the CPU seconds of the driver's JVM, of the Python workers (``pyspark.daemon`` and its forks) and of
this process from ``/proc`` (Linux only), so each step's wall time is split into who was busy.

Prints, per step: wall and CPU seconds of the whole dump (best of the repeats), and the marginal cost
per 1,000 files (whole dump minus half dump, divided by the difference in files): the steady state,
without the per-run and per-job fixed costs. The bench's own ``bench/ingest.py`` gives the naive
loop those figures are compared with. Any two dumps work; ``bench/ingest.py`` writes one and its
half (hard links) under ``--data``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process_kind() -> dict[str, float]:
    """CPU seconds (user + system) so far of the JVM, the Python workers and this process."""
    seconds = {"jvm": 0.0, "workers": 0.0, "driver": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        used = (int(fields[11]) + int(fields[12])) / _TICKS
        if int(pid) == os.getpid():
            seconds["driver"] += used
        elif command and command[0].endswith(b"java"):
            seconds["jvm"] += used
        elif b"pyspark.daemon" in command:
            seconds["workers"] += used
    return seconds


def profiled_ingest(spark, dump: str, warehouse: Path) -> tuple[int, dict[str, dict[str, float]]]:  # noqa: ANN001
    """Ingest ``dump`` into a new ``warehouse``: (new files, step → wall and CPU seconds by kind)."""
    from radnet_spark.config import load_config
    from radnet_spark.ingest import job

    steps: dict[str, dict[str, float]] = {}
    timed_step = job.IngestSummary.step

    @contextlib.contextmanager
    def step(summary: job.IngestSummary, name: str) -> Iterator[None]:
        before, started = cpu_by_process_kind(), time.perf_counter()
        with timed_step(summary, name):
            yield
        after = cpu_by_process_kind()
        steps[name] = {"wall": time.perf_counter() - started, **{k: after[k] - before[k] for k in after}}

    shutil.rmtree(warehouse, ignore_errors=True)
    job.IngestSummary.step = step
    try:
        before, started = cpu_by_process_kind(), time.perf_counter()
        summary = job.ingest(spark, dump, None, str(warehouse), load_config())
        after = cpu_by_process_kind()
    finally:
        job.IngestSummary.step = timed_step
    steps["whole job"] = {"wall": time.perf_counter() - started, **{k: after[k] - before[k] for k in after}}
    return summary.new_files, steps


def best(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per step and measure, the smallest value over the runs (load only ever adds)."""
    return {step: {measure: min(run[step][measure] for run in runs) for measure in runs[0][step]}
            for step in runs[0]}


def table(rows: dict[str, dict[str, float]], scale: float = 1.0) -> list[str]:
    lines = ["| step | wall s | JVM CPU s | Python workers CPU s | driver CPU s |", "|---|---|---|---|---|"]
    for step, measures in rows.items():
        if measures["wall"] * scale < 0.005 and step != "whole job":
            continue
        lines.append(f"| {step} | {measures['wall'] * scale:.2f} | {measures['jvm'] * scale:.2f} | "
                     f"{measures['workers'] * scale:.2f} | {measures['driver'] * scale:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", help="DICOM folder of the whole dump")
    parser.add_argument("half", help="DICOM folder of a smaller dump (e.g. its first half)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        sys.exit("This profile reads CPU times from /proc (Linux only).")

    from radnet_spark.config import load_config
    from radnet_spark.session import get_spark

    config = load_config()
    config.spark.master = f"local[{args.cores}]"
    config.spark.conf["spark.ui.showConsoleProgress"] = "false"
    spark = get_spark(config.spark)
    scratch = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
    try:
        half_files, cold = profiled_ingest(spark, args.half, scratch / "cold")
        runs: dict[str, list] = {"half": [], "whole": []}
        files = {"half": half_files}
        for _ in range(args.repeat):
            for name, dump in (("half", args.half), ("whole", args.dump)):
                files[name], steps = profiled_ingest(spark, dump, scratch / name)
                runs[name].append(steps)
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    whole, half = best(runs["whole"]), best(runs["half"])
    extra = (files["whole"] - files["half"]) / 1000
    marginal = {step: {m: (whole[step][m] - half[step].get(m, 0.0)) / extra for m in whole[step]}
                for step in whole if step in half}
    print(f"cores {args.cores}; half {files['half']} files, whole {files['whole']} files; best of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"\nThe session's first run ({files['half']} files, cold JVM and workers):")
    print("\n".join(table(cold)))
    print(f"\nWhole dump ({files['whole']} files), warm session:")
    print("\n".join(table(whole)))
    print("\nMarginal cost per 1,000 files (whole − half), warm session:")
    print("\n".join(table(marginal)))
    rate = 1000 / marginal["whole job"]["wall"]
    print(f"\nsteady state: {rate:.0f} files/s on {args.cores} cores = {rate / args.cores:.0f} files/s per core")


if __name__ == "__main__":
    main()
