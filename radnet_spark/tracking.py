"""MLflow tracking: a finished pipeline version as an MLflow run and a registered model version.

A pipeline version stays a self-contained folder (DESIGN, "Tracking"); MLflow gets a copy of it.
:func:`log_pipeline_version` logs the version as one run — parameters are the effective config,
metrics the evaluation (per split), the elbow sweep and the comparison table when there is one,
artifacts the version folder (``pipeline/``, manifest included), the HTML report and the elbow
plot — and registers ``pipeline/`` as a new version of a registered model. :func:`resolve_pipeline`
turns ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` back into a local version folder
for ``radnet label``.

The tracking server is MLflow's own business: ``MLFLOW_TRACKING_URI`` (and, for a separate model
registry, ``MLFLOW_REGISTRY_URI``), with credentials where MLflow looks for them (on Databricks the
notebook's or job's identity). radnet reads no credential and writes none.

MLflow is an optional extra (``pip install 'radnet-spark[mlflow]'``); Databricks runtimes ship it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radnet_spark import __version__
from radnet_spark.artifacts import ELBOW, MANIFEST, PipelineDir, read_manifest
from radnet_spark.config import RadnetConfig, flatten_settings
from radnet_spark.errors import PipelineError, UserError
from radnet_spark.storage import to_local_path

log = logging.getLogger(__name__)

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))/?$")
# MLflow's limit on one parameter value; longer values (long lists) are cut, with a marker.
MAX_PARAM_CHARS = 6000
# MLflow metric keys: letters, digits, underscores, dashes, periods, spaces and slashes.
_METRIC_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ ]")
PIPELINE_TAG = "radnet.pipeline_version"
REGISTRY_CACHE = "_registry"
# How long to wait for a registry (Databricks, Unity Catalog) to finish copying a new model version.
READY_TIMEOUT_SECONDS = 600


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise UserError(
            "MLflow tracking needs MLflow: pip install 'radnet-spark[mlflow]' (Databricks runtimes ship it)."
        ) from None
    return mlflow


def require_mlflow() -> None:
    """Raise the one-sentence UserError now when MLflow is missing (``run`` checks before training)."""
    _mlflow()


def is_registry_uri(pipeline: str) -> bool:
    """True for ``models:/…`` (a model registry reference) rather than a pipeline folder."""
    return pipeline.startswith("models:/")


@dataclass
class TrackedVersion:
    """Where a pipeline version went in MLflow."""

    run_id: str
    model_name: str
    model_version: str
    tracking_uri: str
    alias: str | None = None

    def __str__(self) -> str:
        alias = f" (alias @{self.alias})" if self.alias else ""
        return (f"mlflow: run {self.run_id} at {self.tracking_uri}; registered as "
                f"models:/{self.model_name}/{self.model_version}{alias}")


def params_of(config: RadnetConfig) -> dict[str, str]:
    """The effective config as MLflow parameters: ``section.field`` → value text (cut at MLflow's limit)."""
    params = {}
    for key, value in flatten_settings(config.to_dict()).items():
        text = "null" if value is None else str(value)
        params[key] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."
    return params


def _metric_key(*parts: Any) -> str:
    return _METRIC_KEY_UNSAFE.sub("_", ".".join(str(p) for p in parts))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN is no metric


def metrics_of(manifest: dict[str, Any], comparison: Any | None = None) -> dict[str, float]:
    """Evaluation metrics (``validation.score``, ``test.nmi_bpe``, …), ``k``, and the comparison table.

    The comparison table (``radnet evaluate --compare``) becomes ``compare.<model>.<fusion>.<metric>``.
    """
    metrics: dict[str, float] = {}
    if _number(manifest.get("k")) is not None:
        metrics["k"] = float(manifest["k"])
    for split, values in (manifest.get("metrics") or {}).items():
        for name, value in (values or {}).items():
            number = _number(value)
            if number is not None:
                metrics[_metric_key(split, name)] = number
    if comparison is not None:
        for row in comparison.to_dict("records"):
            for column, value in row.items():
                number = _number(value)
                if column in ("model", "fusion", "algorithm") or number is None:
                    continue
                metrics[_metric_key("compare", row.get("model"), row.get("fusion"), column)] = number
    return metrics


def _comparison(warehouse: str | None) -> tuple[Path | None, Any | None]:
    if warehouse is None:
        return None, None
    folder = Path(to_local_path(warehouse)) / "evaluation"
    csv = folder / "comparison.csv"
    if not csv.is_file():
        return None, None
    import pandas as pd

    return folder, pd.read_csv(csv)


def _log_elbow(mlflow: Any, pipeline: PipelineDir) -> None:
    """The k sweep as a metric series (MLflow draws it) and the elbow plot as an image artifact."""
    if not pipeline.has(ELBOW):
        return
    from radnet_spark.clustering.elbow import ElbowResult, plot_elbow

    elbow = ElbowResult.load(pipeline.path(ELBOW))
    for k, wcss in zip(elbow.ks, elbow.wcss, strict=True):
        mlflow.log_metric("elbow.wcss", float(wcss), step=int(k))
    figure = plot_elbow(elbow)
    mlflow.log_figure(figure, "plots/elbow.png")
    import matplotlib.pyplot as plt

    plt.close(figure)


def _log_model_descriptor(mlflow: Any, artifact_path: str) -> None:
    """An ``MLmodel`` file with a signature (DICOM path → cluster) beside the pipeline's files.

    It has no flavour (the pipeline is applied by ``radnet label``, not by ``mlflow.pyfunc``); it is
    there because registries that accept only MLflow models with a signature (Unity Catalog) check it.
    """
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("string", "path")]),
                               outputs=Schema([ColSpec("long", "cluster")]))
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "MLmodel"
        Model(artifact_path=artifact_path, signature=signature).save(str(target))
        mlflow.log_artifact(str(target), artifact_path)


def _wait_until_ready(client: Any, name: str, version: str) -> None:
    """Block until the registry has copied the version (immediate on a local store)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        status = str(client.get_model_version(name, version).status)
        if status.endswith("READY"):
            return
        if status.endswith("FAILED_REGISTRATION"):
            raise PipelineError(f"The model registry failed to register models:/{name}/{version}.")
        if time.monotonic() > deadline:
            raise PipelineError(f"models:/{name}/{version} was not ready after {READY_TIMEOUT_SECONDS} s.")
        time.sleep(2)


def log_pipeline_version(pipeline: PipelineDir, config: RadnetConfig, warehouse: str | None) -> TrackedVersion:
    """Log a finished pipeline version as an MLflow run and register it as a model version.

    Idempotent: the result is recorded in the version's manifest (``mlflow``), and a version already
    logged to the same tracking server and model name is not logged again (a re-run of a complete
    ``radnet run`` logs nothing new).

    Args:
        pipeline: A complete pipeline version folder.
        config: The effective config (its ``tracking`` section names experiment, model and alias).
        warehouse: The warehouse the version was trained on (for the report and comparison table).

    Raises:
        UserError: MLflow is not installed, or the tracking server refuses (one sentence).
    """
    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    manifest = pipeline.manifest()
    if not manifest.get("complete"):
        raise PipelineError(f"Pipeline {pipeline.root} did not finish training; it is not logged to MLflow.")
    tracking = config.tracking
    model_name = tracking.model_name or pipeline.name
    tracking_uri = str(mlflow.get_tracking_uri())
    recorded = manifest.get("mlflow") or {}
    if recorded.get("tracking_uri") == tracking_uri and recorded.get("model_name") == model_name:
        return TrackedVersion(**{k: recorded.get(k) for k in ("run_id", "model_name", "model_version",
                                                                 "tracking_uri", "alias")})
    try:
        mlflow.set_experiment(tracking.experiment)
        with mlflow.start_run(run_name=f"{pipeline.name}/{pipeline.version}") as run:
            mlflow.set_tags({"radnet.pipeline_name": pipeline.name, PIPELINE_TAG: pipeline.version,
                             "radnet.version": __version__})
            mlflow.log_params(params_of(config))
            comparison_dir, comparison = _comparison(warehouse)
            mlflow.log_metrics(metrics_of(manifest, comparison))
            _log_elbow(mlflow, pipeline)
            mlflow.log_artifacts(str(pipeline.root), "pipeline")
            _log_model_descriptor(mlflow, "pipeline")
            report = Path(to_local_path(warehouse)) / "report" if warehouse else None
            if report is not None and report.is_dir():
                mlflow.log_artifacts(str(report), "report")
            if comparison_dir is not None:
                mlflow.log_artifacts(str(comparison_dir), "evaluation")
            source = mlflow.get_artifact_uri("pipeline")
        client = MlflowClient()
        try:
            client.create_registered_model(model_name, description="radnet-spark pipeline versions")
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        created = client.create_model_version(
            model_name, source, run_id=run.info.run_id, tags={PIPELINE_TAG: pipeline.version}
        )
        _wait_until_ready(client, model_name, str(created.version))
        if tracking.alias:
            client.set_registered_model_alias(model_name, tracking.alias, str(created.version))
    except MlflowException as error:
        raise UserError(
            f"Pipeline {pipeline.root} is saved, but MLflow at {tracking_uri} refused it "
            f"({error.error_code}); retry with `radnet models log {pipeline.root}`."
        ) from None
    tracked = TrackedVersion(run.info.run_id, model_name, str(created.version), tracking_uri, tracking.alias)
    pipeline.update_manifest(mlflow=dataclasses.asdict(tracked))
    log.info("%s", tracked)
    return tracked


def resolve_pipeline(uri: str, warehouse: str) -> str:
    """A local pipeline version folder for ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    The registered version's artifacts are downloaded once into ``WAREHOUSE/_registry/<name>/<pipeline
    version>/`` (the warehouse is where every executor can read, as the fitted models must be) under
    the pipeline version's own name, so labels are keyed by the same ``pipeline_version`` as when
    labelling from the original folder. A folder already downloaded is reused.

    Raises:
        UserError: Malformed URI, MLflow missing, or no such model, version or alias (one sentence).
    """
    match = MODEL_URI.match(uri)
    if match is None:
        raise UserError(f"--pipeline {uri} must look like models:/<name>/<version> or models:/<name>@<alias>.")
    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, version, alias = match["name"], match["version"], match["alias"]
    client = MlflowClient()
    try:
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as error:
        what = f"alias @{alias}" if alias else f"version {version}"
        raise PipelineError(
            f"The model registry at {mlflow.get_registry_uri()} has no {what} of model {name!r} ({error.error_code})."
        ) from None
    cache = Path(to_local_path(warehouse)) / REGISTRY_CACHE / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    pipeline_version = (found.tags or {}).get(PIPELINE_TAG)
    if pipeline_version and read_manifest(cache / pipeline_version / MANIFEST).get("complete"):
        return str(cache / pipeline_version)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{found.version}",
                                                         dst_path=str(staging)))
        manifests = sorted(local.rglob(MANIFEST), key=lambda p: len(p.parts))
        if not manifests:
            raise PipelineError(f"{uri} holds no radnet pipeline version (no {MANIFEST}).")
        folder = manifests[0].parent
        pipeline_version = str(read_manifest(manifests[0]).get("version") or pipeline_version or f"v{found.version}")
        target = cache / pipeline_version
        try:
            folder.rename(target)  # atomic: a concurrent download of the same version loses harmlessly
        except OSError:
            if not read_manifest(target / MANIFEST).get("complete"):
                raise
    except MlflowException as error:
        raise PipelineError(f"The artifacts of {uri} cannot be downloaded ({error.error_code}).") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("pipeline %s resolved to %s", uri, target)
    return str(target)
