"""Where files live: URIs for Spark, local paths for Python readers, and listing a dump in parallel.

Inputs (the DICOM dump, the diagnoses file) are either local paths (a local disk, a shared mount
such as NFS, ``/dbfs`` or ``/Volumes``; ``file:`` and ``dbfs:/`` URIs are translated) or object-store
URIs (``s3://``, ``gs://``, ``abfss://``, any scheme fsspec knows). Object stores are listed and read
with fsspec inside the tasks, each file opened as a stream with ranged reads; the filesystem
packages are optional extras (``[s3]``, ``[gcs]``, ``[azure]``). Credentials come only from where
those packages look (environment, instance profile or managed identity, their config files): radnet
never takes, stores or logs one. Tables are written by Spark, but the warehouse must be a path the
driver's Python can write too (a local folder or a shared mount): docs/cluster.md says which are tested.

Symbolic links: a link to a file and the file are one input, listed once under the file's real
path (the link's own path is recorded nowhere); links to directories are not followed (a link
loop or a second route into the same tree cannot list a file twice); a dangling link is listed
under its own path with size -1, and the reader rejects it as ``broken_link``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

import pandas as pd

from radnet_spark.errors import InputPathError, UserError

LISTING_SCHEMA = "path string, size long, mtime timestamp"


def to_local_path(uri: str) -> str:
    """Turn ``file:`` URIs, ``dbfs:/`` paths and plain paths into a path Python can open."""
    if uri.startswith("dbfs:/"):
        return "/dbfs/" + uri[len("dbfs:/"):].lstrip("/")
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


def to_uri(path: str | os.PathLike[str]) -> str:
    """A URI Spark resolves the same way on every node: absolute ``file://`` for local paths."""
    text = str(path)
    if "://" in text or text.startswith(("dbfs:/", "file:")):
        return text
    return Path(text).resolve().as_uri()


def is_remote(uri: str) -> bool:
    """True for an object-store URI (``s3://``, ``gs://``, ``abfss://``, …) that fsspec reads.

    ``file:`` and ``dbfs:/`` are local (``dbfs:/`` through Databricks' FUSE mount), like plain paths.
    """
    scheme, sep, _ = uri.partition("://")
    return bool(sep) and scheme.lower() not in ("file", "dbfs", "") and scheme.isascii() and "/" not in scheme


# The extra that brings each object store's fsspec implementation (see setup.py).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "abfs": "azure", "abfss": "azure", "az": "azure"}
# Remote reads fetch this much per request: a DICOM header usually fits in one, and pixel data
# (read only for image instances) is one more ranged request of its exact length.
REMOTE_BLOCK_BYTES = 256 * 1024


def remote_filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem of an object-store URI and the URI's path in its own spelling.

    Raises:
        InputPathError: The scheme's filesystem package is not installed (names the extra).
    """
    import fsspec.core

    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    # fsspec registers adlfs as abfs:// and az://; abfss:// is Hadoop's TLS spelling of the same URI.
    target = f"abfs://{rest}" if scheme == "abfss" else uri
    try:
        return fsspec.core.url_to_fs(target)
    except (ImportError, ValueError) as error:
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'radnet-spark[{extra}]'" if extra else f"install the fsspec package for {scheme}://"
        raise InputPathError(
            f"Reading {scheme}:// paths needs its filesystem package ({type(error).__name__}); {hint} "
            "on the driver and every executor."
        ) from None


def _remote_uri(root_uri: str, root_path: str, path: str) -> str:
    """A listed object's URI in the spelling the user gave for the root (scheme, account, bucket).

    fsspec returns paths without scheme and, for Azure, without the account; prefixing the remainder
    below the root with the user's root URI keeps every path openable and stable across runs.
    """
    relative = path[len(root_path):].lstrip("/") if path.startswith(root_path) else path
    return root_uri.rstrip("/") + "/" + relative if relative else root_uri


def _remote_error(error: Exception, what: str, uri: str, fs: Any, path: str) -> InputPathError:
    """One sentence for a remote path that cannot be used: missing bucket, missing path, denied, unreachable."""
    if isinstance(error, PermissionError):
        return InputPathError(
            f"{what} {uri} cannot be read: access denied for the credentials in use "
            "(environment, instance profile or the filesystem's own config)."
        )
    if isinstance(error, FileNotFoundError):
        bucket = path.split("/", 1)[0]
        try:
            bucket_exists = bool(fs.ls(bucket, detail=False)) or fs.exists(bucket)
        except Exception:  # noqa: BLE001 - the first error already says enough
            bucket_exists = False
        if not bucket_exists:
            return InputPathError(f"{what} {uri} does not exist: there is no bucket or container {bucket!r}.")
        return InputPathError(f"{what} {uri} does not exist in bucket or container {bucket!r}.")
    return InputPathError(f"{what} {uri} cannot be reached ({type(error).__name__}).")


def require_directory(path: str, what: str) -> str:
    """Return the local path of an existing directory (or the URI of a remote one), else raise.

    Raises:
        InputPathError: One sentence: the folder, bucket or container is missing, access is denied,
            or the store cannot be reached.
    """
    if is_remote(path):
        fs, root = remote_filesystem(path)
        try:
            fs.invalidate_cache()
            if not fs.isdir(root):
                # isdir is False for a missing bucket, a missing prefix and a file alike: ls tells which.
                if fs.isfile(root):
                    raise InputPathError(f"{what} {path} is a file, not a folder.")
                fs.ls(root, detail=False)
                raise FileNotFoundError(root)
        except InputPathError:
            raise
        except Exception as error:  # noqa: BLE001 - every store raises its own types
            raise _remote_error(error, what, path, fs, root) from None
        return path
    local = to_local_path(path)
    if not os.path.isdir(local):
        raise InputPathError(f"{what} {path} is not a directory that exists on this machine.")
    return local


def require_file(path: str, what: str) -> str:
    """Return the local path of an existing file (or the URI of a remote one), else raise InputPathError."""
    if is_remote(path):
        fs, target = remote_filesystem(path)
        try:
            fs.invalidate_cache()
            if not fs.isfile(target):
                fs.info(target)  # raises the store's reason (missing, denied); a folder passes here
                raise InputPathError(f"{what} {path} is a folder, not a file.")
        except InputPathError:
            raise
        except Exception as error:  # noqa: BLE001
            raise _remote_error(error, what, path, fs, target) from None
        return path
    local = to_local_path(path)
    if not os.path.isfile(local):
        raise InputPathError(f"{what} {path} is not a file that exists on this machine.")
    return local


def open_remote(uri: str, size: int | None = None) -> BinaryIO:
    """Open an object-store file for reading as a seekable stream of ranged requests.

    Nothing is downloaded up front: each read fetches what it needs plus up to
    ``REMOTE_BLOCK_BYTES`` ahead, so a header read costs one request and the deferred pixel data
    one more. Without ``size`` (from the listing) the store is first asked for it, one metadata
    request. Raises the store's ``OSError`` (``FileNotFoundError``, ``PermissionError``, …).
    """
    fs, path = remote_filesystem(uri)
    options: dict[str, Any] = {"block_size": REMOTE_BLOCK_BYTES, "cache_type": "readahead"}
    if size is not None and size >= 0 and fs.protocol and "s3" in fs.protocol:
        options["size"] = size  # s3fs skips its HEAD request when the listing's size is given
    return fs.open(path, "rb", **options)


def _mtime(seconds: float) -> pd.Timestamp:
    # Spark timestamps are microseconds; nanoseconds would fail Arrow's safe cast. In UTC, so that
    # Spark takes the instant as it is: a naive value would be read as session-local time.
    return pd.Timestamp(round(seconds * 1_000_000), unit="us", tz="UTC")


def _remote_mtime(info: dict[str, Any]) -> pd.Timestamp:
    """Modification time of a listed object: each store names it differently (S3, GCS, Azure)."""
    for key in ("LastModified", "last_modified", "mtime", "updated", "modified"):
        value = info.get(key)
        if isinstance(value, datetime):
            return _mtime(value.timestamp())
        if isinstance(value, int | float):
            return _mtime(float(value))
        if isinstance(value, str):
            try:
                return _mtime(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
            except ValueError:
                continue
    return _mtime(0)


def _remote_row(root_uri: str, root_path: str, info: dict[str, Any]) -> tuple[str, int, pd.Timestamp]:
    size = info.get("size")
    return _remote_uri(root_uri, root_path, info["name"]), int(size if size is not None else -1), _remote_mtime(info)


def _path_row(path: str) -> tuple[str, int, pd.Timestamp] | None:
    """The listing row of one non-directory entry: a link resolves to its target's real path.

    None for a link to a directory (not followed) and for anything that is not a regular file
    (sockets, FIFOs, devices).
    """
    try:
        stat = os.stat(path)
    except OSError:
        # A dangling link (or a file gone since listing) still is an input: size -1 makes the
        # reader reject it with a reason.
        return path, -1, _mtime(0)
    if not os.path.isfile(path):
        return None
    real = os.path.realpath(path) if os.path.islink(path) else path
    return real, stat.st_size, _mtime(stat.st_mtime)


def _file_row(entry: os.DirEntry[str]) -> tuple[str, int, pd.Timestamp] | None:
    if not entry.is_symlink():
        try:
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            return entry.path, -1, _mtime(0)
        return entry.path, stat.st_size, _mtime(stat.st_mtime)
    return _path_row(entry.path)


def walk_files(root: str) -> Iterator[tuple[str, int, pd.Timestamp]]:
    """Yield (path, size, mtime) of every regular file below root, hidden ones included.

    A link to a file yields the target's real path (so a file met twice yields twice: deduplicate
    across walks, as :func:`list_files_distributed` does); links to directories are skipped.
    """
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=True) or entry.is_symlink():
                row = _file_row(entry)
                if row is not None:
                    yield row


def shallow_split(root: str, target_dirs: int = 256, max_depth: int = 8) -> tuple[list[str], list[str]]:
    """Split a tree into subtree roots to walk in parallel and the files found on the way.

    Descends level by level until there are at least ``target_dirs`` directories (or ``max_depth``),
    so the driver only ever holds a bounded number of names.
    """
    frontier = [root]
    files: list[str] = []
    for _ in range(max_depth):
        if len(frontier) >= target_dirs:
            break
        next_frontier: list[str] = []
        for directory in frontier:
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    next_frontier.append(entry.path)
                elif not (entry.is_symlink() and entry.is_dir(follow_symlinks=True)):
                    files.append(entry.path)
        if not next_frontier:
            return [], files
        frontier = next_frontier
    return frontier, files


LISTING_BATCH_ROWS = 8192
# A tree the shallow split walks completely with at most this many files is listed on the driver.
DRIVER_LISTING_MAX_FILES = 4096


def list_files_distributed(spark, root: str, driver_max_files: int = DRIVER_LISTING_MAX_FILES):  # noqa: ANN001, ANN201
    """A DataFrame of every file below ``root`` (path, size, mtime), walked by the executors.

    A small tree (walked completely by the shallow split, at most ``driver_max_files`` files) is
    listed on the driver instead.

    The seeds (subtree roots, and files met on the way down) go to Spark as one Arrow batch, sliced
    evenly over the task slots: one Python worker round trip per slot, which is what dominated
    listing time when every seed was its own small task. The only shuffle is the final
    de-duplication of paths (a file reached directly and through a link is listed once).

    An object-store root (``s3://…``) is split the same way with the store's delimiter listings and
    its subtrees are listed by the executors (:func:`list_remote_files`).
    """
    if is_remote(root):
        return list_remote_files(spark, root, driver_max_files)
    local_root = require_directory(root, "DICOM folder")
    # The real root, so that files reached directly and through links have one spelling.
    subtrees, top_files = shallow_split(os.path.realpath(local_root))
    roots = [(d, "dir") for d in subtrees] + [(f, "file") for f in top_files]
    if not subtrees and len(top_files) <= driver_max_files:
        # The shallow split already walked the whole (small) tree: stat its files here rather than
        # pay a Python task round trip and a shuffle, a fixed second or two on every small ingest.
        rows = {row[0]: row for row in map(_path_row, top_files) if row is not None}
        frame = pd.DataFrame(sorted(rows.values()), columns=["path", "size", "mtime"])
        return spark.createDataFrame(frame, LISTING_SCHEMA)
    seeds = spark.createDataFrame(pd.DataFrame(roots, columns=["entry", "kind"]), "entry string, kind string")

    def walk(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        rows: list[tuple[str, int, pd.Timestamp]] = []
        for batch in batches:
            for entry, kind in zip(batch["entry"], batch["kind"], strict=True):
                if kind == "file":
                    row = _path_row(entry)
                    if row is not None:
                        rows.append(row)
                else:
                    for row in walk_files(entry):
                        rows.append(row)
                        if len(rows) >= LISTING_BATCH_ROWS:
                            yield pd.DataFrame(rows, columns=["path", "size", "mtime"])
                            rows = []
        if rows:
            yield pd.DataFrame(rows, columns=["path", "size", "mtime"])

    # A file reached directly and through a link (or through two links) is one input.
    return seeds.mapInPandas(walk, LISTING_SCHEMA).dropDuplicates(["path"])


def remote_shallow_split(
    fs: Any, root: str, target_dirs: int = 256, max_depth: int = 8
) -> tuple[list[str], list[dict[str, Any]]]:
    """:func:`shallow_split` for an object store: prefixes to list in parallel, objects met on the way.

    One delimiter listing per prefix and level; the driver holds at most the first levels' names.
    """
    frontier = [root.rstrip("/")]
    files: list[dict[str, Any]] = []
    for _ in range(max_depth):
        if len(frontier) >= target_dirs:
            break
        next_frontier: list[str] = []
        for prefix in frontier:
            for info in sorted(fs.ls(prefix, detail=True), key=lambda i: i["name"]):
                name = info["name"].rstrip("/")
                if name == prefix:
                    continue  # a "folder" placeholder object (consoles create them), not a file
                if info.get("type") == "directory":
                    next_frontier.append(name)
                else:
                    files.append(info)
        if not next_frontier:
            return [], files
        frontier = next_frontier
    return frontier, files


def list_remote_files(spark, root: str, driver_max_files: int = DRIVER_LISTING_MAX_FILES):  # noqa: ANN001, ANN201
    """A DataFrame (path, size, mtime) of every object below an object-store URI.

    Paths are URIs in the root's spelling (``s3://bucket/dump/…``), which the read tasks open with
    fsspec. The driver splits the tree into prefixes (bounded, as for local trees); each executor
    task lists its prefixes with the store's flat, paginated listing and yields rows in batches.
    Object stores have no links, so no de-duplication shuffle is needed.
    """
    require_directory(root, "DICOM folder")
    fs, root_path = remote_filesystem(root)
    root_path = root_path.rstrip("/")
    try:
        prefixes, top_files = remote_shallow_split(fs, root_path)
    except Exception as error:  # noqa: BLE001 - denied or vanished between the check and the listing
        raise _remote_error(error, "DICOM folder", root, fs, root_path) from None
    if not prefixes and len(top_files) <= driver_max_files:
        frame = pd.DataFrame(sorted(_remote_row(root, root_path, info) for info in top_files),
                             columns=["path", "size", "mtime"])
        return spark.createDataFrame(frame, LISTING_SCHEMA)
    seeds = [(_remote_uri(root, root_path, p), "dir") for p in prefixes]
    seeds += [(_remote_uri(root, root_path, info["name"]), "file") for info in top_files]
    seed_frame = spark.createDataFrame(pd.DataFrame(seeds, columns=["entry", "kind"]), "entry string, kind string")
    root_uri = root

    def walk(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Runs on the executors: credentials come from their environment, never from the driver.
        task_fs, task_root = remote_filesystem(root_uri)
        task_root = task_root.rstrip("/")
        rows: list[tuple[str, int, pd.Timestamp]] = []
        for batch in batches:
            for entry, kind in zip(batch["entry"], batch["kind"], strict=True):
                _, entry_path = remote_filesystem(entry)
                try:
                    found = [task_fs.info(entry_path)] if kind == "file" else task_fs.find(entry_path, detail=True).values()
                except FileNotFoundError:
                    continue  # removed since the driver's listing: it is no input of this run
                except OSError:
                    # A prefix the credentials may not list: one row with size -1 keeps it in
                    # `files` and `rejects` (read_error) instead of failing the job or losing it.
                    rows.append((entry, -1, _mtime(0)))
                    continue
                for info in found:
                    if info.get("type") == "directory" or info["name"].endswith("/"):
                        continue
                    rows.append(_remote_row(root_uri, task_root, info))
                    if len(rows) >= LISTING_BATCH_ROWS:
                        yield pd.DataFrame(rows, columns=["path", "size", "mtime"])
                        rows = []
        if rows:
            yield pd.DataFrame(rows, columns=["path", "size", "mtime"])

    return seed_frame.mapInPandas(walk, LISTING_SCHEMA)


REMOTE_TABLE_CHUNK_ROWS = 50_000


def default_parallelism(spark) -> int:  # noqa: ANN001
    """How many tasks the session runs at once, on classic Spark and on Spark Connect.

    A classic session asks its SparkContext (the cluster's cores, or ``spark.default.parallelism``).
    A Spark Connect session has no SparkContext: it reads ``spark.default.parallelism`` from the
    session's settings, else ``spark.sql.shuffle.partitions`` (what Spark itself uses for a shuffle).

    Args:
        spark: A classic or Spark Connect SparkSession.

    Returns:
        A positive number of partitions.
    """
    if not type(spark).__module__.startswith("pyspark.sql.connect"):
        return int(spark.sparkContext.defaultParallelism)
    value = spark.conf.get("spark.default.parallelism", None) or spark.conf.get("spark.sql.shuffle.partitions", "200")
    return max(1, int(value))


def _remote_table_columns(fs: Any, path: str) -> list[str]:
    """The column names of a CSV or Parquet object, from its first bytes (or its Parquet footer)."""
    with fs.open(path, "rb", block_size=64 * 1024, cache_type="readahead") as handle:
        if path.lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(handle).schema_arrow.names)
        gzip = path.lower().endswith(".gz")
        return [str(c) for c in pd.read_csv(handle, nrows=0, compression="gzip" if gzip else None).columns]


def _remote_table_chunks(fs: Any, path: str, columns: list[str]) -> Iterator[pd.DataFrame]:
    """The object's rows in chunks of REMOTE_TABLE_CHUNK_ROWS, as strings (None where empty)."""
    lowered = path.lower()
    # Large sequential requests: the whole object is read, once, by one task.
    with fs.open(path, "rb", block_size=8 * 1024 * 1024, cache_type="readahead") as handle:
        if lowered.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(handle).iter_batches(batch_size=REMOTE_TABLE_CHUNK_ROWS, columns=columns):
                yield batch.to_pandas()
            return
        # As Spark's CSV reader reads it: header row, UTF-8, quoted multi-line values, "" escapes, and
        # only an empty field is null ("NA" or "null" in a diagnosis is text).
        yield from pd.read_csv(
            handle, dtype=str, usecols=columns, chunksize=REMOTE_TABLE_CHUNK_ROWS, encoding="utf-8",
            keep_default_na=False, na_values=[""], compression="gzip" if lowered.endswith(".gz") else None,
        )


def read_remote_table(spark, uri: str, columns: list[str], what: str):  # noqa: ANN001, ANN201
    """A CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) object as a DataFrame of string columns.

    For inputs Spark's own Hadoop layer may not read (no ``s3a`` connector in a plain pyspark): the
    driver reads only the header (columns checked up front, matched case-insensitively as Spark
    does); one executor task streams the object in chunks, so it never passes through the driver.

    Raises:
        InputPathError: The object is missing, denied or of another format.
        UserError: A required column is missing.
    """
    lowered = uri.lower()
    if not lowered.endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise InputPathError(f"{what} {uri} must be CSV (.csv, .csv.gz) or Parquet (.parquet, .pq).")
    require_file(uri, what)
    fs, path = remote_filesystem(uri)
    try:
        header = _remote_table_columns(fs, path)
    except (OSError, ValueError) as error:
        raise InputPathError(f"{what} {uri} cannot be read as a table ({type(error).__name__}).") from None
    by_lower = {str(name).lower(): str(name) for name in header}
    missing = [c for c in columns if c.lower() not in by_lower]
    if missing:
        raise UserError(f"{what} {uri} has no column {missing[0]!r}; its columns are: {', '.join(header)}.")
    source_columns = [by_lower[c.lower()] for c in columns]
    schema = ", ".join(f"`{c}` string" for c in columns)

    def read(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for _ in batches:  # one seed row: this task streams the whole object
            task_fs, task_path = remote_filesystem(uri)
            for chunk in _remote_table_chunks(task_fs, task_path, source_columns):
                frame = chunk[source_columns].astype(object)
                frame = frame.where(frame.notna(), None)
                frame.columns = columns
                yield frame

    seed = spark.createDataFrame(pd.DataFrame({"uri": [uri]}), "uri string").coalesce(1)
    return seed.mapInPandas(read, schema).repartition(default_parallelism(spark))


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write a small file so that a reader sees the old content or the new, never a torn one.

    The text goes to a hidden sibling first and is renamed over ``path`` (atomic on POSIX and on
    the FUSE mounts the warehouse lives on). Where a rename is not atomic, a torn JSON record is
    still recognisable: readers of our records treat a file that does not parse as absent.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A small JSON record written by :func:`write_text_atomically`; None when missing or torn."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
