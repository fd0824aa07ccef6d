"""Machine-readable reasons why a file, an image or a diagnosis is left out.

Every per-record function in :mod:`radnet_spark.dicom` signals a problem a user's data can cause by
raising :class:`RecordRejected`; the ingest job catches it and writes one row to the ``rejects``
table (``reason`` = the code, ``detail`` = the human text). The detail names attributes, never their
values, because values can be patient data.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a record was rejected; the string value is what the ``rejects`` table stores."""

    # Reading the file.
    NOT_DICOM = "not_dicom"
    TRUNCATED = "truncated"
    READ_ERROR = "read_error"
    ACCESS_DENIED = "access_denied"  # the filesystem or object store refused to read the file
    FILE_TOO_LARGE = "file_too_large"
    INFLATED_TOO_LARGE = "inflated_too_large"
    BROKEN_LINK = "broken_link"
    SEQUENCE_TOO_DEEP = "sequence_too_deep"
    # Header content.
    MISSING_SOP_INSTANCE_UID = "missing_sop_instance_uid"
    MISSING_TRANSFER_SYNTAX = "missing_transfer_syntax"
    INVALID_VALUE = "invalid_value"
    # Pixel data.
    NO_PIXEL_DATA = "no_pixel_data"
    UNDECODABLE_COMPRESSION = "undecodable_compression"
    PIXEL_DATA_SIZE_MISMATCH = "pixel_data_size_mismatch"
    PIXEL_DATA_TOO_LARGE = "pixel_data_too_large"
    UNSUPPORTED_PHOTOMETRIC = "unsupported_photometric"
    MODALITY_LUT = "modality_lut"
    NO_WINDOW = "no_window"
    VALUE_POLICY_MAX = "value_policy_max"
    VALUE_POLICY_DISTINCT = "value_policy_distinct"
    SHAPE_POLICY = "shape_policy"
    # Across records and diagnoses.
    DUPLICATE_SOP_INSTANCE_UID = "duplicate_sop_instance_uid"
    # scope
    MODALITY_OUT_OF_SCOPE = "modality_out_of_scope"
    EXAM_TOO_LARGE = "exam_too_large"
    EMPTY_DIAGNOSIS = "empty_diagnosis"
    SHORT_DIAGNOSIS = "short_diagnosis"
    DUPLICATE_DIAGNOSIS = "duplicate_diagnosis"
    MISSING_EXAM_KEY = "missing_exam_key"


class RecordRejected(Exception):  # noqa: N818 - the name the ingest job and rejects table use
    """A record cannot be used; carries a reason code and a PHI-free explanation.

    Args:
        reason: The machine-readable reason.
        detail: One sentence for a human. Name DICOM attributes, never their values.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type, tuple[RejectReason, str]]:
        # Keeps the exception picklable with both arguments (Spark ships exceptions between processes).
        return (type(self), (self.reason, self.detail))
