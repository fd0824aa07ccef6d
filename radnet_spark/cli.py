"""The ``radnet`` command line: one subcommand per stage.

Every subcommand takes ``--config YAML`` and repeatable ``--set section.field=value`` overrides;
the effective config is written next to the stage's output.

Exit codes: 0 done; 1 Spark failed (a job, a read or the JVM: one sentence with the root cause,
the traceback too under ``--verbose``); 2 an error the user can fix (path, setting, busy warehouse),
one sentence; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from radnet_spark.config import ConfigError, RadnetConfig, load_config, write_effective_config
from radnet_spark.errors import UserError

log = logging.getLogger("radnet")

EXIT_SPARK_ERROR = 1
# Up to this many files (the dump's and the warehouse's together) the work is small: a JVM that
# compiles less starts quicker, and the little JVM work is not worth the optimising compiler
# (docs/benchmarks.md, "Fixed cost"). `radnet ingest` always compiles less (cmd_ingest).
SMALL_WORK_FILES = 1000
EXIT_USER_ERROR = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file overriding the default settings")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="override one setting, e.g. --set ingest.image_size=256 (repeatable)",
    )
    parser.add_argument("--master", help="Spark master (default: spark-submit's, $SPARK_MASTER, or local[*])")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug details and Spark's own INFO/WARN lines")


def _config(args: argparse.Namespace) -> RadnetConfig:
    return _runtime_flags(load_config(args.config, args.overrides), args)


def _runtime_flags(config: RadnetConfig, args: argparse.Namespace) -> RadnetConfig:
    """Apply the flags every Spark command shares (``--master``, ``--verbose``) to the config."""
    if getattr(args, "master", None):
        config.spark.master = args.master
    if getattr(args, "verbose", False):
        config.spark.quiet_logs = False
    return config


def _small_work(dicom: str | None, warehouse: str) -> bool:
    """Whether the dump's files and the warehouse's committed files are SMALL_WORK_FILES at most.

    The dump is counted up to the bound (a local folder only; an object store counts as large),
    the warehouse from its commit records (no Spark). ``run`` without ``--dicom`` counts as large.
    """
    from radnet_spark.storage import is_remote, to_local_path
    from radnet_spark.tables import committed_row_counts

    if not dicom or is_remote(dicom) or is_remote(warehouse) or not os.path.isdir(to_local_path(dicom)):
        return False
    files = committed_row_counts(warehouse).get("files", 0) if os.path.isdir(to_local_path(warehouse)) else 0
    for _, _, names in os.walk(to_local_path(dicom)):
        files += len(names)
        if files > SMALL_WORK_FILES:
            return False
    return True


def _spark(config: RadnetConfig, *modules: str, quick_jit: bool = False):  # noqa: ANN202 - pyspark stays lazy
    """The session; the command's own ``modules`` are imported while the driver JVM starts.

    With ``quick_jit`` the JVM starts quicker but computes slower (:func:`start_spark`).
    """
    import importlib

    from radnet_spark.session import start_spark

    # The first command on a machine leaves Spark's classes in an archive for the next ones.
    finish = start_spark(config.spark, write_class_archive=True, quick_jit=quick_jit)
    for module in modules:
        importlib.import_module(module)
    return finish()


def cmd_synth(args: argparse.Namespace) -> int:
    from radnet_spark.synth import generate_pacs

    if args.exams < 1:
        raise UserError("--exams must be at least 1.")
    summary = generate_pacs(
        Path(args.out), exams=args.exams, seed=args.seed, language=args.language,
        workers=args.workers, progress=True,
    )
    print(summary)
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """Check the input paths before Spark starts (and before the lock creates the warehouse)."""
    from radnet_spark.storage import require_directory, require_file

    if args.dicom:
        require_directory(args.dicom, "DICOM folder")
    if args.diagnoses:
        require_file(args.diagnoses, "Diagnoses file")


@contextlib.contextmanager
def _writing(
    args: argparse.Namespace, config: RadnetConfig, *modules: str, quick_jit: bool | None = None
) -> Iterator[object]:
    """The warehouse's write lock, then Spark: a second writer refuses at once, before any session.

    Called once the paths and settings are checked, so a typo never creates the warehouse folder.
    The jobs take the same lock again (it is re-entrant), which protects library callers too.
    ``quick_jit`` (default: whether the work is small) chooses the JVM's quick compiler.
    """
    from radnet_spark.tables import warehouse_lock

    with warehouse_lock(args.out, args.command):
        if quick_jit is None:
            quick_jit = _small_work(args.dicom, args.out)
        yield _spark(config, *modules, quick_jit=quick_jit)


def cmd_ingest(args: argparse.Namespace) -> int:
    _check_inputs(args)
    config = _config(args)
    # Ingest's JVM work is moving rows the Python workers parse: the optimising compiler's threads
    # cost those workers more than they gain, at any size measured (docs/benchmarks.md, issue 17).
    with _writing(args, config, "radnet_spark.ingest.job", quick_jit=True) as spark:
        from radnet_spark.ingest.job import ingest

        summary = ingest(spark, args.dicom, args.diagnoses, args.out, config)
        write_effective_config(config, args.out, "ingest")
    print(summary)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _check_inputs(args)
    config = _config(args)
    if config.tracking.mlflow:
        from radnet_spark.tracking import require_mlflow

        require_mlflow()  # before training, not after it
    with _writing(args, config, "radnet_spark.pipeline") as spark:
        from radnet_spark.pipeline import run

        result = run(spark, args.dicom, args.diagnoses, args.out, config, models_root=args.models,
                     name=args.name, until=args.until, compare=args.compare)
    print(result)
    if config.tracking.mlflow and args.until == "report":
        from radnet_spark.tracking import log_pipeline_version

        # After training, outside the lock: a tracking server that is down costs no trained version.
        print(log_pipeline_version(result.pipeline, config, args.out))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from radnet_spark.artifacts import open_pipeline_dir
    from radnet_spark.config import label_config, read_settings

    _check_inputs(args)
    from radnet_spark.tracking import is_registry_uri, resolve_pipeline

    if is_registry_uri(args.pipeline):
        # models:/<name>/<version> or @alias: download the registered version once, then as a folder.
        args.pipeline = resolve_pipeline(args.pipeline, args.out)
    # The pipeline fixes what is computed; the user's settings may only change how label runs.
    pipeline = open_pipeline_dir(args.pipeline)
    config = _runtime_flags(
        label_config(pipeline.config(), read_settings(args.config, args.overrides), args.pipeline), args
    )
    with _writing(args, config, "radnet_spark.pipeline") as spark:
        from radnet_spark.pipeline import label

        print(label(spark, args.pipeline, args.dicom, args.diagnoses, args.out, config))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import json

    from radnet_spark.artifacts import list_pipelines, open_pipeline_dir

    if args.action == "list":
        rows = list_pipelines(args.models)
        if not rows:
            print(f"no pipelines under {args.models}")
        for row in rows:
            score = "-" if row["score"] is None else f"{row['score']:.3f}"
            state = "complete" if row["complete"] else "incomplete"
            print(f"{row['pipeline']}  {row['created_at']}  k={row['k']}  score={score}  {state}")
        return 0
    if not args.pipeline:
        raise UserError(f"`radnet models {args.action}` needs the pipeline folder, e.g. models/default/v20260101-120000.")
    pipeline = open_pipeline_dir(args.pipeline)
    if args.action == "log":
        from radnet_spark.tracking import log_pipeline_version

        # An existing version into MLflow without re-training; tracking.* settings apply as in `run`.
        config = load_config(args.config, args.overrides)
        print(log_pipeline_version(pipeline, config, pipeline.manifest().get("warehouse")))
        return 0
    print(json.dumps(pipeline.manifest(), indent=2))
    return 0


STAGE_HELP = {
    "features": "tags → tag_features (BPE imputation, tag selection, MissForest, encoding)",
    "train": "train the tag, image and diagnosis embedders on the training split",
    "embed": "embed every instance with the trained embedders",
    "cluster": "fuse the views, choose k by the elbow and cluster with k-means → labels",
    "evaluate": "homogeneity/NMI against modality and body part, in-cluster cosine distances",
    "report": "write the self-contained HTML report",
}


def _run_arguments(parser: argparse.ArgumentParser, dicom_required: bool) -> None:
    parser.add_argument("--dicom", required=dicom_required, help="PACS dump to ingest first")
    parser.add_argument("--diagnoses", help="CSV or Parquet of narrative diagnoses, one per exam")
    parser.add_argument("--out", required=True, help="warehouse folder for the tables")
    parser.add_argument("--models", default="models", help="where pipeline versions are saved (default models/)")
    parser.add_argument("--name", default="default", help="pipeline name under --models (default 'default')")
    parser.add_argument("--compare", action="store_true",
                        help="also compare every single view and fusion method (paper's Table 7)")
    _common(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radnet",
        description="Label a PACS dump without human labels, on Apache Spark (RadiologyNET method).",
        epilog="Exit codes: 0 done; 1 Spark failed (one sentence with the root cause; the traceback with "
               "--verbose); 2 a path, setting or argument to fix, or a busy warehouse (one sentence); "
               "130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    synth = sub.add_parser("synth", help="generate a synthetic PACS dump with diagnoses and ground truth")
    synth.add_argument("--out", required=True, help="output folder (dicom/, diagnoses.csv, ground_truth.csv)")
    synth.add_argument("--exams", type=int, default=50, help="number of exams (default 50)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--language", choices=["hr", "en"], default="hr", help="diagnosis language")
    synth.add_argument("--workers", type=int, default=None, help="generator processes (default: all cores)")
    synth.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    synth.set_defaults(handler=cmd_synth)

    ingest = sub.add_parser("ingest", help="PACS dump → files/tags/images/diagnoses/rejects tables")
    ingest.add_argument("--dicom", required=True, help="folder tree of the PACS dump (any names, any nesting)")
    ingest.add_argument("--diagnoses", help="CSV or Parquet of narrative diagnoses, one per exam")
    ingest.add_argument("--out", required=True, help="warehouse folder for the Parquet tables")
    _common(ingest)
    ingest.set_defaults(handler=cmd_ingest)

    run = sub.add_parser("run", help="the whole method: ingest → … → labels and the HTML report")
    _run_arguments(run, dicom_required=False)
    run.set_defaults(handler=cmd_run, until="report")
    for stage, text in STAGE_HELP.items():
        stage_parser = sub.add_parser(stage, help=f"{text} (stages before it run if not complete)")
        _run_arguments(stage_parser, dicom_required=False)
        stage_parser.set_defaults(handler=cmd_run, until=stage)

    label = sub.add_parser("label", help="label a new dump with a saved pipeline, without re-training")
    label.add_argument("--pipeline", required=True,
                       help="a pipeline version folder (models/<name>/<version>), or an MLflow registry "
                            "reference models:/<model>/<version> or models:/<model>@<alias>")
    label.add_argument("--dicom", required=True, help="the new PACS dump")
    label.add_argument("--diagnoses", help="CSV or Parquet of narrative diagnoses of the new exams")
    label.add_argument("--out", required=True, help="warehouse folder (labels are appended)")
    _common(label)
    label.set_defaults(handler=cmd_label)

    models = sub.add_parser("models", help="list or show saved pipeline versions, or log one to MLflow")
    models.add_argument("action", choices=["list", "show", "log"])
    models.add_argument("pipeline", nargs="?", help="pipeline folder for `show` and `log`")
    models.add_argument("--models", default="models", help="models root (default models/)")
    models.add_argument("--config", help="YAML file (its tracking section applies to `log`)")
    models.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override one setting, e.g. --set tracking.alias=champion (repeatable)")
    models.set_defaults(handler=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Libraries that log every epoch, tile or plot call at INFO drown our progress lines.
    for noisy in ("gensim", "matplotlib", "py4j", "openjpeg", "PIL", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Storage and tracking clients log request headers (signed credentials, tokens) at DEBUG: they
    # stay at WARNING even with --verbose, so no credential reaches a log.
    for client in ("botocore", "aiobotocore", "boto3", "s3fs", "gcsfs", "adlfs", "azure", "google.auth",
                   "fsspec", "urllib3", "mlflow"):
        logging.getLogger(client).setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        if code == 0 and "radnet_spark.session" in sys.modules:
            from radnet_spark.session import save_class_archive

            save_class_archive()
        return code
    except (UserError, ConfigError) as error:
        print(f"radnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"radnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        from radnet_spark.spark_errors import is_spark_error, spark_error_sentence

        if not is_spark_error(error):
            raise
        return _spark_failed(args, error, spark_error_sentence(error))


def _spark_failed(args: argparse.Namespace, error: BaseException, sentence: str) -> int:
    """Print a Spark failure as one sentence after the JVM's own output (and the traceback if verbose)."""
    from radnet_spark.session import settle_console

    settle_console()
    if getattr(args, "verbose", False):
        traceback.print_exception(error, file=sys.stderr)
    print(f"radnet {args.command}: error: Spark failed: {sentence}", file=sys.stderr)
    return EXIT_SPARK_ERROR


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
