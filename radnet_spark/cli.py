"""The ``radnet`` command line: one subcommand per stage.

Every subcommand takes ``--config YAML`` and repeatable ``--set section.field=value`` overrides;
the effective config is written next to the stage's output. Errors a user can cause print one
sentence and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from radnet_spark.config import ConfigError, RadnetConfig, load_config, write_effective_config
from radnet_spark.errors import UserError

log = logging.getLogger("radnet")

EXIT_USER_ERROR = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file overriding the default settings")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="override one setting, e.g. --set ingest.image_size=256 (repeatable)",
    )
    parser.add_argument("--master", help="Spark master (default: spark-submit's, $SPARK_MASTER, or local[*])")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")


def _config(args: argparse.Namespace) -> RadnetConfig:
    config = load_config(args.config, args.overrides)
    if getattr(args, "master", None):
        config.spark.master = args.master
    return config


def _spark(config: RadnetConfig):  # noqa: ANN202 - pyspark import stays lazy for `synth`
    from radnet_spark.session import get_spark

    return get_spark(config.spark)


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


def cmd_ingest(args: argparse.Namespace) -> int:
    from radnet_spark.ingest.job import ingest
    from radnet_spark.storage import require_directory, require_file

    require_directory(args.dicom, "DICOM folder")
    if args.diagnoses:
        require_file(args.diagnoses, "Diagnoses file")
    config = _config(args)
    spark = _spark(config)
    summary = ingest(spark, args.dicom, args.diagnoses, args.out, config)
    write_effective_config(config, args.out, "ingest")
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radnet",
        description="Label a PACS dump without human labels, on Apache Spark (RadiologyNET method).",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UserError, ConfigError) as error:
        print(f"radnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"radnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
