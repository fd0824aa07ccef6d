"""Reading and writing the warehouse's Parquet tables by name, committed data only.

Nothing here relies on an atomic rename of data files (object stores have none). Two kinds of
table, one rule: data becomes visible only through a small commit record written after it.

- **Run tables** (``files``, ``tags``, ``images``, ``rejects``, ``diagnoses``, ``labels``, the
  private exam name hashes) grow by runs. Each run writes its rows into its own partition folder
  (``tags/ingest_run_id=<run>/``, ``labels/pipeline_version=<v>/label_run_id=<run>/``) and then
  writes ``_runs/<record>.json`` naming those folders and their row counts. Readers read the
  folders named by committed records, nothing else, so the debris of a killed run (a half-written
  folder, a folder without record) is never seen; the next run under the warehouse lock deletes it.
- **Stage tables** (``tag_features``, ``embeddings_*``, ``fused``, work tables of ``run``) are
  written whole: the record ``_tables/<name>.json`` is deleted before the rewrite and written after
  it, so such a table is complete or absent.

See docs/tables.md for what a user's own Spark SQL must do to see committed data only.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, DataFrameWriter, SparkSession

from radnet_spark.errors import PipelineError, UserError
from radnet_spark.storage import read_json_object, to_local_path, to_uri, write_text_atomically

log = logging.getLogger(__name__)

# Rows per Parquet file: image rows are ~16 KB, so this keeps files near 64–128 MB at scale
# without a small-file explosion on appends.
MAX_RECORDS_PER_FILE = 8_192

RUNS = "_runs"  # commit records of runs: which partition folders of which run tables are visible
TABLES = "_tables"  # commit records of stage tables (written whole)
LOCK = "_lock"


class WarehouseBusyError(UserError):
    """Another process holds the warehouse lock."""


def table_path(warehouse: str, name: str) -> str:
    """URI of table ``name`` in ``warehouse`` (how Spark reads and writes it)."""
    return f"{to_uri(warehouse).rstrip('/')}/{name}"


def _local(warehouse: str, *parts: str) -> Path:
    return Path(to_local_path(table_path(warehouse, "/".join(parts))))


# --------------------------------------------------------------------------------------------
# Run tables: one partition folder per run, visible once the run's record exists.
# --------------------------------------------------------------------------------------------
def partition_columns(partition: str) -> list[str]:
    """The columns a partition folder such as ``pipeline_version=v1/label_run_id=r`` stands for."""
    return [part.split("=", 1)[0] for part in partition.split("/")]


def _parquet_rows(folder: Path) -> int | None:
    """Rows in the Parquet files of a folder, from their footers (no Spark job); None if none."""
    import pyarrow.parquet as pq

    files = [entry for entry in sorted(folder.iterdir()) if entry.name.endswith(".parquet")] if folder.is_dir() else []
    if not files:
        return None
    return sum(pq.read_metadata(entry).num_rows for entry in files)


def _parquet_writer(df: DataFrame, mode: str) -> DataFrameWriter:
    """The writer every table uses: bounded files, and no dictionary for the image column."""
    writer = df.write.mode(mode).option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
    if "image" in df.columns:
        # Every image is distinct: a dictionary for the column is built, then thrown away, per page.
        writer = writer.option("parquet.enable.dictionary#image", "false")
    return writer


def write_run_partition(df: DataFrame, warehouse: str, name: str, partition: str) -> int:
    """Append ``df`` to a run's own partition folder of table ``name``; return the rows it now holds.

    The partition columns are dropped from the rows (the folder name carries them). A folder left
    with no rows is removed, so a record only ever names folders with data. Nothing is visible
    until :func:`commit_run` names the folder.
    """
    path = f"{table_path(warehouse, name)}/{partition}"
    rows = df.drop(*[c for c in partition_columns(partition) if c in df.columns])
    _parquet_writer(rows, "append").parquet(path)
    folder = Path(to_local_path(path))
    if not folder.is_dir():
        # Never commit (or report) nothing in silence: Spark wrote elsewhere than the driver looks.
        raise PipelineError(
            f"Spark wrote table {name} somewhere else than {folder} (percent-encoded characters such as "
            "spaces in the warehouse path?); choose a warehouse path without them."
        )
    count = _parquet_rows(folder) or 0
    if count == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return count


def commit_run(
    warehouse: str, record: str, kind: str, partitions: dict[str, str], rows: dict[str, int], **info: Any
) -> Path:
    """Write ``_runs/<record>.json``, the last write of a run: from now on its partitions are visible.

    Args:
        record: the record's name (an ingest run's id; ``<run id>.label`` for a label run).
        kind: ``ingest`` or ``label``.
        partitions: table name → partition folder under the table, for every table the run wrote.
        rows: table name → rows the run wrote there.
        info: more facts kept in the record (run id, pipeline version, ...).
    """
    target = _local(warehouse, RUNS, f"{record}.json")
    body = {"record": record, "kind": kind, "committed_at": datetime.now(UTC).isoformat(),
            "partitions": partitions, "rows": rows, **info}
    # One line: `SELECT * FROM json.`WAREHOUSE/_runs`` reads every record as one row (docs/tables.md).
    write_text_atomically(target, json.dumps(body, default=str) + "\n")
    return target


def uncommit_run(warehouse: str, record: str) -> None:
    """Delete a run's record, hiding its partitions (before they are rewritten in place)."""
    _local(warehouse, RUNS, f"{record}.json").unlink(missing_ok=True)


def committed_runs(warehouse: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every committed run record (of one kind), oldest first."""
    folder = _local(warehouse, RUNS)
    if not folder.is_dir():
        return []
    records = []
    for entry in sorted(folder.iterdir()):
        if entry.name.endswith(".json") and not entry.name.startswith("."):
            record = read_json_object(entry)
            if record is not None and isinstance(record.get("partitions"), dict) and (
                kind is None or record.get("kind") == kind
            ):
                records.append(record)
    return sorted(records, key=lambda r: (str(r.get("committed_at", "")), str(r.get("record", ""))))


def committed_partitions(warehouse: str, name: str) -> list[str]:
    """The partition folders of run table ``name`` that committed runs name."""
    return sorted({r["partitions"][name] for r in committed_runs(warehouse) if name in r["partitions"]})


def committed_row_counts(warehouse: str) -> dict[str, int]:
    """Rows of every run table in committed runs, from one read of the records (no Spark job).

    A table appears once a committed run names it, as :func:`table_exists` sees run tables.
    """
    counts: dict[str, int] = {}
    for record in committed_runs(warehouse):
        for name in record["partitions"]:
            counts[name] = counts.get(name, 0) + int(record.get("rows", {}).get(name, 0))
    return counts


def refuse_pre_commit_warehouse(warehouse: str, names: Iterable[str]) -> None:
    """Refuse a warehouse written before commit records existed: its rows would all look like debris.

    Otherwise create ``_runs/`` (before the run writes anything), which marks the warehouse as one
    whose uncommitted folders are debris.
    """
    runs = _local(warehouse, RUNS)
    if runs.is_dir():
        return
    for name in names:
        folder = _local(warehouse, name)
        if folder.is_dir() and any(folder.iterdir()):
            raise PipelineError(
                f"Warehouse {warehouse} holds a {name} table but no {RUNS}/ commit records (it was written "
                "by an older radnet-spark); ingest into a new warehouse folder."
            )
    runs.mkdir(parents=True, exist_ok=True)


def remove_uncommitted(warehouse: str, names: Iterable[str]) -> list[str]:
    """Delete every folder and file of run tables ``names`` that no committed record names.

    Call it only under :func:`warehouse_lock`: an uncommitted folder is then a killed run's debris,
    never a run in progress. Returns the removed paths, relative to the warehouse.
    """
    records = committed_runs(warehouse)
    removed: list[str] = []
    for name in names:
        keep = {r["partitions"][name] for r in records if name in r["partitions"]}
        root = _local(warehouse, name)
        if not root.is_dir():
            continue
        prefixes = {"/".join(k.split("/")[:depth]) for k in keep for depth in range(1, k.count("/") + 1)}
        _prune(root, "", name, keep, prefixes, removed)
    if removed:
        log.info("removed %d uncommitted folders and files of killed runs: %s", len(removed), ", ".join(removed[:5]))
    return removed


def _prune(folder: Path, relative: str, name: str, keep: set[str], prefixes: set[str], removed: list[str]) -> None:
    for entry in sorted(folder.iterdir()):
        rel = f"{relative}/{entry.name}" if relative else entry.name
        if rel in keep:
            continue
        if rel in prefixes and entry.is_dir():
            _prune(entry, rel, name, keep, prefixes, removed)
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(f"{name}/{rel}")


# --------------------------------------------------------------------------------------------
# Stage tables: written whole, visible once ``_tables/<name>.json`` exists.
# --------------------------------------------------------------------------------------------
def _stage_record(warehouse: str, name: str) -> Path:
    return _local(warehouse, TABLES, f"{name}.json")


def write_table(df: DataFrame, warehouse: str, name: str, partition_by: str | None = None) -> str:
    """Replace stage table ``name``: hidden while it is rewritten, visible again once complete."""
    path = table_path(warehouse, name)
    record = _stage_record(warehouse, name)
    record.unlink(missing_ok=True)
    writer = _parquet_writer(df, "overwrite")
    if partition_by is not None:
        writer = writer.partitionBy(partition_by)
    writer.parquet(path)
    write_text_atomically(record, json.dumps({"table": name, "written_at": datetime.now(UTC).isoformat()}))
    return path


def drop_table(warehouse: str, name: str) -> None:
    """Remove a stage table and its record (record first, so it is never visible half-deleted)."""
    _stage_record(warehouse, name).unlink(missing_ok=True)
    shutil.rmtree(_local(warehouse, name), ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Reading: committed data only.
# --------------------------------------------------------------------------------------------
def table_exists(warehouse: str, name: str) -> bool:
    """A table exists once committed: a stage table by its record, a run table by a run's record."""
    return _stage_record(warehouse, name).is_file() or bool(committed_partitions(warehouse, name))


def read_table(
    spark: SparkSession, warehouse: str, name: str, own_partitions: Iterable[str] = ()
) -> DataFrame:
    """The committed rows of table ``name``.

    Args:
        own_partitions: partition folders of the calling run, not committed yet, to read as well
            (a run reading back what it wrote before its commit).
    """
    root = table_path(warehouse, name)
    if _stage_record(warehouse, name).is_file():
        return spark.read.option("mergeSchema", "true").parquet(root)
    partitions = sorted(set(committed_partitions(warehouse, name)) | set(own_partitions))
    if not partitions:
        raise PipelineError(f"Table {name} does not exist in {warehouse}; run the stage that writes it first.")
    # Appends from later runs may add tag columns; merge their schemas on read.
    return (spark.read.option("basePath", root).option("mergeSchema", "true")
            .parquet(*[f"{root}/{partition}" for partition in partitions]))


# --------------------------------------------------------------------------------------------
# The warehouse lock: one writing run (ingest, label, run) per warehouse at a time.
# --------------------------------------------------------------------------------------------
_HELD: dict[str, int] = {}


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat(timespec="seconds")}


def _busy(warehouse: str, owner: dict[str, Any] | None) -> WarehouseBusyError:
    holder = (f"{owner.get('command', 'a run')} (pid {owner.get('pid')} on {owner.get('host')} since {owner.get('since')})"
              if owner else "another process")
    return WarehouseBusyError(
        f"Warehouse {warehouse} is being written by {holder}; run again when it has finished."
    )


@contextmanager
def _directory_lock(warehouse: str, command: str) -> Iterator[None]:
    """Fallback where the filesystem refuses POSIX locks: an exclusively created folder.

    A holder that died on this host is detected by its pid; on another host the folder must be
    removed by hand once the holder is known to be gone (the refusal names it).
    """
    folder = _local(warehouse, f"{LOCK}.d")
    for _ in range(2):
        try:
            folder.mkdir(parents=False)
            break
        except FileExistsError:
            owner = read_json_object(folder / "owner.json")
            same_host_dead = owner is not None and owner.get("host") == socket.gethostname() and not _alive(owner.get("pid"))
            if not same_host_dead:
                raise _busy(warehouse, owner) from None
            shutil.rmtree(folder, ignore_errors=True)
    else:
        raise _busy(warehouse, None)
    write_text_atomically(folder / "owner.json", json.dumps({**_owner(), "command": command}))
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


@contextmanager
def warehouse_lock(warehouse: str, command: str) -> Iterator[None]:
    """Hold the warehouse's write lock, or raise a one-sentence :class:`WarehouseBusyError`.

    A POSIX record lock on ``WAREHOUSE/_lock``: the kernel (or the NFS lock manager) releases it
    when the holder dies, so a killed run never leaves a stale lock. Re-entrant within a process
    (``label`` runs an ingest).
    """
    import fcntl

    key = str(_local(warehouse))
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path = _local(warehouse, LOCK)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.close()
        owner = read_json_object(path) if error.errno in (errno.EACCES, errno.EAGAIN) else None
        if error.errno in (errno.EACCES, errno.EAGAIN):
            raise _busy(warehouse, owner) from None
        if error.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        log.warning("Warehouse %s does not support POSIX locks (%s); using a lock folder.", warehouse, error)
        handle = None
    if handle is None:
        with _directory_lock(warehouse, command):
            _HELD[key] = 1
            try:
                yield
            finally:
                _HELD.pop(key, None)
        return
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({**_owner(), "command": command}))
        handle.flush()
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
            fcntl.lockf(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


CANONICAL_PARTITIONS = 16


def canonical_layout(df: DataFrame, key: str = "sop_instance_uid", partition_by: str | None = None) -> DataFrame:
    """Rows in files decided by the key alone, so training streams the same batches on any cluster.

    Hash partitioning into a fixed count and sorting inside each partition make the files' content
    and order independent of how many executors wrote them (spark.sql.shuffle.partitions, AQE).
    A table written with ``partitionBy(partition_by)`` must sort by that column first: the writer
    sorts by it anyway, and Spark then drops a key-only sort as redundant, leaving the rows in
    arrival order, which depends on the input's file layout.
    """
    order = [partition_by, key] if partition_by else [key]
    return df.repartition(CANONICAL_PARTITIONS, key).sortWithinPartitions(*order)
