# Databricks notebook source
# MAGIC %md
# MAGIC # 4 · Read the report
# MAGIC
# MAGIC The last training run (notebook 2) wrote one self-contained HTML file: headline metrics, the
# MAGIC elbow curve, cluster sizes, modality and body-part composition per cluster, sample images per
# MAGIC cluster and a card per cluster. On Databricks it is shown below; locally its path is printed
# MAGIC (open it in a browser). The saved pipeline versions with their headline score follow.

# COMMAND ----------

# ruff: noqa: E402 - each cell imports what it uses, as notebooks do
import os

ON_DATABRICKS = "dbutils" in globals()
LOCAL_ROOT = os.environ.get("RADNET_NB_ROOT", "data/notebooks")


def widget(name: str, databricks_default: str, local_default: str) -> str:
    """A notebook parameter: a text widget on Databricks, else ``$RADNET_NB_<NAME>`` or the local default."""
    if ON_DATABRICKS:
        dbutils.widgets.text(name, databricks_default)  # noqa: F821 - defined by Databricks
        return dbutils.widgets.get(name).strip()  # noqa: F821
    return os.environ.get(f"RADNET_NB_{name.upper()}", local_default).strip()


warehouse = widget("warehouse", "/Volumes/main/radnet/warehouse", f"{LOCAL_ROOT}/warehouse")
models = widget("models", "/Volumes/main/radnet/models", f"{LOCAL_ROOT}/models")

# COMMAND ----------

from pathlib import Path

from radnet_spark.errors import PipelineError
from radnet_spark.pipeline import StageLedger

# The report stage records where it wrote the file; no Spark is needed to read it.
report = StageLedger(warehouse).info("report").get("report")
if not report or not Path(report).is_file():
    raise PipelineError(f"Warehouse {warehouse} has no report yet; train a pipeline with notebook 2 first.")
print(f"report: {report} ({Path(report).stat().st_size / 1e6:.1f} MB)")
if ON_DATABRICKS:
    displayHTML(Path(report).read_text(encoding="utf-8"))  # noqa: F821 - defined by Databricks
else:
    print(f"open {Path(report).resolve().as_uri()} in a browser")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Saved pipeline versions

# COMMAND ----------

from radnet_spark.artifacts import list_pipelines
from radnet_spark.storage import to_local_path

for row in list_pipelines(to_local_path(models)):
    score = "-" if row["score"] is None else f"{row['score']:.3f}"
    state = "complete" if row["complete"] else "incomplete"
    print(f"{row['pipeline']}  {row['created_at']}  k={row['k']}  validation score={score}  {state}")
