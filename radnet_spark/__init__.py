"""radnet-spark: unsupervised labelling of a hospital PACS dump on Apache Spark."""

__version__ = "0.1.0"
