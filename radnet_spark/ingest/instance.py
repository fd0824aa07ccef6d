"""One input file → one parsed, de-identified instance or one reject. Pure: no Spark here.

Names: the record's own PN values, title patterns and the names lexicon scrub every kept string
tag here, in the worker; what leaves for the diagnoses step is ``name_hashes``, the salted HMACs of
the record's name tokens (never the names), so the exam's diagnosis can be scrubbed of them later.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

from radnet_spark.dicom.deid import (
    DATE_TIME_KEYWORDS,
    HASHED_ID_KEYWORDS,
    IDENTIFYING_KEYWORDS,
    deidentify_tags,
)
from radnet_spark.dicom.header import (
    DEFAULT_MAX_INFLATED_BYTES,
    dataset_to_tags,
    is_image_instance,
    read_dataset,
)
from radnet_spark.dicom.names import (
    DEFAULT_LEXICON_LOCALES,
    NameScrubber,
    load_lexicon,
    name_token_hashes,
    record_name_tokens,
)
from radnet_spark.dicom.pixels import PixelPolicy, export_8bit
from radnet_spark.dicom.reasons import RecordRejected, RejectReason

PARSED_SCHEMA = (
    "path string, size long, mtime timestamp, status string, stage string, reason string, "
    "detail string, sop_instance_uid string, exam_id string, study_id string, series_id string, "
    "modality string, tags_json string, image binary, image_size int, original_rows int, "
    "original_columns int, frames int, frame_index int, window_center double, window_width double, "
    "window_source string, photometric string, name_hashes array<string>"
)
PARSED_COLUMNS = [part.strip().split(" ")[0] for part in PARSED_SCHEMA.split(",")]

KEY_COLUMNS = ("sop_instance_uid", "exam_id", "study_id", "series_id")


@dataclass(frozen=True)
class ParseOptions:
    salt: str
    policy: PixelPolicy
    max_file_bytes: int
    keep_dates: bool = False
    hash_sop_instance_uid: bool = False
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES
    names_lexicon: str = DEFAULT_LEXICON_LOCALES  # comma-separated Faker locales; "" for none
    names_lexicon_file: str | None = None  # extra names, one per line


@functools.cache
def unwritten_keywords(keep_dates: bool) -> frozenset[str]:
    """Keywords whose values :func:`deidentify_tags` drops, so they are never converted at all.

    The ids it hashes (SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID, AccessionNumber) are
    read, not dropped; patient characteristics go (``parse_file`` never keeps them). Person names
    and sequences are still converted: :func:`record_name_tokens` finds PN values by the VR of the
    dataset's elements, which a raw element of an implicit-VR file does not carry until converted.

    Args:
        keep_dates: The ``keep_dates`` passed to :func:`deidentify_tags`.

    Returns:
        Keywords to pass as ``skip`` to :func:`dataset_to_tags`.
    """
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    dropped = IDENTIFYING_KEYWORDS - HASHED_ID_KEYWORDS
    if not keep_dates:
        dropped |= DATE_TIME_KEYWORDS
    return frozenset(
        keyword for keyword in dropped
        if (tag := tag_for_keyword(keyword)) is not None and dictionary_VR(tag) not in ("PN", "SQ")
    )


def _reject(row: dict, stage: str, reason: str, detail: str) -> dict:
    row.update(status="rejected", stage=stage, reason=str(reason), detail=detail)
    return row


def parse_file(path: str, size: int, options: ParseOptions) -> dict:
    """Parse one file into a row of PARSED_SCHEMA (without path metadata columns' types enforced).

    Header tags are de-identified before they leave this function; an image instance that fails
    the pixel export is still a rejected row (stage ``image``) so the file is accounted for once.
    """
    row: dict = {column: None for column in PARSED_COLUMNS}
    row.update(path=path, size=size, status="ok")
    if size is not None and size < 0:
        if os.path.islink(path) and not os.path.exists(path):
            return _reject(row, "read", RejectReason.BROKEN_LINK, "the symbolic link points to nothing")
        return _reject(row, "read", RejectReason.READ_ERROR, "file could not be stat'ed")
    try:
        header = read_dataset(
            path,
            stop_before_pixels=True,
            max_file_bytes=options.max_file_bytes,
            max_inflated_bytes=options.max_inflated_bytes,
        )
        raw_tags = dataset_to_tags(header, skip=unwritten_keywords(options.keep_dates))
        name_tokens = record_name_tokens(header)
    except RecordRejected as rejected:
        return _reject(row, "read", rejected.reason, rejected.detail)
    except Exception as error:  # noqa: BLE001 - any parser failure is a per-file reject, never a crash
        return _reject(row, "read", RejectReason.READ_ERROR, f"{type(error).__name__} while reading header")

    if not raw_tags.get("SOPInstanceUID"):
        return _reject(row, "header", RejectReason.MISSING_SOP_INSTANCE_UID, "SOPInstanceUID is empty")
    names = NameScrubber(
        name_tokens, lexicon=load_lexicon(options.names_lexicon, options.names_lexicon_file)
    )
    tags = deidentify_tags(
        raw_tags,
        salt=options.salt,
        keep_dates=options.keep_dates,
        hash_sop_instance_uid=options.hash_sop_instance_uid,
        names=names,
    )
    row["name_hashes"] = name_token_hashes(name_tokens, options.salt)
    for key in KEY_COLUMNS:
        row[key] = tags.pop(key, None)
    row["modality"] = tags.get("Modality")
    row["tags_json"] = json.dumps(tags, ensure_ascii=False, sort_keys=True)

    if not is_image_instance(header):
        return _reject(row, "image", RejectReason.NO_PIXEL_DATA, "instance has no pixel data")
    try:
        # The header read defers large values, so the pixels load from the same dataset on demand.
        exported = export_8bit(header, options.policy)
    except RecordRejected as rejected:
        return _reject(row, "image", rejected.reason, rejected.detail)
    except MemoryError:
        return _reject(row, "image", RejectReason.PIXEL_DATA_TOO_LARGE, "decoding ran out of memory")
    except Exception as error:  # noqa: BLE001
        return _reject(row, "image", RejectReason.READ_ERROR, f"{type(error).__name__} while decoding pixels")
    row.update(
        image=exported.image.tobytes(),
        image_size=int(exported.image.shape[0]),
        original_rows=exported.original_rows,
        original_columns=exported.original_columns,
        frames=exported.frames,
        frame_index=exported.frame_index,
        window_center=exported.window_center,
        window_width=exported.window_width,
        window_source=exported.window_source,
        photometric=exported.photometric,
    )
    return row
