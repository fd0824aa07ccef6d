"""Where files live: URIs for Spark, local paths for Python readers, and listing a dump in parallel.

Executors open DICOM files with Python, so every input must be reachable as a local path on
every executor: a local disk in local mode, a shared mount (NFS, ``/dbfs`` FUSE on Databricks,
blobfuse, s3fs) on a cluster. Tables are written by Spark, so they take any Hadoop URI.

Symbolic links: a link to a file and the file are one input, listed once under the file's real
path (the link's own path is recorded nowhere); links to directories are not followed (a link
loop or a second route into the same tree cannot list a file twice); a dangling link is listed
under its own path with size -1, and the reader rejects it as ``broken_link``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from radnet_spark.errors import InputPathError

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


def require_directory(path: str, what: str) -> str:
    """Return the local path of an existing directory or raise a one-sentence InputPathError."""
    local = to_local_path(path)
    if not os.path.isdir(local):
        raise InputPathError(f"{what} {path} is not a directory that exists on this machine.")
    return local


def require_file(path: str, what: str) -> str:
    local = to_local_path(path)
    if not os.path.isfile(local):
        raise InputPathError(f"{what} {path} is not a file that exists on this machine.")
    return local


def _mtime(seconds: float) -> pd.Timestamp:
    # Spark timestamps are microseconds; nanoseconds would fail Arrow's safe cast.
    return pd.Timestamp(round(seconds * 1_000_000), unit="us")


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
    """
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
