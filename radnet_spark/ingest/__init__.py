"""Ingest: a PACS dump into de-identified Parquet tables (see ``job.ingest``)."""
