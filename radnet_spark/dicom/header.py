"""DICOM header reading: one file to a validated dataset, one dataset to a flat tag dictionary.

Reading is strict about what a PACS dump really contains: files that are not DICOM, cut-off copies,
datasets without an instance UID and sequences nested absurdly deep are rejected with a
:class:`~radnet_spark.dicom.reasons.RecordRejected` instead of crashing the task.

Decisions worth knowing:

* A file without the 128-byte preamble and ``DICM`` prefix is accepted as a *raw* dataset only when
  it starts like one (its first element is in group 0x0000, 0x0002 or 0x0008, either byte order) and
  holds at least one group 0x0008 element; ``force=True`` alone would happily "parse" any junk.
* A raw dataset has no file meta, hence no TransferSyntaxUID. Its encoding (implicit/explicit VR,
  byte order) is what pydicom detected while reading, which fully describes native pixel data, so
  we record it as the transfer syntax. Only a raw dataset with *encapsulated* pixel data (which
  compression is unknowable) and a Part 10 file whose meta lacks TransferSyntaxUID are rejected as
  ``missing_transfer_syntax``.
* A Deflated Explicit VR Little Endian dataset is never inflated in memory: the deflate stream is
  inflated in chunks into a temporary file (removed with the dataset), and more than
  ``max_inflated_bytes`` of output rejects the file as ``inflated_too_large`` while inflating, so
  a decompression bomb costs one chunk of memory. The dataset is then read from that file like an
  Explicit VR Little Endian one.
* Truncation is detected by comparing every top-level element's declared length with the bytes
  actually read (or, for deferred values, with the file size), and by a partial element header left
  at the end of the file.
* pydicom's warnings and log records can quote attribute values (patient data), so both are
  silenced while we read and convert.
* An object-store path (``s3://…``, see :mod:`radnet_spark.storage`) is read through one fsspec
  stream kept open as long as the dataset: the header costs one ranged request, deferred values
  (pixel data) are read from the same stream only when accessed. A store's access denial is
  ``access_denied``; a local file without read permission is too.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import struct
import tempfile
import warnings
import weakref
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import pydicom
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.hooks import raw_element_value as _DEFAULT_RAW_ELEMENT_VALUE
from pydicom.hooks import raw_element_vr as _DEFAULT_RAW_ELEMENT_VR
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import TEXT_VR_DELIMS

from radnet_spark.dicom.reasons import RecordRejected, RejectReason

PIXEL_DATA_KEYWORDS: tuple[str, ...] = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PIXEL_TAGS = frozenset(Tag(k) for k in PIXEL_DATA_KEYWORDS)
# Bulk binary VRs carry pixel-like payloads (overlays, palettes, waveforms), not tag features.
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"})
_UNDEFINED_LENGTH = 0xFFFFFFFF
_RAW_FIRST_GROUPS = frozenset({0x0000, 0x0002, 0x0008})
DEFAULT_MAX_SEQUENCE_DEPTH = 16
# Attributes with more values than this are arrays (LUTs, coordinates), useless as tag columns.
MAX_VALUES_PER_ATTRIBUTE = 64
DEFER_BYTES = 64 * 1024
MAX_TAG_VALUE_BYTES = DEFER_BYTES
"""Attribute values longer than this (64 KiB) are left out of the tag dictionary without being loaded."""
DEFAULT_MAX_INFLATED_BYTES = 512 * 1024 * 1024
_INFLATE_CHUNK = 1024 * 1024
# The start of a file read before parsing: the preamble and, in nearly every file, the whole file meta.
_HEAD_BYTES = 4096
_META_GROUP_LENGTH = b"\x02\x00\x00\x00UL\x04\x00"
_DEFLATED_UID_BYTES = DeflatedExplicitVRLittleEndian.encode("ascii")
_NUMERIC_STRING_VRS = frozenset({"DS", "IS"})
# C0 controls other than tab/newline/carriage return are never meaningful in a tag value.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records, which may quote attribute values (PHI)."""
    logger = logging.getLogger("pydicom")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = was_disabled


def is_image_instance(ds: Dataset) -> bool:
    """Tell whether a dataset holds an image (PixelData, FloatPixelData or DoubleFloatPixelData).

    Args:
        ds: A dataset, read with or without its pixel data.

    Returns:
        True when one of the pixel data elements is present (also when its value is deferred, as
        after ``read_dataset(..., stop_before_pixels=True)``).
    """
    return any(tag in ds for tag in _PIXEL_TAGS)


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A raw (no preamble) dataset starts with a low-group element in either byte order."""
    if len(head) < 8:
        return False
    little = int.from_bytes(head[0:2], "little")
    big = int.from_bytes(head[0:2], "big")
    return little in _RAW_FIRST_GROUPS or big in _RAW_FIRST_GROUPS


def _check_truncation(ds: Dataset, file_size: int, deflated: bool) -> None:
    """Raise ``truncated`` when an element holds fewer bytes than it declares or a header is cut."""
    last_end = 0
    last_defined = True
    for tag in list(ds.keys()):
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement):
            continue
        length = elem.length
        if length == _UNDEFINED_LENGTH:
            if elem.value_tell is not None and elem.value_tell >= last_end:
                last_defined = False
            continue
        if elem.value is not None:
            short = len(elem.value) < length
        else:  # deferred: compare the declared end with the file size
            short = not deflated and elem.value_tell is not None and elem.value_tell + length > file_size
        if short:
            keyword = keyword_for_tag(tag) or str(tag)
            raise RecordRejected(RejectReason.TRUNCATED, f"The file ends inside attribute {keyword}.")
        if elem.value_tell is not None and elem.value_tell + length >= last_end:
            last_end = elem.value_tell + length
            last_defined = True
    # pydicom stops silently on an incomplete element header (< 12 bytes) at the end of the file.
    if not deflated and last_defined and 0 < file_size - last_end < 12 and last_end > 0:
        raise RecordRejected(RejectReason.TRUNCATED, "The file ends inside an element header.")


def _is_undefined_length(elem: Any) -> bool:
    """Undefined length (encapsulated pixels), for a raw element (no ``is_undefined_length``) or a read one."""
    if isinstance(elem, RawDataElement):
        return elem.length == _UNDEFINED_LENGTH
    return bool(getattr(elem, "is_undefined_length", False))


def _sequence_depth_exceeds(ds: Dataset, limit: int) -> bool:
    """True when sequences nest deeper than ``limit`` levels (parses sequences lazily, level by level)."""
    if limit <= 0:
        return True
    for tag in list(ds.keys()):
        elem = ds.get_item(tag, keep_deferred=True)
        if elem.VR != "SQ":
            continue
        for item in ds[tag].value:
            if _sequence_depth_exceeds(item, limit - 1):
                return True
    return False


def _infer_transfer_syntax(ds: Dataset) -> None:
    """Record the encoding pydicom detected in a raw dataset as its transfer syntax."""
    implicit, little = ds.original_encoding
    if implicit is None:
        return
    if implicit:
        uid = ImplicitVRLittleEndian
    elif little:
        uid = ExplicitVRLittleEndian
    else:
        uid = ExplicitVRBigEndian
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid


@contextlib.contextmanager
def _binary(source: str | BinaryIO) -> Iterator[BinaryIO]:
    """A local path opened for reading, or an open stream rewound (and left open for the dataset)."""
    if isinstance(source, str):
        with open(source, "rb") as handle:
            yield handle
    else:
        source.seek(0)
        yield source


def _meta_rules_out_deflate(head: bytes) -> bool:
    """Whether the start of a Part 10 file shows a whole file meta without the deflated syntax's UID.

    Saves parsing the file meta a second time for nearly every file: the meta's group length says
    where it ends, and a transfer syntax whose UID bytes are not in the meta cannot be deflated.
    Without a group length, or with a meta longer than ``head``, nothing is ruled out.
    """
    if head[132:140] != _META_GROUP_LENGTH or len(head) < 144:
        return False
    meta_end = 144 + int.from_bytes(head[140:144], "little")
    return meta_end <= len(head) and _DEFLATED_UID_BYTES not in head[132:meta_end]


def _deflated_meta_end(path: str | BinaryIO, head: bytes) -> int | None:
    """Offset of the dataset after the file meta when the file is deflated, else None.

    Args:
        path: The file, or its open stream.
        head: The file's first bytes, already read (see :func:`_meta_rules_out_deflate`).
    """
    from pydicom.filereader import _read_file_meta_info

    if _meta_rules_out_deflate(head):
        return None
    with _binary(path) as handle:
        handle.seek(132)
        try:
            meta = _read_file_meta_info(handle)
        except Exception:  # noqa: BLE001 - a broken meta is the regular reader's to report
            return None
        if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return None
        return handle.tell()


def _inflate_to_file(path: str | BinaryIO, meta_end: int, max_inflated_bytes: int) -> str:
    """Write an Explicit VR Little Endian copy of a deflated file to a temporary file, inflating in chunks.

    Raises:
        RecordRejected: ``inflated_too_large`` past ``max_inflated_bytes``; ``truncated`` when the
            deflate stream is corrupt or cut.
    """
    from pydicom.filereader import _read_file_meta_info
    from pydicom.filewriter import write_file_meta_info

    descriptor, target = tempfile.mkstemp(prefix="radnet-inflated-", suffix=".dcm")
    try:
        with _binary(path) as source, os.fdopen(descriptor, "wb") as out:
            preamble = source.read(128)
            source.seek(132)
            meta = _read_file_meta_info(source)
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            out.write(preamble + b"DICM")
            write_file_meta_info(out, meta, enforce_standard=False)
            source.seek(meta_end)
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            written = 0
            while not inflater.eof:
                data = inflater.unconsumed_tail or source.read(_INFLATE_CHUNK)
                if not data:
                    break  # a stream without its end marker: what was inflated is read as is
                chunk = inflater.decompress(data, _INFLATE_CHUNK)
                written += len(chunk)
                if written > max_inflated_bytes:
                    raise RecordRejected(
                        RejectReason.INFLATED_TOO_LARGE,
                        f"The deflated dataset inflates to more than the limit of {max_inflated_bytes} bytes.",
                    )
                out.write(chunk)
    except zlib.error:
        os.unlink(target)
        raise RecordRejected(RejectReason.TRUNCATED, "The deflated dataset is not a valid deflate stream.") from None
    except BaseException:
        os.unlink(target)
        raise
    return target


def read_dataset(
    path: str,
    *,
    stop_before_pixels: bool,
    max_file_bytes: int,
    max_sequence_depth: int = DEFAULT_MAX_SEQUENCE_DEPTH,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
) -> Dataset:
    """Read one DICOM file and validate it, or raise :class:`RecordRejected`.

    Args:
        path: Local or mounted path of the file, or an object-store URI (read with ranged requests).
        stop_before_pixels: Do not load the pixel data (or any other value above 64 KiB); their
            elements stay in the dataset with deferred values, so :func:`is_image_instance` works and
            a later access reads them from ``path`` (from the dataset's open stream when remote).
        max_file_bytes: Larger files are rejected as ``file_too_large`` before any reading.
        max_sequence_depth: Sequences nested deeper than this are rejected as ``sequence_too_deep``.
        max_inflated_bytes: A deflated dataset inflating to more is rejected as ``inflated_too_large``.

    Returns:
        The dataset, with ``file_meta.TransferSyntaxUID`` set (inferred for raw datasets; Explicit VR
        Little Endian for a deflated file, read from its inflated temporary copy).

    Raises:
        RecordRejected: ``read_error``, ``access_denied``, ``file_too_large``, ``inflated_too_large``, ``not_dicom``, ``truncated``,
            ``sequence_too_deep``, ``missing_transfer_syntax`` or ``missing_sop_instance_uid``.
    """
    # Imported here: the storage module brings pandas, which a parse worker otherwise never loads
    # (0.4-0.6 s of every cold Spark worker; mapInArrow workers do not import it themselves).
    from radnet_spark.storage import is_remote, open_remote

    stream: BinaryIO | None = None
    try:
        if is_remote(path):
            stream = open_remote(path)
            file_size = int(stream.size)  # type: ignore[attr-defined] - fsspec files know their size
        else:
            file_size = os.path.getsize(path)
        if file_size > max_file_bytes:
            raise RecordRejected(
                RejectReason.FILE_TOO_LARGE,
                f"The file has {file_size} bytes, more than the limit of {max_file_bytes}.",
            )
        with _binary(stream or path) as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as error:
        _close_quietly(stream)
        raise _read_error(error) from None
    except BaseException:
        _close_quietly(stream)
        raise
    try:
        ds = _read_source(path, stream, head, file_size, stop_before_pixels, max_sequence_depth,
                          max_inflated_bytes)
    except BaseException:
        _close_quietly(stream)
        raise
    if stream is not None:
        if stop_before_pixels:
            # Deferred values are read from this stream (ds.buffer): it lives as long as the dataset.
            weakref.finalize(ds, _close_quietly, stream)
        else:
            stream.close()
    return ds


def _read_error(error: OSError) -> RecordRejected:
    if isinstance(error, PermissionError):
        return RecordRejected(RejectReason.ACCESS_DENIED, "Reading the file was denied (PermissionError).")
    return RecordRejected(RejectReason.READ_ERROR, f"The file cannot be read ({type(error).__name__}).")


def _close_quietly(stream: BinaryIO | None) -> None:
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.close()


def _read_source(
    path: str,
    stream: BinaryIO | None,
    head: bytes,
    file_size: int,
    stop_before_pixels: bool,
    max_sequence_depth: int,
    max_inflated_bytes: int,
) -> Dataset:
    """Validate the start of the file and parse it from ``stream`` (remote) or ``path`` (local)."""
    is_part10 = head[128:132] == b"DICM"
    if not is_part10 and not _looks_like_raw_dataset(head):
        raise RecordRejected(
            RejectReason.NOT_DICOM, "The file has no DICOM preamble and no DICOM dataset start."
        )

    inflated: str | None = None
    if is_part10:
        try:
            meta_end = _deflated_meta_end(stream or path, head)
            if meta_end is not None:
                inflated = _inflate_to_file(stream or path, meta_end, max_inflated_bytes)
                file_size = os.path.getsize(inflated)
        except OSError as error:
            raise _read_error(error) from None
    try:
        if stream is not None and inflated is None:
            stream.seek(0)
        ds = _read_validated(
            inflated or stream or path, is_part10, file_size, stop_before_pixels, max_sequence_depth
        )
    except BaseException:
        if inflated is not None:
            os.unlink(inflated)
        raise
    if inflated is not None:
        if stop_before_pixels:
            # Deferred values are read from the inflated copy: it lives as long as the dataset.
            weakref.finalize(ds, _unlink_quietly, inflated)
        else:
            os.unlink(inflated)
    return ds


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _read_validated(
    path: str | BinaryIO, is_part10: bool, file_size: int, stop_before_pixels: bool, max_sequence_depth: int
) -> Dataset:
    with quiet_pydicom():
        ds = _parse(path, stop_before_pixels=stop_before_pixels, force=not is_part10)
        if not is_part10 and not any(tag.group == 0x0008 for tag in list(ds.keys())):
            raise RecordRejected(RejectReason.NOT_DICOM, "The file does not parse as a DICOM dataset.")
        if is_part10 and len(ds.keys()) == 0:
            raise RecordRejected(
                RejectReason.TRUNCATED, "No dataset element could be read after the file meta information."
            )

        meta = getattr(ds, "file_meta", None)
        transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        deflated = bool(transfer_syntax) and transfer_syntax.is_deflated
        _check_truncation(ds, file_size, deflated)

        try:
            too_deep = _sequence_depth_exceeds(ds, max_sequence_depth)
        except RecursionError:
            too_deep = True
        except Exception as error:  # noqa: BLE001 - any parse failure inside a sequence
            raise RecordRejected(
                RejectReason.READ_ERROR, f"A sequence cannot be parsed ({type(error).__name__})."
            ) from None
        if too_deep:
            raise RecordRejected(
                RejectReason.SEQUENCE_TOO_DEEP, f"Sequences nest deeper than {max_sequence_depth} levels."
            )

        if not transfer_syntax:
            if is_part10:
                raise RecordRejected(
                    RejectReason.MISSING_TRANSFER_SYNTAX,
                    "The file meta information has no TransferSyntaxUID.",
                )
            pixel_elem = next((ds.get_item(t, keep_deferred=True) for t in _PIXEL_TAGS if t in ds), None)
            if pixel_elem is not None and _is_undefined_length(pixel_elem):
                raise RecordRejected(
                    RejectReason.MISSING_TRANSFER_SYNTAX,
                    "The dataset has compressed pixel data but no TransferSyntaxUID naming the compression.",
                )
            _infer_transfer_syntax(ds)

        try:
            sop_instance_uid = ds.get("SOPInstanceUID")
        except Exception:  # noqa: BLE001 - an unparsable UID counts as missing
            sop_instance_uid = None
        if not sop_instance_uid or not str(sop_instance_uid).strip("\x00 "):
            raise RecordRejected(RejectReason.MISSING_SOP_INSTANCE_UID, "The dataset has no SOPInstanceUID.")
    return ds


def _parse(path: str | BinaryIO, *, stop_before_pixels: bool, force: bool) -> Dataset:
    """Run pydicom's reader, mapping its exceptions to reject reasons without quoting values."""
    try:
        if stop_before_pixels:
            # Deferring large values keeps their headers: the pixel element is still there (so
            # is_image_instance works and its declared length can be checked) but not loaded.
            return pydicom.dcmread(path, force=force, defer_size=DEFER_BYTES)
        return pydicom.dcmread(path, force=force)
    except InvalidDicomError:
        raise RecordRejected(RejectReason.NOT_DICOM, "The file is not a DICOM file.") from None
    except (EOFError, BufferError) as error:
        raise RecordRejected(
            RejectReason.TRUNCATED, f"The file ends before its dataset does ({type(error).__name__})."
        ) from None
    except RecursionError:
        raise RecordRejected(RejectReason.SEQUENCE_TOO_DEEP, "Sequences nest too deeply to parse.") from None
    except OSError as error:
        raise _read_error(error) from None
    except Exception as error:  # noqa: BLE001 - pydicom raises many types on malformed input
        raise RecordRejected(
            RejectReason.READ_ERROR, f"The dataset cannot be parsed ({type(error).__name__})."
        ) from None


def _format_value(value: Any, vr: str | None) -> str | None:
    """One DICOM value as a clean string; None when empty or, for DS/IS, not a finite number."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
    else:  # DS/IS keep their original text through str(); PersonName renders all groups
        text = str(value)
    text = _CONTROL_CHARS.sub("", text).strip()
    if not text:
        return None
    if vr in _NUMERIC_STRING_VRS:
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number) or (vr == "IS" and number != int(number)):
            return None
    return text


_CONVERTER_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI",  # default repertoire
     "SH", "LO", "ST", "LT", "UC", "UT", "PN",  # SpecificCharacterSet
     "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"}  # binary numbers
)
"""VRs whose raw bytes :func:`dataset_to_tags` converts without the dataset's per-element machinery."""
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
_READ_AGAIN_TAGS = frozenset({Tag("Modality")})
"""Besides group 0028 and PN values: read again after the tags (pixel export, name tokens), so the
converted element is stored back into the dataset."""
_IMAGE_PIXEL_GROUP = 0x0028
_LUT_DESCRIPTOR_TAGS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})
"""pydicom's value hook fixes the first value of these: left to the dataset path."""
_DEFAULT_ENCODING = "iso8859"
"""pydicom's default repertoire codec (``pydicom.charset.default_encoding``)."""
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "TM", "UI"})
_SPLIT_TEXT_VRS = frozenset({"SH", "LO", "UC"})
_SINGLE_TEXT_VRS = frozenset({"ST", "LT", "UT"})
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_NUMBER_SIZES = {vr: struct.calcsize("=" + code) for vr, code in _NUMBER_FORMATS.items()}
_NOT_WRITTEN_OUT = object()
"""Returned by :func:`_written_out_value` when pydicom's converter must convert the element."""


@functools.lru_cache(maxsize=4096)
def _tag_entry(tag: int) -> tuple[str, str, str | None]:
    """(keyword, dictionary VM, dictionary VR) of a tag that can become a column; ``""`` keyword otherwise.

    Private tags, pixel data, group lengths and tags without a dictionary keyword get ``""``.
    """
    tag = Tag(tag)
    keyword = keyword_for_tag(tag)
    if not keyword or tag.is_private or tag in _PIXEL_TAGS or tag.element == 0x0000:
        return "", "1", None
    try:
        vm = dictionary_VM(tag)
    except KeyError:
        vm = "1"
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = None
    return keyword, vm, vr


def _written_out_value(raw: RawDataElement, vr: str, encodings: list[str], plain_ds: bool) -> Any:
    """What pydicom's value converter returns for ``raw`` (as str, list or number), or :data:`_NOT_WRITTEN_OUT`.

    The common VRs with pydicom's own steps (``pydicom.values``): decode with the default repertoire
    or with ``decode_bytes`` and the dataset's character sets, strip the same padding, split on
    backslashes, unpack numbers with the element's byte order. pydicom's validation of text only
    warns outside its RAISE reading mode, in which :func:`dataset_to_tags` does not call this.
    Anything unusual (a DS that is no number, a length that is no multiple of the number size,
    empty values, IS and PN, DS options) is left to pydicom's converter.
    """
    value = raw.value
    if not value:
        return _NOT_WRITTEN_OUT
    if vr in _ASCII_VRS:
        text = value.decode(_DEFAULT_ENCODING)
        if vr == "AE":
            items = [item.strip() for item in text.split("\\")]
        else:
            items = (text.rstrip("\0 ") if vr == "UI" else text).rstrip(" \x00").split("\\")
            if vr == "DS":
                if not plain_ds:
                    return _NOT_WRITTEN_OUT
                for index, item in enumerate(items):
                    stripped = item.strip()
                    if stripped:
                        try:
                            float(stripped)  # what DSfloat parses; its str() is the stripped text
                        except ValueError:
                            return _NOT_WRITTEN_OUT
                        items[index] = stripped
        return items[0] if len(items) == 1 else items
    if vr in _SPLIT_TEXT_VRS:
        items = [item.rstrip("\0 ") for item in decode_bytes(value, encodings, TEXT_VR_DELIMS).split("\\")]
        return items[0] if len(items) == 1 else items
    if vr in _SINGLE_TEXT_VRS:
        return decode_bytes(value, encodings, TEXT_VR_DELIMS).rstrip("\0 ")
    size = _NUMBER_SIZES.get(vr)
    if size is not None and len(value) % size == 0:
        count = len(value) // size
        numbers = struct.unpack(f"{'><'[raw.is_little_endian]}{count}{_NUMBER_FORMATS[vr]}", value)
        return numbers[0] if count == 1 else list(numbers)
    return _NOT_WRITTEN_OUT


def dataset_to_tags(ds: Dataset, skip: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """Flatten a dataset's top-level attributes into a ``keyword -> string`` dictionary.

    Keeps every top-level, public, non-pixel, non-sequence, non-binary element that has a keyword.
    Attributes whose dictionary value multiplicity is not exactly 1 (``ImageType``, ``WindowCenter``,
    ``PixelSpacing``, …) and any element that actually holds several values appear only split, as
    ``Keyword_0``, ``Keyword_1``, …, so a column means the same thing in every row. A value longer
    than :data:`MAX_TAG_VALUE_BYTES` is left out unread (a hostile megabyte string costs nothing). Text is decoded
    with the dataset's SpecificCharacterSet; undecodable bytes become U+FFFD. A value that fails
    validation (``DS``/``IS`` that is not a number, or one pydicom cannot convert at all) becomes
    None instead of failing the record; an element with an unknown VR code is read by pydicom as
    ``UN`` (binary) and left out.

    Speed: an element still in its raw form with a plain VR (strings, text, person names, binary
    numbers) is converted straight from its bytes, by pydicom's own steps written out for the common
    VRs (:func:`_written_out_value`) or by its value converter (``pydicom.values.convert_value``,
    where a dataset access ends up), without the dataset's per-element machinery; the value is the
    one the dataset would return. Elements read again later (group 0028 and Modality by the pixel
    export, person names by the name scrubber) are stored back as the element the dataset would have
    stored, so nothing is converted twice. Everything else (ambiguous VRs, LUT descriptors, deferred
    values, values a converter refuses, customised pydicom hooks) goes through the dataset as before.

    Args:
        ds: A dataset from :func:`read_dataset` (pixel data may or may not be loaded).
        skip: Keywords to leave out without converting their values (e.g. what de-identification
            would drop anyway).

    Returns:
        A dictionary with string values, None for empty or invalid ones. No identifying attribute
        has been removed yet: pass the result through
        :func:`radnet_spark.dicom.deid.deidentify_tags` before writing it anywhere.
    """
    from pydicom import config
    from pydicom.hooks import hooks
    from pydicom.values import convert_value

    direct = (
        config.data_element_callback is None
        and hooks.raw_element_vr is _DEFAULT_RAW_ELEMENT_VR
        and hooks.raw_element_value is _DEFAULT_RAW_ELEMENT_VALUE
        and not hooks.raw_element_kwargs
    )
    written_out = direct and config.settings.reading_validation_mode != config.RAISE
    if config.datetime_conversion:
        written_out = False
    plain_ds = not (config.use_DS_decimal or config.use_DS_numpy)
    charsets = ds.original_character_set or None  # None: text VRs go through the dataset
    encodings = [charsets] if isinstance(charsets, str) else charsets
    tags: dict[str, str | None] = {}
    with quiet_pydicom():
        for tag, raw in list(ds.items()):
            keyword, vm, dictionary_vr = _tag_entry(tag)
            if not keyword or keyword in skip:
                continue
            raw_vr = getattr(raw, "VR", None)
            if raw_vr == "SQ" or raw_vr in _BINARY_VRS:
                continue
            if isinstance(raw, RawDataElement):
                if raw.length != _UNDEFINED_LENGTH and raw.length > MAX_TAG_VALUE_BYTES:
                    continue  # a 64 KiB value is no tag feature; left unread, it costs no memory
                vr = raw_vr or dictionary_vr
                if (
                    direct
                    and raw.value is not None
                    and vr in _CONVERTER_VRS
                    and (encodings is not None or vr not in _CHARSET_VRS)
                    and tag not in _LUT_DESCRIPTOR_TAGS
                ):
                    # Elements read again are stored back with pydicom's own value types (UID, DSfloat,
                    # …); numbers are plain ints and floats either way.
                    store_back = vr == "PN" or tag.group == _IMAGE_PIXEL_GROUP or tag in _READ_AGAIN_TAGS
                    value = (
                        _written_out_value(raw, vr, encodings, plain_ds)
                        if written_out and (not store_back or vr in _NUMBER_FORMATS) else _NOT_WRITTEN_OUT
                    )
                    if value is _NOT_WRITTEN_OUT:
                        try:
                            value = convert_value(vr, raw, encodings)
                        except Exception:  # noqa: BLE001 - the dataset path decides what a failure gives
                            value = _NOT_WRITTEN_OUT
                    if value is not _NOT_WRITTEN_OUT:
                        if store_back:  # what ``ds[tag]`` would store: convert_raw_data_element's element
                            ds[tag] = DataElement(tag, vr, value, raw.value_tell,
                                                  raw.length == _UNDEFINED_LENGTH, already_converted=True)
                        _add_value(tags, keyword, vm, value, vr)
                        continue
            try:
                elem = ds[tag]
                value = elem.value
            except Exception:  # noqa: BLE001 - invalid value for its VR
                tags[keyword] = None
                continue
            if elem.VR == "SQ" or elem.VR in _BINARY_VRS:
                continue
            _add_value(tags, keyword, vm, value, elem.VR)
    return tags


def _add_value(tags: dict[str, str | None], keyword: str, vm: str, value: Any, vr: str | None) -> None:
    """Store one element's value, split into ``Keyword_i`` columns when it is multi-valued."""
    multi = isinstance(value, MultiValue | list | tuple)
    if not multi and vm == "1":
        try:
            tags[keyword] = _format_value(value, vr)
        except Exception:  # noqa: BLE001 - str() of a malformed value
            tags[keyword] = None
        return
    values = list(value) if multi else ([] if value is None or value == "" else [value])
    if len(values) > MAX_VALUES_PER_ATTRIBUTE:
        return
    for index, item in enumerate(values):
        try:
            tags[f"{keyword}_{index}"] = _format_value(item, vr)
        except Exception:  # noqa: BLE001
            tags[f"{keyword}_{index}"] = None
