"""The one SparkSession builder every job uses.

Precedence for the master: a master already set by ``spark-submit`` (``spark.master`` in the
launcher's conf) > ``SPARK_MASTER`` > ``config.spark.master`` > ``local[*]``. The repository's
``spark-defaults.conf`` is loaded for local runs unless the cluster provides its own defaults.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

# Imported before the JVM-launching thread starts, so that it imports nothing while the caller's
# thread imports the command's modules (two threads importing one module can see it half-done).
import pyspark.java_gateway  # noqa: F401
from pyspark.sql import SparkSession

from radnet_spark.config import SparkConfig
from radnet_spark.jvm_class_archive import ArchivePlan, archive_name, cache_folder, keep_archive, plan_archive

log = logging.getLogger(__name__)

REPO_DEFAULTS = Path(__file__).resolve().parent.parent / "spark-defaults.conf"
PACKAGED_DEFAULTS = Path(__file__).resolve().parent / "conf" / "spark-defaults.conf"
QUIET_LOG4J = Path(__file__).resolve().parent / "conf" / "log4j2.properties"
# Lines the driver JVM prints before any log configuration applies: Spark's launcher always adds the
# incubating vector module, and the JVM announces it on stderr.
# pyspark counts as a shell, so Spark also announces the shell's log level whatever the configuration.
JVM_STARTUP_NOISE = (
    b"WARNING: Using incubator modules",
    b'Setting default log level to "',
    b"To adjust logging level use sc.setLogLevel(",
)

# For small work the JIT's optimising compiler costs more than it saves (measured in
# docs/benchmarks.md, "Fixed cost"): stop at C1.
QUICK_START_JIT = "-XX:TieredStopAtLevel=1"
# The console settles when this line, printed by the JVM after everything else, has passed through.
JVM_STDERR_MARK = b"radnet-spark: jvm stderr forwarded\n"
_jvm_stderr_settled = threading.Event()
_jvm_stderr_forwarded = threading.Event()  # a forwarder thread runs (sessions launched quiet only)
_archive_plan: ArchivePlan | None = None  # the class archive this process's JVM writes at exit


def read_defaults_file(path: Path) -> dict[str, str]:
    """Parse a ``spark-defaults.conf`` file: ``key value`` per line, ``#`` comments."""
    settings: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if not value:
            key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    return settings


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the Python driver with these set; a plain `python` run has neither.
    return "PYSPARK_GATEWAY_PORT" in os.environ or "SPARK_SUBMIT_OPTS" in os.environ


def _defaults_path(config: SparkConfig) -> Path | None:
    if config.defaults_file:
        return Path(config.defaults_file)
    for candidate in (REPO_DEFAULTS, PACKAGED_DEFAULTS):
        if candidate.is_file():
            return candidate
    return None


def _could_be_noise(fragment: bytes) -> bool:
    stripped = fragment.lstrip(b"\r\n")
    return any(p.startswith(stripped) or stripped.startswith(p) for p in JVM_STARTUP_NOISE)


def forward_without_noise(source: int, target: int) -> None:
    """Copy the JVM's stderr to ours, dropping its start-up noise; the progress bar passes at once.

    Complete lines (ending in ``\n`` or ``\r``) are checked against JVM_STARTUP_NOISE; a partial
    line is written as soon as it can no longer turn into one of them. The line JVM_STDERR_MARK is
    swallowed and tells :func:`settle_console` that everything the JVM printed before it is out.
    """
    pending = b""
    while chunk := os.read(source, 65536):
        pending += chunk
        start = 0
        for index, byte in enumerate(pending):
            if byte in b"\r\n":
                segment = pending[start:index + 1]
                if segment.lstrip(b"\r\n") == JVM_STDERR_MARK:
                    _jvm_stderr_settled.set()
                elif not any(segment.lstrip(b"\r\n").startswith(p) for p in JVM_STARTUP_NOISE):
                    os.write(target, segment)
                start = index + 1
        pending = pending[start:]
        if pending and not _could_be_noise(pending):
            os.write(target, pending)
            pending = b""
    if pending:
        os.write(target, pending)


def _launch_quiet_gateway(settings: dict[str, str]) -> None:
    """Start the driver JVM ourselves so that its stderr passes through forward_without_noise."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:  # a JVM is already up (an earlier session in this process)
        return
    conf = SparkConf(loadDefaults=False)
    for key, value in settings.items():
        conf.set(key, value)
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
    stderr = gateway.proc.stderr
    threading.Thread(target=forward_without_noise, args=(stderr.fileno(), sys.__stderr__.fileno()),
                     name="jvm-stderr", daemon=True).start()
    _jvm_stderr_forwarded.set()
    SparkContext._gateway = gateway
    SparkContext._jvm = gateway.jvm


def settle_console(timeout: float = 2.0) -> None:
    """Clear Spark's progress bar and let the JVM's stderr so far reach ours, before a last message.

    A failed job leaves its progress bar on the line, and the JVM's stderr reaches the terminal
    through a thread: without this, the CLI's error sentence could land inside the bar's line or
    before the JVM's last output. Does nothing when no SparkContext runs or the JVM is gone.

    Args:
        timeout: Seconds to wait for the forwarder thread at most.
    """
    from py4j.protocol import Py4JError
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:
        return
    try:
        bar = context._jsc.sc().progressBar()
        if bar.isDefined():
            bar.get().finishAll()
        if _jvm_stderr_forwarded.is_set():
            _jvm_stderr_settled.clear()
            context._jvm.System.err.print(JVM_STDERR_MARK.decode())
            context._jvm.System.err.flush()
            _jvm_stderr_settled.wait(timeout)
    except (Py4JError, OSError):  # the JVM is gone: nothing of it left to settle
        return


def resolve_master(config: SparkConfig) -> str | None:
    """The master to set on the builder, or None when spark-submit already decided."""
    if _launched_by_spark_submit():
        return None
    return os.environ.get("SPARK_MASTER") or config.master or "local[*]"


def get_spark(config: SparkConfig | None = None) -> SparkSession:
    """Return the active SparkSession or build one from config, repo defaults and environment."""
    return start_spark(config)()


def start_spark(
    config: SparkConfig | None = None, write_class_archive: bool = False, quick_jit: bool = False
) -> Callable[[], SparkSession]:
    """Begin building the session (the driver JVM starts on a thread); call the result for the session.

    Starting the JVM takes seconds of mostly waiting; a command imports its own modules meanwhile
    (``finish = start_spark(c); import …; spark = finish()``). Only the JVM of a quiet local
    session, which radnet launches itself, starts early; every other session starts in ``finish``.

    A local session's JVM maps Spark's classes from a CDS archive when one exists
    (:mod:`radnet_spark.jvm_class_archive`); with ``write_class_archive`` a JVM that finds none
    writes it as it exits, and the caller calls :func:`save_class_archive` when its work is done.

    Args:
        config: The ``spark`` section of the settings (default: its defaults).
        write_class_archive: Whether this JVM may write the class archive (the caller saves it).
        quick_jit: A local JVM only compiles with the quick C1 compiler: it starts about 40 % faster
            and leaves the cores to the Python workers, but runs JVM-bound work (k-means, joins)
            about 2x slower (docs/benchmarks.md, "Fixed cost" and "Spark around the parse").

    Returns:
        A function that waits for the JVM, creates (or returns the active) session and returns it.
    """
    config = config or SparkConfig()
    active = SparkSession.getActiveSession()
    if active is not None:
        return lambda: active
    builder = SparkSession.builder.appName(config.app_name)
    master = resolve_master(config)
    settings: dict[str, str] = {}
    if master is not None:
        builder = builder.master(master)
        defaults = _defaults_path(config)
        # A cluster launched with spark-submit has its own spark-defaults.conf; ours is for local runs.
        if defaults is not None and defaults.is_file():
            settings.update(read_defaults_file(defaults))
        if master.startswith("local"):
            # Workers otherwise run `python3` from PATH, which may lack our packages; pyspark reads
            # the environment variable, not the conf key, when it starts the context.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings.update(config.conf)
    if master is not None and master.startswith("local"):
        _plan_class_archive(settings, write_class_archive)
        options = settings.get("spark.driver.extraJavaOptions", "")
        if quick_jit and "Tiered" not in options:  # a user's own JIT choice wins
            settings["spark.driver.extraJavaOptions"] = f"{options} {QUICK_START_JIT}".strip()
    launching: threading.Thread | None = None
    failures: list[BaseException] = []
    if master is not None and config.quiet_logs:
        # Only for sessions we launch: under spark-submit the cluster's log configuration rules.
        quiet = f"-Dlog4j2.configurationFile={QUIET_LOG4J.as_uri()}"
        settings["spark.driver.extraJavaOptions"] = f"{settings.get('spark.driver.extraJavaOptions', '')} {quiet}".strip()
        if master.startswith("local"):
            settings.setdefault("spark.master", master)
            launching = threading.Thread(target=_launch_recording_failure, args=(settings, failures),
                                         name="jvm-launch", daemon=True)
            launching.start()

    def finish() -> SparkSession:
        nonlocal builder
        if launching is not None:
            launching.join()
            if failures:
                raise failures[0]
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        log.info("Spark %s, master %s", spark.version, spark.conf.get("spark.master", "?"))
        return spark

    return finish


def _plan_class_archive(settings: dict[str, str], may_write: bool) -> None:
    """Add the class archive's JVM options to the driver's; remember an archive this JVM will write."""
    global _archive_plan
    options = settings.get("spark.driver.extraJavaOptions", "")
    plan = plan_archive(options, cache_folder(), archive_name(), may_write)
    if plan.options:
        settings["spark.driver.extraJavaOptions"] = f"{options} {plan.options}".strip()
    _archive_plan = plan if plan.writes is not None else None


def save_class_archive(timeout: float = 300.0) -> bool:
    """Stop Spark and its JVM, and keep the class archive the JVM writes as it exits (first run only).

    Does nothing unless this process started a JVM that writes the archive
    (``start_spark(..., write_class_archive=True)`` finding none).

    Args:
        timeout: Seconds to wait for the JVM to write the archive and exit.

    Returns:
        Whether an archive was written and kept.
    """
    global _archive_plan
    from pyspark import SparkContext

    plan, _archive_plan = _archive_plan, None
    gateway = SparkContext._gateway
    if plan is None or gateway is None:
        return False
    log.info("Saving Spark's classes for faster starts (once): %s", plan.archive)
    code: int | None = None
    try:
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
        gateway.proc.stdin.close()  # the JVM exits at end of input, writing the archive first
        code = gateway.proc.wait(timeout)
    except Exception as error:  # noqa: BLE001 - a speed-up only: never fail the finished command
        log.warning("Spark's class archive was not saved: %s", error)
    return keep_archive(plan, code)


def _launch_recording_failure(settings: dict[str, str], failures: list[BaseException]) -> None:
    try:
        _launch_quiet_gateway(settings)
    except BaseException as error:  # raised again by the caller's thread, in finish()
        failures.append(error)
