"""Crash safety: `radnet ingest` and `radnet label` killed with SIGKILL at any step, then run again.

Each killed run is the real CLI in its own process group (driver, JVM and Python workers die
together, as on a pre-empted machine), killed the moment its log announces a step boundary, or
while a table's Parquet files are being written. Afterwards the committed warehouse must be as
before the run (or, past the commit record, as after it), and a rerun must leave every table with
the same rows as an uninterrupted run: none lost, none twice.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.config import load_config
from radnet_spark.ingest.exam_names import EXAM_NAME_HASHES
from radnet_spark.ingest.job import ingest
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import RUNS, committed_runs, read_table, table_exists

SALT = "test-salt-not-secret"
INGEST_TABLES = ("files", "tags", "images", "rejects", "diagnoses", EXAM_NAME_HASHES)
RUN_COLUMNS = ("ingest_run_id", "label_run_id", "labelled_at")


# --------------------------------------------------------------------------------------------
# Helpers: the CLI killed at a log line, and tables compared as multisets of rows.
# --------------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RADNET_SALT=SALT, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               PYTHONUNBUFFERED="1")
    return env


def _start(args: list[str], log_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "radnet_spark", *args, "--master", "local[2]"],
        stdout=open(log_path.with_suffix(".out"), "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True,
    )


def _kill(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def _part_files(warehouse: Path, pattern: str) -> bool:
    return any(warehouse.glob(pattern))


def run_and_kill(args: list[str], warehouse: Path, log_path: Path, announced: str, mid_write: str | None = None) -> str:
    """Run the CLI and SIGKILL its process group once a log line matches ``announced`` (a regex).

    With ``mid_write`` (a glob under the warehouse), wait after the announcement until a Parquet
    part file matches it (a task is writing the table) and kill then.
    """
    process = _start(args, log_path)
    lines: list[str] = []
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if re.search(announced, line):
            if mid_write is not None:
                deadline = time.monotonic() + 60
                while not _part_files(warehouse, mid_write) and time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.005)
                assert _part_files(warehouse, mid_write), f"no part file {mid_write} appeared"
            _kill(process)
            break
    else:
        process.wait(timeout=60)
        log_path.write_text("".join(lines), encoding="utf-8")
        pytest.fail(f"the run ended (exit {process.returncode}) without logging {announced!r}:\n{''.join(lines[-20:])}")
    log_path.write_text("".join(lines), encoding="utf-8")
    assert process.returncode == -signal.SIGKILL
    return "".join(lines)


def _rows(df: DataFrame) -> DataFrame:
    keep = sorted(c for c in df.columns if c not in RUN_COLUMNS and c != "distance")
    return df.select(*keep)


def assert_same_rows(spark, warehouse: Path, reference: Path, names: tuple[str, ...]) -> None:
    """Every table holds the reference's rows, each as often (run ids and timestamps aside)."""
    for name in names:
        assert table_exists(str(warehouse), name) == table_exists(str(reference), name), name
        if not table_exists(str(reference), name):
            continue
        got, want = _rows(read_table(spark, str(warehouse), name)), _rows(read_table(spark, str(reference), name))
        assert got.columns == want.columns, name
        missing, extra = want.exceptAll(got).count(), got.exceptAll(want).count()
        assert (missing, extra) == (0, 0), f"{name}: {missing} rows lost, {extra} rows extra or twice"


def assert_no_debris(warehouse: Path, names: tuple[str, ...]) -> None:
    """Every folder of a run table is one a committed record names (the rerun cleaned up)."""
    records = committed_runs(str(warehouse))
    for name in names:
        root = warehouse / name
        if not root.is_dir():
            continue
        named = {r["partitions"][name].split("/")[0] for r in records if name in r["partitions"]}
        assert {p.name for p in root.iterdir()} <= named, name


# --------------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crash_pacs")
    # The generator's default defects: about a hundred files, a few of them rejected.
    generate_pacs(out, exams=4, seed=3, workers=1)
    return out


@pytest.fixture(scope="module")
def reference(spark, dump, tmp_path_factory) -> Path:
    """One uninterrupted ingest of the dump."""
    warehouse = tmp_path_factory.mktemp("crash_reference")
    ingest(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), str(warehouse), load_config())
    for name in ("files", "tags", "images", "rejects", "diagnoses"):
        assert read_table(spark, str(warehouse), name).limit(1).count() == 1, f"reference has no {name} rows"
    return warehouse


def _ingest_args(dump: Path, warehouse: Path) -> list[str]:
    return ["ingest", "--dicom", str(dump / "dicom"), "--diagnoses", str(dump / "diagnoses.csv"),
            "--out", str(warehouse)]


# Every step boundary of ingest (the log line after each step), and once inside a table write.
# The kill lands before the commit record, except at the last two: within milliseconds of it, past it.
INGEST_KILLS = [
    ("list done", None),
    ("parse done", None),
    ("exam names done", None),
    ("deduplicate done", None),
    ("write tags done", None),
    ("write images ...", "images/**/part-*.parquet"),
    ("write images done", None),
    ("write rejects done", None),
    ("write files done", None),
    ("diagnoses done", None),
]


def test_an_ingest_killed_at_every_step_commits_nothing_and_a_rerun_finishes_it(spark, dump, reference, tmp_path):
    """Killed at each step in turn, each run the rerun of the one before (so it meets its debris).

    The last run is killed right after its commit record: it must already be complete, and one
    more run must find nothing to do.
    """
    warehouse = tmp_path / "warehouse"
    for number, (announced, mid_write) in enumerate([*INGEST_KILLS, ("commit done", None)]):
        run_and_kill(_ingest_args(dump, warehouse), warehouse, tmp_path / f"killed-{number}.log",
                     rf"ingest \S+: {re.escape(announced)}", mid_write=mid_write)
        records = committed_runs(str(warehouse))
        if announced == "commit done" or (announced == "diagnoses done" and records):
            # Past the commit record (at `diagnoses done` it may make it within milliseconds).
            assert len(records) == 1, announced
            assert_same_rows(spark, warehouse, reference, INGEST_TABLES)
            break
        assert records == [], f"killed at {announced!r}: the run became visible without its commit record"
        assert not any(table_exists(str(warehouse), name) for name in INGEST_TABLES), announced
        if announced == "write tags done":  # the case: a rerun must not call these rows duplicates
            assert any((warehouse / "tags").glob("ingest_run_id=*/*.parquet"))

    summary = ingest(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), str(warehouse), load_config())
    assert summary.new_files == 0
    assert_same_rows(spark, warehouse, reference, INGEST_TABLES)
    assert_no_debris(warehouse, INGEST_TABLES)
    assert not any((warehouse / "_staging").glob("*"))


def test_a_second_ingest_into_a_busy_warehouse_refuses_in_one_sentence(spark, dump, reference, tmp_path):
    """Two ingests of overlapping dumps at once: the second refuses (exit 2); later both are committed."""
    warehouse = tmp_path / "warehouse"
    wider = tmp_path / "wider"  # the first dump plus one more exam: the two dumps overlap
    shutil.copytree(dump / "dicom", wider / "first")
    generate_pacs(tmp_path / "more", exams=1, seed=22, defect_rates=DefectRates.none(), workers=1)
    shutil.copytree(tmp_path / "more" / "dicom", wider / "second")

    first = _start(_ingest_args(dump, warehouse), tmp_path / "first.log")
    assert first.stderr is not None
    for line in first.stderr:
        if re.search(r"ingest \S+: list \.\.\.", line):  # the first holds the lock now
            break
    # Paused (driver, JVM and workers) while the second tries, so the two surely overlap.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "radnet_spark", "ingest", "--dicom", str(wider), "--out", str(warehouse),
             "--master", "local[2]"],
            capture_output=True, text=True, env=_env(), timeout=300,
        )
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    rest = first.stderr.read()
    assert first.wait(timeout=300) == 0, rest[-2000:]
    assert second.returncode == 2, second.stderr[-2000:]
    errors = [line for line in second.stderr.splitlines() if line.startswith("radnet ingest: error:")]
    assert len(errors) == 1 and "is being written by ingest" in errors[0], second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    assert_same_rows(spark, warehouse, reference, INGEST_TABLES)

    # Once the first has finished, the second commits too: every file of the wider dump once.
    ingest(spark, str(wider), None, str(warehouse), load_config())
    files = read_table(spark, str(warehouse), "files")
    on_disk = sum(1 for p in wider.rglob("*") if p.is_file()) + sum(1 for p in (dump / "dicom").rglob("*") if p.is_file())
    assert files.count() == files.select("path").distinct().count() == on_disk
    # The copies in wider/first hold the same SOPInstanceUIDs as the first dump: rejected as duplicates.
    copies = files.where(F.col("path").startswith(str(wider / "first")))
    assert copies.where("status = 'ok'").count() == 0


# --------------------------------------------------------------------------------------------
# label
# --------------------------------------------------------------------------------------------
FAST = [
    "tags.missforest_trees=4", "tags.missforest_max_iter=1", "tags.ae_max_epochs=2",
    "image.max_epochs=1", "image.cae_filters=[4,4,8,8]", "image.pca_components=8",
    "text.epochs=3", "text.vector_size=8", "text.min_word_frequency=1",
    "cluster.k=3", "split.train=0.5", "split.validation=0.25", "split.test=0.25",  # exams in every split
]


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(warehouse after `run`, pipeline version folder, new dump) — the starting point of every label."""
    from radnet_spark.pipeline import run

    root = tmp_path_factory.mktemp("crash_label")
    generate_pacs(root / "pacs", exams=12, seed=23, defect_rates=DefectRates.none(), workers=1)
    generate_pacs(root / "new", exams=2, seed=24, defect_rates=DefectRates.none(), workers=1)
    warehouse = root / "warehouse"
    result = run(spark, str(root / "pacs" / "dicom"), str(root / "pacs" / "diagnoses.csv"), str(warehouse),
                 load_config(None, FAST), models_root=str(root / "models"), until="cluster")
    result.pipeline.update_manifest(complete=True)  # evaluate and report add nothing label needs
    return warehouse, result.pipeline.root, root / "new"


@pytest.fixture(scope="module")
def label_reference(spark, trained, tmp_path_factory) -> Path:
    from radnet_spark.pipeline import label

    warehouse, pipeline, new = trained
    target = tmp_path_factory.mktemp("crash_label_reference") / "warehouse"
    shutil.copytree(warehouse, target)
    result = label(spark, str(pipeline), str(new / "dicom"), str(new / "diagnoses.csv"), str(target))
    assert result.new_labels > 0
    return target


def assert_same_labels(spark, warehouse: Path, reference: Path) -> None:
    """Same labelled instances and clusters; distances equal up to float noise between sessions."""
    assert_same_rows(spark, warehouse, reference, ("labels",))
    got = read_table(spark, str(warehouse), "labels").select("sop_instance_uid", "pipeline_version", "distance")
    want = read_table(spark, str(reference), "labels").select(
        "sop_instance_uid", "pipeline_version", F.col("distance").alias("want"))
    worst = got.join(want, ["sop_instance_uid", "pipeline_version"]).agg(F.max(F.abs(F.col("distance") - F.col("want"))))
    assert (worst.first()[0] or 0.0) < 1e-4


# Every step boundary of label; its ingest's own steps are those of ingest, tested above.
LABEL_KILLS = ["ingest done", "write labels ...", "write labels done"]


def test_a_label_killed_at_every_step_commits_no_labels_and_a_rerun_finishes_it(
    spark, trained, label_reference, tmp_path
):
    """Killed at each step in turn, then right after its commit record (complete by then)."""
    from radnet_spark.pipeline import label

    source, pipeline, new = trained
    warehouse = tmp_path / "warehouse"
    shutil.copytree(source, warehouse)
    before = {r["record"] for r in committed_runs(str(warehouse), "label")}
    args = ["label", "--pipeline", str(pipeline), "--dicom", str(new / "dicom"),
            "--diagnoses", str(new / "diagnoses.csv"), "--out", str(warehouse)]
    for number, announced in enumerate([*LABEL_KILLS, "commit done"]):
        run_and_kill(args, warehouse, tmp_path / f"killed-{number}.log", rf"label \S+: {re.escape(announced)}")
        after_kill = {r["record"] for r in committed_runs(str(warehouse), "label")}
        if announced == "commit done":
            assert len(after_kill - before) == 1
            assert_same_labels(spark, warehouse, label_reference)
        else:
            assert after_kill == before, f"killed at {announced!r}: labels became visible without their record"

    assert label(spark, str(pipeline), str(new / "dicom"), str(new / "diagnoses.csv"), str(warehouse)).new_labels == 0
    assert_same_labels(spark, warehouse, label_reference)
    assert_same_rows(spark, warehouse, label_reference, INGEST_TABLES)
    assert_no_debris(warehouse, ("labels", *INGEST_TABLES))


# --------------------------------------------------------------------------------------------
# stage tables and pipeline versions
# --------------------------------------------------------------------------------------------
def test_a_stage_table_is_hidden_while_it_is_rewritten(spark, tmp_path):
    from radnet_spark.tables import write_table

    warehouse = str(tmp_path)
    write_table(spark.range(5), warehouse, "fused")
    assert read_table(spark, warehouse, "fused").count() == 5

    def explode(_rows):  # noqa: ANN001, ANN202 - fails the write half-way, like a kill
        raise RuntimeError("killed")

    with pytest.raises(Exception, match="killed"):
        write_table(spark.range(5).mapInPandas(explode, "id long"), warehouse, "fused")
    assert not table_exists(warehouse, "fused")


def test_an_unfinished_pipeline_version_is_never_listed_nor_latest(tmp_path):
    import json

    from radnet_spark.artifacts import latest_pipeline, list_pipelines
    from radnet_spark.cli import main
    from radnet_spark.errors import PipelineError

    models = tmp_path / "models"
    done, half, torn = (models / "default" / v for v in ("v1", "v2", "v3"))
    for folder, manifest in ((done, {"complete": True, "created_at": "2026-01-01"}),
                             (half, {"complete": False, "created_at": "2026-02-01"})):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"name": "default", "version": folder.name, **manifest}))
    torn.mkdir(parents=True)
    (torn / "manifest.json").write_text('{"name": "default", "version": "v3", "complete": tr')  # killed mid-write
    assert [row["version"] for row in list_pipelines(models)] == ["v1"]
    assert latest_pipeline(models, "default") == str(done)
    assert main(["models", "list", "--models", str(models)]) == 0
    with pytest.raises(PipelineError):
        latest_pipeline(models, "other")


def test_commit_records_that_do_not_parse_commit_nothing(spark, dump, reference, tmp_path):
    warehouse = tmp_path / "warehouse"
    shutil.copytree(reference, warehouse)
    record = next((warehouse / RUNS).glob("*.json"))
    record.write_text(record.read_text(encoding="utf-8")[:40], encoding="utf-8")  # a torn record
    assert not table_exists(str(warehouse), "tags")
    ingest(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), str(warehouse), load_config())
    assert_same_rows(spark, warehouse, reference, INGEST_TABLES)


def test_the_documented_spark_sql_sees_committed_runs_only(spark, reference, tmp_path):
    """docs/tables.md: a user's own SQL over the warehouse, filtered on the commit records."""
    warehouse = tmp_path / "warehouse"
    shutil.copytree(reference, warehouse)
    committed = next((warehouse / "tags").glob("ingest_run_id=*"))
    shutil.copytree(committed, warehouse / "tags" / "ingest_run_id=20990101T000000Z-killed")  # debris
    spark.sql(f"CREATE OR REPLACE TEMP VIEW radnet_runs AS SELECT * FROM json.`{warehouse}/_runs`")
    tags = spark.sql(
        f"SELECT * FROM parquet.`{warehouse}/tags` "
        "WHERE ingest_run_id IN (SELECT run_id FROM radnet_runs WHERE kind = 'ingest')"
    )
    assert tags.count() == read_table(spark, str(warehouse), "tags").count()
    assert spark.sql(f"SELECT * FROM parquet.`{warehouse}/tags`").count() == 2 * tags.count()


def test_without_posix_locks_a_lock_folder_refuses_a_live_holder_and_replaces_a_dead_one(tmp_path, monkeypatch):
    import errno
    import fcntl
    import json

    from radnet_spark import tables
    from radnet_spark.tables import WarehouseBusyError, warehouse_lock

    def no_locks(*_args):  # noqa: ANN002, ANN202 - a filesystem without POSIX locks
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    warehouse = str(tmp_path)
    with warehouse_lock(warehouse, "ingest"):
        assert (tmp_path / "_lock.d" / "owner.json").is_file()
        with pytest.raises(WarehouseBusyError, match="is being written by ingest"), \
                tables._directory_lock(warehouse, "label"):  # another process's attempt
            pass
    assert not (tmp_path / "_lock.d").exists()

    (tmp_path / "_lock.d").mkdir()  # left by a holder that was killed on this host
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = {"pid": int(dead.stdout), "host": tables.socket.gethostname(), "command": "ingest"}
    (tmp_path / "_lock.d" / "owner.json").write_text(json.dumps(owner))
    with warehouse_lock(warehouse, "ingest"):
        assert json.loads((tmp_path / "_lock.d" / "owner.json").read_text())["pid"] == os.getpid()
