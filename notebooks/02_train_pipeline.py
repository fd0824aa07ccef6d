# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · Train the pipeline and label the dump
# MAGIC
# MAGIC Runs the whole method (`radnet run`): ingest (only files not seen yet) → tag features → the
# MAGIC three embedders, fitted on the training split → embeddings → fusion → elbow and k-means →
# MAGIC evaluation → HTML report → `labels`. Every fitted step is saved under one pipeline version,
# MAGIC `<models>/<name>/<version>`, which notebook 3 applies to new dumps.
# MAGIC
# MAGIC A stage already complete for the same data and settings is skipped, so re-running after a
# MAGIC failure resumes where it stopped. `models` must be a local path on the driver (`/Volumes/...`
# MAGIC or `/dbfs/...`). Settings: a YAML file (`config`) and `section.field=value` overrides
# MAGIC separated by `;` (`overrides`), e.g. `image.max_epochs=6; cluster.k_max=30`.

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

dicom = widget("dicom", "/Volumes/main/radnet/pacs/dicom", f"{LOCAL_ROOT}/pacs/dicom")
diagnoses = widget("diagnoses", "/Volumes/main/radnet/pacs/diagnoses.csv", f"{LOCAL_ROOT}/pacs/diagnoses.csv")
warehouse = widget("warehouse", "/Volumes/main/radnet/warehouse", f"{LOCAL_ROOT}/warehouse")
models = widget("models", "/Volumes/main/radnet/models", f"{LOCAL_ROOT}/models")
name = widget("name", "default", "default")
config_path = widget("config", "", "")
overrides = widget("overrides", "", "")

# COMMAND ----------

from radnet_spark.config import load_config
from radnet_spark.pipeline import run
from radnet_spark.session import get_spark

config = load_config(config_path or None, [o.strip() for o in overrides.split(";") if o.strip()])
spark = get_spark(config.spark)

# An empty `dicom` trains on what the warehouse already holds (e.g. after notebook 1).
result = run(spark, dicom or None, diagnoses or None, warehouse, config, models_root=models, name=name)
print(result)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Clusters found
# MAGIC Instances per cluster under the new pipeline version; the full picture is in the report
# MAGIC (notebook 4).

# COMMAND ----------

from pyspark.sql import functions as F

from radnet_spark.tables import read_table

sizes = (
    read_table(spark, warehouse, "labels")
    .where(F.col("pipeline_version") == result.pipeline.version)
    .groupBy("cluster").count().orderBy("cluster")
)
if ON_DATABRICKS:
    display(sizes)  # noqa: F821 - defined by Databricks
    # A following job task (notebook 3) can read the version with dbutils.jobs.taskValues.get.
    dbutils.jobs.taskValues.set("pipeline", str(result.pipeline.root))  # noqa: F821
else:
    print(sizes.toPandas().to_string(index=False))
print(f"pipeline: {result.pipeline.root}")
