# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Ingest a PACS dump and explore the tables
# MAGIC
# MAGIC Reads every file under `dicom` (incrementally: files already in the `files` table are skipped),
# MAGIC writes the warehouse tables (`files`, `rejects`, `tags`, `images`, `diagnoses`) and looks at them:
# MAGIC row counts, rejects by reason, how well `BodyPartExamined` is filled before and after imputation,
# MAGIC and a few exported 8-bit images.
# MAGIC
# MAGIC **Paths.** On Databricks the DICOM files must be readable as local files on every executor:
# MAGIC use a Unity Catalog volume (`/Volumes/<catalog>/<schema>/<volume>/...`) or `/dbfs/...`
# MAGIC (`dbfs:/` is translated). Locally (`python notebooks/01_explore_tables.py`) the widgets fall
# MAGIC back to `RADNET_NB_<WIDGET>` environment variables, then to folders under `$RADNET_NB_ROOT`
# MAGIC (default `data/notebooks`); a missing local dump is generated with `radnet synth`.

# COMMAND ----------

# ruff: noqa: E402 - each cell imports what it uses, as notebooks do
import logging
import os
from pathlib import Path

from pyspark.sql import DataFrame

ON_DATABRICKS = "dbutils" in globals()
LOCAL_ROOT = os.environ.get("RADNET_NB_ROOT", "data/notebooks")


def widget(name: str, databricks_default: str, local_default: str) -> str:
    """A notebook parameter: a text widget on Databricks, else ``$RADNET_NB_<NAME>`` or the local default."""
    if ON_DATABRICKS:
        dbutils.widgets.text(name, databricks_default)  # noqa: F821 - defined by Databricks
        return dbutils.widgets.get(name).strip()  # noqa: F821
    return os.environ.get(f"RADNET_NB_{name.upper()}", local_default).strip()


def show(df: DataFrame) -> None:
    """Render a small, aggregated result: Databricks' table view, or plain text locally."""
    if ON_DATABRICKS:
        display(df)  # noqa: F821 - defined by Databricks
    else:
        print(df.toPandas().to_string(index=False))


# Progress lines of the library (stage started/finished), without Spark's or py4j's chatter.
library_log = logging.getLogger("radnet_spark")
library_log.setLevel(logging.INFO)
if not library_log.handlers:
    library_log.addHandler(logging.StreamHandler())

# COMMAND ----------

dicom = widget("dicom", "/Volumes/main/radnet/pacs/dicom", f"{LOCAL_ROOT}/pacs/dicom")
diagnoses = widget("diagnoses", "/Volumes/main/radnet/pacs/diagnoses.csv", f"{LOCAL_ROOT}/pacs/diagnoses.csv")
warehouse = widget("warehouse", "/Volumes/main/radnet/warehouse", f"{LOCAL_ROOT}/warehouse")
config_path = widget("config", "", "")
overrides = widget("overrides", "", "")
synthetic_exams = int(widget("synthetic_exams", "0", "40") or 0)

# COMMAND ----------

from radnet_spark.config import load_config
from radnet_spark.ingest.job import ingest
from radnet_spark.session import get_spark
from radnet_spark.storage import to_local_path
from radnet_spark.synth import generate_pacs

# `section.field=value` pairs separated by ';' (a value such as [8,8,16,16] may hold commas).
config = load_config(config_path or None, [o.strip() for o in overrides.split(";") if o.strip()])
spark = get_spark(config.spark)

dump_dir = Path(to_local_path(dicom))
if synthetic_exams > 0 and not dump_dir.is_dir():
    # A synthetic dump to try the notebooks on: `dicom/` and `diagnoses.csv` side by side.
    print(generate_pacs(dump_dir.parent, exams=synthetic_exams, seed=1, workers=1))

summary = ingest(spark, dicom, diagnoses or None, warehouse, config)
print(summary)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Row counts

# COMMAND ----------

from pyspark.sql import functions as F

from radnet_spark.tables import read_table, table_exists

counts = [(name, read_table(spark, warehouse, name).count())
          for name in ("files", "rejects", "tags", "images", "diagnoses") if table_exists(warehouse, name)]
show(spark.createDataFrame(counts, "table string, rows long"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Rejects by stage and reason
# MAGIC Reason codes are listed in `radnet_spark/dicom/reasons.py`; `detail` never holds patient data.

# COMMAND ----------

if table_exists(warehouse, "rejects"):
    show(read_table(spark, warehouse, "rejects").groupBy("stage", "reason").count().orderBy(F.desc("count")))
else:
    print("no rejects")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Modalities, and BodyPartExamined before and after imputation
# MAGIC `before`: share of instances whose own tag names a body part; `after`: share labelled once the
# MAGIC BPE rules (descriptions, protocol names) have filled the gaps.

# COMMAND ----------

from radnet_spark.tags.bpe import add_bpe_columns, bpe_fill_rates, load_bpe_rules

tags = read_table(spark, warehouse, "tags")
rules = load_bpe_rules(config.tags.bpe_rules_path)
with_bpe = add_bpe_columns(tags, rules)
print("BodyPartExamined fill:", bpe_fill_rates(with_bpe))
modality = F.col("Modality") if "Modality" in tags.columns else F.lit(None).cast("string")
show(with_bpe.groupBy(modality.alias("modality"), "bpe").count().orderBy("modality", F.desc("count")))

# COMMAND ----------

# MAGIC %md
# MAGIC ## A few exported images
# MAGIC The 8-bit, square images the image embedder trains on (a seeded sample of at most 12).

# COMMAND ----------

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend needed locally

sample = (
    read_table(spark, warehouse, "images")
    .orderBy(F.xxhash64("sop_instance_uid", F.lit(1)))
    .select("modality", "image", "image_size")
    .limit(12)
    .collect()
)
fig = Figure(figsize=(12, 4.4))
axes = fig.subplots(2, 6)
for ax in axes.flat:
    ax.axis("off")
for ax, row in zip(axes.flat, sample, strict=False):
    size = int(row["image_size"])
    ax.imshow(np.frombuffer(bytes(row["image"]), dtype=np.uint8).reshape(size, size), cmap="gray", vmin=0, vmax=255)
    ax.set_title(row["modality"] or "?", fontsize=9)
fig.tight_layout()
if ON_DATABRICKS:
    display(fig)  # noqa: F821
else:
    figure_path = Path(to_local_path(warehouse)) / "_notebooks" / "sample_images.png"
    figure_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_path, dpi=80)
    print(f"sample images: {figure_path}")
