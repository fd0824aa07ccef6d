"""Per-record DICOM logic, pure and Spark-free.

* :mod:`~radnet_spark.dicom.reasons` — reject codes and the exception that carries them.
* :mod:`~radnet_spark.dicom.header` — read and validate one file; flatten its tags.
* :mod:`~radnet_spark.dicom.deid` — PS3.15 de-identification, salted ids, free-text scrubbing.
* :mod:`~radnet_spark.dicom.pixels` — the 8-bit image export and its value/shape policies.

A per-file pass inside ``mapInPandas`` looks like::

    ds = read_dataset(path, stop_before_pixels=True, max_file_bytes=limit)
    row = deidentify_tags(dataset_to_tags(ds), salt=salt)
    if is_image_instance(ds):
        image = export_8bit(ds, PixelPolicy.from_config(ingest_config))  # reads pixels on demand

each step raising :class:`RecordRejected` for the ``rejects`` table.
"""

from radnet_spark.dicom.reasons import RecordRejected, RejectReason

__all__ = ["RecordRejected", "RejectReason"]
