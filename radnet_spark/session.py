"""The one SparkSession builder every job uses.

Precedence for the master: a master already set by ``spark-submit`` (``spark.master`` in the
launcher's conf) > ``SPARK_MASTER`` > ``config.spark.master`` > ``local[*]``. The repository's
``spark-defaults.conf`` is loaded for local runs unless the cluster provides its own defaults.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from radnet_spark.config import SparkConfig

log = logging.getLogger(__name__)

REPO_DEFAULTS = Path(__file__).resolve().parent.parent / "spark-defaults.conf"
PACKAGED_DEFAULTS = Path(__file__).resolve().parent / "conf" / "spark-defaults.conf"

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


def resolve_master(config: SparkConfig) -> str | None:
    """The master to set on the builder, or None when spark-submit already decided."""
    if _launched_by_spark_submit():
        return None
    return os.environ.get("SPARK_MASTER") or config.master or "local[*]"


def get_spark(config: SparkConfig | None = None) -> SparkSession:
    """Return the active SparkSession or build one from config, repo defaults and environment."""
    config = config or SparkConfig()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
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
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    log.info("Spark %s, master %s", spark.version, spark.conf.get("spark.master", "?"))
    return spark
