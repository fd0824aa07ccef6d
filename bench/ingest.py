"""Ingest throughput against a naive pydicom loop written without the project, on the same files in one run.

    .venv/bin/python bench/ingest.py --exams 100 --cores 2 --repeat 3

Generates (or reuses) a synthetic dump without defects (``--exams``, seed 3), then times, each
``--repeat`` times and keeping the best (other load on the machine only ever slows a run):

  a. the naive loop: ``pydicom.dcmread``, ``pixel_array``, float32 rescale and window to 8 bits
     (first WindowCenter/WindowWidth, else the frame's min/max), MONOCHROME1 inverted, bilinear
     resize with PIL keeping the aspect ratio and zero padding to 128 × 128. It is written in this
     file and never imports ``radnet_spark`` (its worker processes check that);
  b. the project's per-record function ``radnet_spark.ingest.instance.parse_file`` in one process,
     no Spark (it also reads and de-identifies every tag, scrubs names and applies the value and
     shape policies, which the naive loop does not);
  c. the Spark ingest job's steady state on ``local[cores]``: the marginal rate between the whole
     dump and its first half (hard links), both run in one warm session;
  d. the whole ``radnet ingest`` command on the dump, a fresh process (JVM start, listing, parse,
     de-duplication, five tables, commit): wall time;
  e. the parallel ceiling: the naive loop in ``cores`` processes at once (multiprocessing, no Spark);
  f. with ``--compressed N``: N single-frame 16-bit CT/MR files of the dump transcoded to RLE
     Lossless, JPEG 2000 Lossless (pydicom's encoders), JPEG-LS Lossless (GDCM) and JPEG Baseline
     (8-bit windowed copies, Pillow's encoder), naive loop and per-record function on each.

Prints files/s and the per-core ratios against the naive loop, and Markdown rows for
docs/benchmarks.md. To measure another checkout of the project (for before/after figures), run
from outside this one with ``PYTHONPATH=/that/checkout``; the Spark workers and the ``radnet
ingest`` process inherit it and the run prints the ``radnet_spark`` folder each of them used.
"""

from __future__ import annotations

import argparse
import io
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.multival import MultiValue

IMAGE_SIZE = 128


# --- (a) the naive loop: pydicom + NumPy float32 + PIL, no radnet_spark -----------------------------


def _first_number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def naive_window(ds: pydicom.Dataset) -> np.ndarray:
    """The first frame of a dataset rescaled and windowed to 8 bits in float32 (min/max without a window)."""
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[0]
    values = pixels.astype(np.float32)
    slope = _first_number(ds.get("RescaleSlope")) or 1.0
    intercept = _first_number(ds.get("RescaleIntercept")) or 0.0
    if slope != 1.0:
        values *= slope
    if intercept != 0.0:
        values += intercept
    center, width = _first_number(ds.get("WindowCenter")), _first_number(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        low, high = float(values.min()), float(values.max())
    else:
        low, high = center - width / 2, center + width / 2
    values -= low
    values *= 255.0 / max(high - low, 1e-6)
    np.clip(values, 0.0, 255.0, out=values)
    image = values.astype(np.uint8)
    return 255 - image if ds.PhotometricInterpretation == "MONOCHROME1" else image


def naive_8bit(path: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """What a careful script without the project does with one file: an 8-bit ``size`` × ``size`` image."""
    image = naive_window(pydicom.dcmread(path))
    rows, columns = image.shape
    scale = size / max(rows, columns)
    new_rows, new_columns = max(1, round(rows * scale)), max(1, round(columns * scale))
    small = np.asarray(Image.fromarray(image).resize((new_columns, new_rows), Image.BILINEAR))
    out = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - new_rows) // 2, (size - new_columns) // 2
    out[top : top + new_rows, left : left + new_columns] = small
    return out


def naive_loop(paths: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of the naive loop over ``paths``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        naive_8bit(path)
    return time.perf_counter() - wall, time.process_time() - cpu


def _naive_chunk(paths: list[str]) -> bool:
    naive_loop(paths)
    return "radnet_spark" not in sys.modules


def naive_parallel(paths: list[str], processes: int) -> tuple[float, bool]:
    """Seconds for ``processes`` naive loops over interleaved shares, started warm; and whether no
    worker imported radnet_spark."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_naive_chunk, [paths[:8]] * processes)  # imports and first calls, not timed
        start = time.perf_counter()
        clean = pool.map(_naive_chunk, [paths[i::processes] for i in range(processes)])
        return time.perf_counter() - start, all(clean)


# --- (b) the project's per-record function -----------------------------------------------------------


def project_loop(paths: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``parse_file`` over ``paths``."""
    from radnet_spark.config import load_config
    from radnet_spark.ingest.instance import parse_file
    from radnet_spark.ingest.job import parse_options

    options = parse_options(load_config(), salt="bench")
    sizes = [os.path.getsize(path) for path in paths]
    wall, cpu = time.perf_counter(), time.process_time()
    for path, size in zip(paths, sizes, strict=True):
        parse_file(path, size, options)
    return time.perf_counter() - wall, time.process_time() - cpu


def agreement(paths: list[str]) -> tuple[int, float]:
    """Files compared and the largest grey-level difference between the two images, on files with a window."""
    from radnet_spark.config import load_config
    from radnet_spark.ingest.instance import parse_file
    from radnet_spark.ingest.job import parse_options

    options = parse_options(load_config(), salt="bench")
    compared, largest = 0, 0.0
    for path in paths:
        row = parse_file(path, os.path.getsize(path), options)
        if row["image"] is None or row["window_source"] != "dicom":
            continue
        ours = np.frombuffer(row["image"], dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE).astype(int)
        largest = max(largest, float(np.abs(ours - naive_8bit(path).astype(int)).max()))
        compared += 1
    return compared, largest


def best_of(repeat: int, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """The smallest wall and the smallest CPU seconds over ``repeat`` runs."""
    runs = [run() for _ in range(repeat)]
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


# --- (c) Spark steady state, (d) the whole command ---------------------------------------------------


def spark_ingest(spark, dump: Path, warehouse: Path) -> tuple[float, dict[str, float]]:  # noqa: ANN001
    from radnet_spark.config import load_config
    from radnet_spark.ingest.job import ingest

    shutil.rmtree(warehouse, ignore_errors=True)
    start = time.perf_counter()
    summary = ingest(spark, str(dump), None, str(warehouse), load_config())
    return time.perf_counter() - start, summary.step_seconds


def _worker_package(iterator):  # noqa: ANN001, ANN202 - runs in a Spark Python worker
    import pandas as pd

    import radnet_spark

    for _ in iterator:
        yield pd.DataFrame({"package": [str(Path(radnet_spark.__file__).parent)]})


def spark_steady_state(dump: Path, half: Path, cores: int, repeat: int, scratch: Path) -> dict:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(cores * 2))
        .getOrCreate()
    )
    spark_ingest(spark, half, scratch / "warm")  # JVM and worker warm-up, not timed
    package = spark.range(1).mapInPandas(_worker_package, "package string").first()["package"]
    half_seconds, full_seconds, steps = math.inf, math.inf, {}
    for _ in range(repeat):
        half_seconds = min(half_seconds, spark_ingest(spark, half, scratch / "half")[0])
        seconds, run_steps = spark_ingest(spark, dump, scratch / "full")
        if seconds < full_seconds:
            full_seconds, steps = seconds, run_steps
    spark.stop()
    return {"half": half_seconds, "full": full_seconds, "steps": steps, "package": package}


def radnet_ingest_seconds(dump: Path, cores: int, warehouse: Path) -> float:
    """Wall seconds of ``python -m radnet_spark ingest`` into a new warehouse, process start to exit."""
    shutil.rmtree(warehouse, ignore_errors=True)
    command = [sys.executable, "-m", "radnet_spark", "ingest", "--dicom", str(dump), "--out", str(warehouse),
               "--master", f"local[{cores}]"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


# --- (f) compressed transfer syntaxes ----------------------------------------------------------------


def _encapsulated(ds: pydicom.Dataset, fragment_frames: list[bytes], syntax: str) -> pydicom.Dataset:
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate(fragment_frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def transcode(source: str, syntax: str, target: Path) -> None:
    """Write ``source`` (native, single frame, 16-bit) in ``syntax`` to ``target``."""
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

    target.parent.mkdir(parents=True, exist_ok=True)
    if syntax in (RLELossless, JPEG2000Lossless):
        ds = pydicom.dcmread(source)
        ds.compress(syntax, generate_instance_uid=False)
        ds.save_as(target, enforce_file_format=True)
    elif syntax == JPEGLSLossless:  # pydicom's JPEG-LS encoder needs pyjpegls; GDCM encodes it
        import gdcm

        reader = gdcm.ImageReader()
        reader.SetFileName(source)
        if not reader.Read():
            raise RuntimeError(f"GDCM cannot read {source}")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLSLossless))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError(f"GDCM cannot encode {source} as JPEG-LS")
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(target))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise RuntimeError(f"GDCM cannot write {target}")
    elif syntax == JPEGBaseline8Bit:  # 8 bits only: the frame windowed to 8 bits, then JPEG (Pillow)
        ds = pydicom.dcmread(source)
        buffer = io.BytesIO()
        Image.fromarray(naive_window(ds)).save(buffer, format="JPEG", quality=90)
        for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.WindowCenter, ds.WindowWidth = "127.5", "255"
        _encapsulated(ds, [buffer.getvalue()], syntax).save_as(target, enforce_file_format=True)
    else:
        raise ValueError(f"No transcoder for {syntax}")


def compressed_sets(files: list[str], count: int, folder: Path) -> dict[str, list[str]]:
    """``count`` single-frame 16-bit CT/MR files of the dump in each compressed syntax (reused when present)."""
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

    chosen: list[str] = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if (ds.get("Modality") in ("CT", "MR") and ds.get("BitsAllocated") == 16
                and int(ds.get("NumberOfFrames", 1) or 1) == 1):
            chosen.append(path)
        if len(chosen) == count:
            break
    sets: dict[str, list[str]] = {}
    for syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGBaseline8Bit):
        targets = []
        for index, source in enumerate(chosen):
            target = folder / syntax.keyword / f"{index:05d}.dcm"
            if not target.exists():
                transcode(source, syntax, target)
            targets.append(str(target))
        sets[syntax.name] = targets
    return sets


# --- the run -------------------------------------------------------------------------------------------


def _dump(data: Path, exams: int) -> tuple[Path, Path, list[str]]:
    from radnet_spark.synth import DefectRates, generate_pacs

    if not (data / "ground_truth.csv").exists():
        generate_pacs(data, exams=exams, seed=3, defect_rates=DefectRates.none())
    files = sorted(str(p) for p in (data / "dicom").rglob("*") if p.is_file())
    half = data / "half"
    if not half.exists():
        # A second, smaller dump of the same files (hard links) for the marginal rate.
        for path in files[: len(files) // 2]:
            target = half / Path(path).relative_to(data / "dicom")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return data / "dicom", half, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=100, help="exams of the generated dump (100: 2,058 files)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--data", default="data/bench/ingest", help="where the dump is generated/reused")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every measurement; the best of each is reported (other load only slows)")
    parser.add_argument("--compressed", type=int, default=0, metavar="N",
                        help="also time N files in each compressed transfer syntax (0: skip)")
    parser.add_argument("--skip-spark", action="store_true", help="only the one-process loops (a, b, e, f)")
    args = parser.parse_args()

    os.environ.setdefault("RADNET_SALT", "bench")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    import radnet_spark

    package = Path(radnet_spark.__file__).parent
    data = Path(args.data).resolve() / f"exams{args.exams}"
    dump, half, files = _dump(data, args.exams)
    usable = []
    for path in files:  # the naive loop decides which files every measurement uses
        try:
            naive_8bit(path)
        except Exception:  # noqa: BLE001 - a file the naive loop cannot do is left out of every row
            continue
        usable.append(path)
    print(f"project: {package}")
    print(f"dump: {dump}, {len(files)} files, {len(usable)} the naive loop handles (used everywhere below)")
    print(f"load before: {os.getloadavg()}")

    project_loop(usable[:20])  # imports, names lexicon, first-call costs
    naive_wall, naive_cpu = best_of(args.repeat, lambda: naive_loop(usable))
    project_wall, project_cpu = best_of(args.repeat, lambda: project_loop(usable))
    naive_rate, project_rate = len(usable) / naive_wall, len(usable) / project_wall
    parallel_seconds, clean = math.inf, True
    for _ in range(args.repeat):
        seconds, worker_clean = naive_parallel(usable, args.cores)
        parallel_seconds, clean = min(parallel_seconds, seconds), clean and worker_clean
    ceiling_rate = len(usable) / parallel_seconds
    compared, largest = agreement(usable[:200])
    print(f"(a) naive loop, 1 process:          {naive_rate:8.1f} files/s  "
          f"(CPU {1000 * naive_cpu / len(usable):.2f} ms/file)")
    print(f"(b) parse_file, 1 process:          {project_rate:8.1f} files/s  ({project_rate / naive_rate:.2f}x naive; "
          f"CPU {1000 * project_cpu / len(usable):.2f} ms/file, {naive_cpu / project_cpu:.2f}x naive)")
    print(f"(e) naive loop, {args.cores} processes:         {ceiling_rate:8.1f} files/s  "
          f"({ceiling_rate / args.cores / naive_rate:.2f}x naive per core: the parallel ceiling; "
          f"workers free of radnet_spark: {clean})")
    print(f"    images of (a) and (b), {compared} files with a DICOM window: largest difference {largest:.0f} grey levels")

    row = {"files": len(usable), "naive": naive_rate, "project": project_rate, "ceiling": ceiling_rate,
           "cpu_ratio": naive_cpu / project_cpu}
    if not args.skip_spark:
        scratch = Path(tempfile.mkdtemp(prefix="radnet-bench-"))
        # The half dump holds the first half of the sorted files; the naive loop handles all of them here.
        n_full, n_half = len(files), len(files) // 2
        spark = spark_steady_state(dump, half, args.cores, args.repeat, scratch)
        if spark["full"] <= spark["half"]:
            print("(c) the whole dump ran no slower than its half: too small or too noisy for a marginal rate")
        marginal_rate = (n_full - n_half) / max(spark["full"] - spark["half"], 1e-9)
        command_seconds = min(radnet_ingest_seconds(dump, args.cores, scratch / "cli") for _ in range(args.repeat))
        shutil.rmtree(scratch, ignore_errors=True)
        command_rate = n_full / command_seconds
        fixed = spark["full"] - n_full / marginal_rate
        print(f"    Spark workers imported: {spark['package']}")
        print(f"(c) Spark local[{args.cores}] steady state:   {marginal_rate:8.1f} files/s  "
              f"({marginal_rate / args.cores / naive_rate:.2f}x naive per core; "
              f"{marginal_rate / ceiling_rate:.2f}x the parallel ceiling); job in a warm session "
              f"{spark['full']:.1f} s, fixed cost {fixed:.1f} s")
        print(f"(d) radnet ingest, whole process:   {command_rate:8.1f} files/s  "
              f"({command_rate / args.cores / naive_rate:.2f}x naive per core), {command_seconds:.1f} s for {n_full} files")
        print("    steps of the whole-dump job: " + ", ".join(f"{k} {v:.1f} s" for k, v in spark["steps"].items()))
        row.update(marginal=marginal_rate, command=command_rate, command_seconds=command_seconds, fixed=fixed)
    print(f"load after: {os.getloadavg()}")
    per_core = args.cores * naive_rate
    print("| files | naive files/s | parse_file files/s (÷ naive; CPU ÷ naive) | Spark steady files/s (÷ naive "
          "per core) | radnet ingest s (÷ naive per core) | 2 naive processes (÷ 2 × naive) |")
    print(f"| {row['files']} | {naive_rate:.0f} | {project_rate:.0f} ({project_rate / naive_rate:.2f}; "
          f"{row['cpu_ratio']:.2f}) "
          + (f"| {row['marginal']:.0f} ({row['marginal'] / per_core:.2f}) "
             f"| {row['command_seconds']:.1f} ({row['command'] / per_core:.2f}) " if "marginal" in row else "| – | – ")
          + f"| {ceiling_rate:.0f} ({ceiling_rate / per_core:.2f}) |")

    if args.compressed:
        sets = compressed_sets(usable, args.compressed, data / "compressed")
        print("| transfer syntax | files | naive files/s per core | parse_file files/s per core | ÷ naive (CPU) |")
        for name, paths in sets.items():
            naive_loop(paths[:3])
            project_loop(paths[:3])
            naive = best_of(args.repeat, lambda paths=paths: naive_loop(paths))
            ours = best_of(args.repeat, lambda paths=paths: project_loop(paths))
            print(f"| {name} | {len(paths)} | {len(paths) / naive[0]:.0f} | {len(paths) / ours[0]:.0f} "
                  f"| {naive[0] / ours[0]:.2f} (CPU {naive[1] / ours[1]:.2f}) |")


if __name__ == "__main__":
    main()
