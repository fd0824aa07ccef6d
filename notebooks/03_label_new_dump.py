# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · Label a new dump with a saved pipeline
# MAGIC
# MAGIC Ingests the files of `dicom` not seen yet and labels every instance that has no label under
# MAGIC the pipeline version yet, without re-training (`radnet label`). Labels already written never
# MAGIC change; running twice on the same dump adds nothing. The drift summary compares the new
# MAGIC instances with the training data per cluster (share of instances, mean distance to the centre)
# MAGIC and warns when re-training looks due.
# MAGIC
# MAGIC `pipeline` is a version folder (`<models>/<name>/<version>`), an MLflow registry reference
# MAGIC (`models:/<model>/<version>`, `models:/<model>@<alias>`), or `latest`: the newest complete
# MAGIC version of `name` under `models`. This notebook is what the nightly job of the bundle runs
# MAGIC (`resources/relabel_job.yml`).

# COMMAND ----------

# ruff: noqa: E402 - each cell imports what it uses, as notebooks do
import logging
import os

ON_DATABRICKS = "dbutils" in globals()
LOCAL_ROOT = os.environ.get("RADNET_NB_ROOT", "data/notebooks")


def widget(name: str, databricks_default: str, local_default: str) -> str:
    """A notebook parameter: a text widget on Databricks, else ``$RADNET_NB_<NAME>`` or the local default."""
    if ON_DATABRICKS:
        dbutils.widgets.text(name, databricks_default)  # noqa: F821 - defined by Databricks
        return dbutils.widgets.get(name).strip()  # noqa: F821
    return os.environ.get(f"RADNET_NB_{name.upper()}", local_default).strip()


library_log = logging.getLogger("radnet_spark")
library_log.setLevel(logging.INFO)
if not library_log.handlers:
    library_log.addHandler(logging.StreamHandler())

# COMMAND ----------

pipeline = widget("pipeline", "latest", "latest")
models = widget("models", "/Volumes/main/radnet/models", f"{LOCAL_ROOT}/models")
name = widget("name", "default", "default")
dicom = widget("dicom", "/Volumes/main/radnet/incoming/dicom", f"{LOCAL_ROOT}/new_pacs/dicom")
diagnoses = widget("diagnoses", "", f"{LOCAL_ROOT}/new_pacs/diagnoses.csv")
warehouse = widget("warehouse", "/Volumes/main/radnet/warehouse", f"{LOCAL_ROOT}/warehouse")
synthetic_exams = int(widget("synthetic_exams", "0", "5") or 0)

# COMMAND ----------

from pathlib import Path

from radnet_spark.artifacts import latest_pipeline
from radnet_spark.session import get_spark
from radnet_spark.storage import to_local_path
from radnet_spark.synth import generate_pacs
from radnet_spark.tracking import is_registry_uri, resolve_pipeline

spark = get_spark()

if pipeline == "latest":
    # Only versions whose training finished (``complete`` in the manifest, its last write) qualify.
    pipeline = latest_pipeline(to_local_path(models), name)
elif is_registry_uri(pipeline):
    # models:/<model>/<version> or models:/<model>@<alias>: downloaded once under the warehouse.
    pipeline = resolve_pipeline(pipeline, warehouse)
print(f"pipeline: {pipeline}")

dump_dir = Path(to_local_path(dicom))
if synthetic_exams > 0 and not dump_dir.is_dir():
    # A small synthetic "new" dump, drawn with another seed than notebook 1's.
    print(generate_pacs(dump_dir.parent, exams=synthetic_exams, seed=2, workers=1))

# COMMAND ----------

from radnet_spark.pipeline import label

result = label(spark, pipeline, dicom, diagnoses or None, warehouse)
print(result)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Drift per cluster

# COMMAND ----------

import pandas as pd

drift = pd.DataFrame(result.drift)
if drift.empty:
    print("no new instances to label")
elif ON_DATABRICKS:
    display(drift)  # noqa: F821 - defined by Databricks
else:
    print(drift.to_string(index=False))
