"""radnet-spark: unsupervised labelling of a hospital PACS dump on Apache Spark."""

import os

# Before torch loads MKL: MKL otherwise picks its code path and thread count per call (by memory
# alignment and load), so the same training data and seed could give weights differing in the last
# bits from one run to the next. The environment wins when a user sets these themselves.
os.environ.setdefault("MKL_CBWR", "AUTO")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

__version__ = "0.1.0"
