"""Fixed cost of one command: where the seconds of a 1-file ``radnet ingest`` go.

    .venv/bin/python bench/fixed_cost.py --runs 3

Each run is a fresh process that runs the real CLI (``radnet_spark.cli.main``) on a one-file dump
into a new warehouse, with timestamps taken from the process's start (interpreter start included):
imports, JVM start (the driver's gateway), SparkContext/session, each logged step of the ingest and
the Spark jobs each step ran. A second, uninstrumented ``python -m radnet_spark ingest`` per run
gives the wall time a user sees. Prints one table row per run and the median of each column.

The machine is shared: the load average is printed with every run, and the medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _process_start() -> float:
    """Wall-clock time this process started (from /proc), so interpreter start-up is counted."""
    ticks = os.sysconf(os.sysconf_names["SC_CLK_TCK"])
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime + start_ticks / ticks


def child(dump: str, warehouse: str, out: str, overrides: list[str]) -> None:
    """Run the CLI in this process with timestamps; write them as JSON to ``out``."""
    started = _process_start()
    marks: list[tuple[str, float, int]] = []  # (name, seconds since process start, Spark jobs so far)

    def mark(name: str, jobs: int = 0) -> None:
        marks.append((name, time.time() - started, jobs))

    mark("interpreter")
    from radnet_spark import cli, session

    mark("cli imports")
    jvm: dict[str, bool] = {}

    def spark_jobs() -> int:
        from pyspark import SparkContext

        context = SparkContext._active_spark_context
        if context is None:
            return 0
        return len(context.statusTracker().getJobIdsForGroup(None))

    launch = session._launch_quiet_gateway

    def timed_launch(settings):  # noqa: ANN001, ANN202
        mark("before JVM")
        launch(settings)
        mark("JVM up")  # the CLI imports the ingest modules meanwhile

    session._launch_quiet_gateway = timed_launch

    def session_ready() -> None:
        mark("session")
        from pyspark import SparkContext

        arguments = " ".join(SparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                             .getInputArguments())
        jvm.update(cds="SharedArchiveFile" in arguments, c1_only="TieredStopAtLevel=1" in arguments)
        from radnet_spark.ingest import job  # imported by the CLI by now

        step = job.IngestSummary.step

        @contextmanager
        def timed_step(self, name):  # noqa: ANN001, ANN202
            mark(f"{name} start", spark_jobs())
            with step(self, name):
                yield
            mark(name, spark_jobs())

        job.IngestSummary.step = timed_step

    if hasattr(session, "start_spark"):
        start_spark = session.start_spark

        def timed_start(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            finish = start_spark(*args, **kwargs)

            def timed_finish():  # noqa: ANN202
                spark = finish()
                session_ready()
                return spark

            return timed_finish

        session.start_spark = timed_start
    else:  # the CLI before the JVM started on a thread
        get_spark = session.get_spark

        def timed_get_spark(config=None):  # noqa: ANN001, ANN202
            spark = get_spark(config)
            session_ready()
            return spark

        session.get_spark = timed_get_spark
    code = cli.main(["ingest", "--dicom", dump, "--out", warehouse, *overrides])
    mark("end", spark_jobs())
    Path(out).write_text(json.dumps({"code": code, "marks": marks, "jvm": jvm}))


def _phases(marks: list[list]) -> dict[str, float]:
    """Seconds per phase: each mark minus the one before it; the gaps between steps count as 'other'."""
    phases: dict[str, float] = {}
    previous = 0.0
    for name, at, _ in marks:
        if name.endswith(" start"):
            phases["between steps"] = phases.get("between steps", 0.0) + at - previous
        else:
            phases[name] = phases.get(name, 0.0) + at - previous
        previous = at
    return phases


def _jobs(marks: list[list]) -> dict[str, int]:
    jobs, before = {}, 0
    for name, _, count in marks:
        if name.endswith(" start"):
            before = count
        elif name not in ("interpreter", "cli imports", "before JVM", "JVM up", "session", "end"):
            jobs[name] = count - before
    return jobs


def _become_subreaper() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_orphans() -> None:
    """Wait for every orphaned descendant (the JVM exits once its stdin closes)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def _timed_command(command: list[str]) -> tuple[float, float]:
    """Wall seconds until the command exits, and CPU seconds of its whole process tree.

    This process becomes a child subreaper, so the JVM and the Python workers, orphaned when the
    command exits, are reaped here and their CPU time counts in RUSAGE_CHILDREN. CPU seconds are
    less sensitive than wall time to what else runs on a shared machine.
    """
    import resource

    _reap_orphans()  # an earlier command's JVM must not count here
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    _reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dump", help="a folder with one DICOM file (default: one generated CT/MR file)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="a setting for the measured command, e.g. "
                             "--set 'spark.conf={spark.driver.extraJavaOptions: -Xshare:off}'")
    parser.add_argument("--child", nargs=3, metavar=("DUMP", "WAREHOUSE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = [flag for setting in args.overrides for flag in ("--set", setting)]
    if args.child:
        child(*args.child, overrides)
        return

    os.environ.setdefault("RADNET_SALT", "bench")
    _become_subreaper()
    scratch = Path(tempfile.mkdtemp(prefix="radnet-fixed-"))
    dump = Path(args.dump) if args.dump else scratch / "one"
    if not args.dump:
        from radnet_spark.synth import DefectRates, generate_pacs

        generate_pacs(scratch / "pacs", exams=1, seed=5, workers=1, defect_rates=DefectRates.none())
        first = sorted(p for p in (scratch / "pacs" / "dicom").rglob("*") if p.is_file())[0]
        dump.mkdir()
        shutil.copy(first, dump / first.name)
    try:
        from radnet_spark.jvm_class_archive import archive_name, cache_folder

        name = archive_name()
        print(f"class archive: {'present' if name and (cache_folder() / name).is_file() else 'absent'}")
    except ImportError:  # the code before the class archive
        print("class archive: not used")
    rows = []
    for run in range(args.runs):
        load = os.getloadavg()[0]
        out = scratch / f"run{run}.json"
        subprocess.run([sys.executable, __file__, *[f"--set={o}" for o in args.overrides],
                        "--child", str(dump), str(scratch / f"wh{run}"), str(out)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        record = json.loads(out.read_text())
        plain, cpu = _timed_command([sys.executable, "-m", "radnet_spark", "ingest", "--dicom", str(dump),
                                     "--out", str(scratch / f"plain{run}"), *overrides])
        phases = _phases(record["marks"])
        rows.append({"load": load, "command": plain, "cpu": cpu, "instrumented": record["marks"][-1][1], **phases})
        print(f"run {run}: load {load:.1f}, command {plain:.1f} s wall, {cpu:.1f} s CPU; "
              + ", ".join(f"{name} {seconds:.2f}" for name, seconds in phases.items()))
        print(f"  JVM: {record.get('jvm')}")
        print("  Spark jobs per step: " + ", ".join(f"{k} {v}" for k, v in _jobs(record["marks"]).items()))
    print("median: " + ", ".join(f"{name} {statistics.median(row.get(name, 0.0) for row in rows):.2f}"
                                 for name in rows[0]))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
