"""A class-data-sharing (CDS) archive of Spark's classes for the driver JVM of local sessions.

A local session's JVM loads about 15,000 classes before its first job; mapped from a CDS archive
they cost about 40 % less CPU at start-up (docs/benchmarks.md, "Fixed cost"), and the JVM runs
as fast as without it afterwards. The JVM makes the archive itself: a ``radnet`` command that
finds none runs its JVM with ``-XX:ArchiveClassesAtExit``, stops it when its work is done, waits
while it writes the archive (a few seconds, once) and moves the file into place only if the JVM
exited cleanly — a half-written archive would crash the next JVM instead of being ignored.

One archive per Java binary, Spark jars and pyspark version, in ``$XDG_CACHE_HOME/radnet-spark``
(default ``~/.cache/radnet-spark``), about 190 MB; the two most recently written are kept. Sessions whose ``spark.driver.extraJavaOptions``
mention ``-Xshare`` or an archive keep their own choice: ``-Xshare:off`` turns this off. An
archive that does not fit (another classpath) is ignored by the JVM, silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# The JVM's own CDS messages (classes skipped while dumping, an archive that does not fit) would
# reach the terminal on stdout; an archive that cannot be used is simply not used.
QUIET_CDS = "-Xlog:cds*=off -Xlog:class+path=off"
USERS_CHOICE = ("-Xshare", "SharedArchiveFile", "ArchiveClassesAtExit")
# Every virtual environment (each CI checkout) makes its own archive of ~190 MB: only the most
# recently written ones are kept.
KEPT_ARCHIVES = 2


@dataclass(frozen=True)
class ArchivePlan:
    """What the driver JVM does with the archive: the options, and the file it writes at exit if any."""

    options: str = ""
    writes: Path | None = None  # the temporary file the JVM dumps into as it exits
    archive: Path | None = None  # where that file goes once the JVM exited cleanly


def cache_folder() -> Path:
    """Where the archives live: ``$XDG_CACHE_HOME/radnet-spark`` or ``~/.cache/radnet-spark``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "radnet-spark"


def archive_name() -> str | None:
    """The archive's file name: what it is valid for (Java binary, Spark jars, pyspark version)."""
    import pyspark
    from pyspark.find_spark_home import _find_spark_home

    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    java_path = Path(java).resolve()
    jars = Path(_find_spark_home()).resolve() / "jars"
    if not jars.is_dir():
        return None
    facts = [pyspark.__version__, str(java_path), str(java_path.stat().st_size), str(java_path.stat().st_mtime_ns),
             str(jars), str(jars.stat().st_mtime_ns)]
    digest = hashlib.sha256("\x1f".join(facts).encode()).hexdigest()[:16]
    return f"spark-{pyspark.__version__}-{digest}.jsa"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def plan_archive(java_options: str, folder: Path, name: str | None, may_write: bool) -> ArchivePlan:
    """Map the archive if it exists, else (``may_write``) have this JVM write it at exit.

    Args:
        java_options: The session's ``spark.driver.extraJavaOptions`` so far.
        folder: The cache folder (:func:`cache_folder`).
        name: The archive's name (:func:`archive_name`); None: no archive for this Java.
        may_write: Whether the caller stops the JVM and calls :func:`keep_archive` when done.

    Returns:
        The options to append and, when this JVM writes the archive, where.
    """
    if name is None or any(flag in java_options for flag in USERS_CHOICE):
        return ArchivePlan()
    archive = folder / name
    if archive.is_file():
        return ArchivePlan(options=f"-XX:SharedArchiveFile={archive} {QUIET_CDS}")
    if not may_write:
        return ArchivePlan()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for other in folder.glob(f"{name}.*.tmp"):  # <name>.<pid of the command writing it>.tmp
            pid = other.name[len(name) + 1:-len(".tmp")]
            if pid.isdigit() and _alive(int(pid)):
                return ArchivePlan()  # another command writes it right now
            other.unlink(missing_ok=True)  # left by a command that was killed while waiting
    except OSError:  # a read-only or full cache folder: run without an archive
        return ArchivePlan()
    writes = folder / f"{name}.{os.getpid()}.tmp"
    return ArchivePlan(options=f"-XX:ArchiveClassesAtExit={writes} {QUIET_CDS}", writes=writes, archive=archive)


def remove_old_archives(folder: Path, keep: int = KEPT_ARCHIVES) -> list[Path]:
    """Delete all but the ``keep`` most recently written archives in ``folder``.

    A JVM that maps a deleted archive keeps its mapping (the file lives on until unmapped); a later
    command of that environment writes its archive again.

    Returns:
        The archives deleted.
    """
    archives = sorted(folder.glob("spark-*.jsa"), key=lambda path: path.stat().st_mtime, reverse=True)
    removed = []
    for old in archives[keep:]:
        try:
            old.unlink()
            removed.append(old)
        except OSError:
            pass
    return removed


def keep_archive(plan: ArchivePlan, jvm_exit_code: int | None) -> bool:
    """Move the archive the JVM wrote into place if it exited cleanly; else delete what it left.

    Args:
        plan: The plan the JVM was started with.
        jvm_exit_code: The JVM's exit code; None when it did not exit in time.

    Returns:
        Whether the archive is now in place.
    """
    if plan.writes is None or plan.archive is None:
        return False
    try:
        if jvm_exit_code == 0 and plan.writes.is_file() and plan.writes.stat().st_size > 0:
            os.replace(plan.writes, plan.archive)
            remove_old_archives(plan.archive.parent)
            return True
        if jvm_exit_code is not None:  # a JVM still writing is left alone; a later run removes it
            plan.writes.unlink(missing_ok=True)
    except OSError:
        pass
    return False
