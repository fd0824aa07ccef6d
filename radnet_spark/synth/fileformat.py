"""Fast DICOM Part 10 encoding of generated instances.

Building a pydicom ``Dataset`` and writing it with ``dcmwrite`` costs more per file than drawing the
image. A ``Header`` collects attributes by keyword in a plain dict (same attribute syntax as a
Dataset); ``ElementCache`` encodes each element once with pydicom's own ``write_data_element`` and
reuses the bytes while the value stays the same (most of a series' header does). The file meta group
and Pixel Data are laid out directly; compressed frames come from pydicom's encoders.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

_PREAMBLE = b"\x00" * 128 + b"DICM"
_PIXEL_DATA = 0x7FE00010
# Ambiguous dictionary VRs resolved for unsigned data, as generated here.
_AMBIGUOUS = {"US or SS": "US", "OB or OW": "OW", "US or OW": "OW", "US or SS or OW": "US"}


@lru_cache(maxsize=1024)
def _tag_and_vr(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise AttributeError(f"{keyword!r} is not a DICOM keyword.")
    vr = dictionary_VR(tag)
    return tag, _AMBIGUOUS.get(vr, vr)


class Header:
    """DICOM attributes by keyword in a plain dict; ``file_meta`` is a pydicom FileMetaDataset, set by the caller."""

    def __init__(self) -> None:
        object.__setattr__(self, "_items", {})
        object.__setattr__(self, "file_meta", None)

    def __setattr__(self, keyword: str, value: Any) -> None:
        if keyword == "file_meta":
            object.__setattr__(self, keyword, value)
            return
        tag, vr = _tag_and_vr(keyword)
        self._items[tag] = (keyword, vr, value)

    def __getattr__(self, keyword: str) -> Any:
        if keyword.startswith("_"):
            raise AttributeError(keyword)
        item = self._items.get(_tag_and_vr(keyword)[0])
        if item is None:
            raise AttributeError(f"Header has no {keyword}.")
        return item[2]

    def __delattr__(self, keyword: str) -> None:
        del self._items[_tag_and_vr(keyword)[0]]

    def __contains__(self, keyword: str) -> bool:
        return _tag_and_vr(keyword)[0] in self._items

    def get(self, keyword: str, default: Any = None) -> Any:
        item = self._items.get(_tag_and_vr(keyword)[0])
        return default if item is None else item[2]

    def items(self) -> list[tuple[int, str, Any]]:
        """``(tag, VR, value)`` in ascending tag order."""
        return [(tag, vr, value) for tag, (_, vr, value) in sorted(self._items.items())]

    def to_dataset(self) -> Dataset:
        """A pydicom Dataset with the same attributes and file meta."""
        ds = Dataset()
        for tag, vr, value in self.items():
            if tag == _PIXEL_DATA and int(self.get("BitsAllocated", 16)) == 8:
                vr = "OB"
            ds.add(DataElement(tag, vr, value))
        ds.file_meta = self.file_meta
        return ds


def _short(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + struct.pack("<H", len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def file_meta_bytes(sop_class: str, sop_instance: str, transfer_syntax: str, version_name: str) -> bytes:
    """The preamble, ``DICM`` and the group 0002 file meta information."""
    name = version_name.encode("ascii")[:16]
    if len(name) % 2:
        name += b" "
    body = (
        struct.pack("<HH", 0x0002, 0x0001) + b"OB\x00\x00" + struct.pack("<I", 2) + b"\x00\x01"
        + _short(0x00020002, b"UI", _uid(sop_class))
        + _short(0x00020003, b"UI", _uid(sop_instance))
        + _short(0x00020010, b"UI", _uid(transfer_syntax))
        + _short(0x00020012, b"UI", _uid(PYDICOM_IMPLEMENTATION_UID))
        + _short(0x00020013, b"SH", name)
    )
    return _PREAMBLE + _short(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def compress_pixels(stored: np.ndarray, header: Header, transfer_syntax: str) -> None:
    """Replace the header's Pixel Data by ``stored`` encoded (encapsulated) with ``transfer_syntax``.

    Args:
        stored: ``(rows, cols)`` or ``(frames, rows, cols)`` stored values.
        header: header whose pixel module already describes ``stored``.
        transfer_syntax: RLE Lossless or JPEG 2000 Lossless UID.
    """
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_encoder

    frames = int(stored.shape[0]) if stored.ndim == 3 else 1
    options = {
        "rows": int(stored.shape[-2]), "columns": int(stored.shape[-1]), "samples_per_pixel": 1,
        "number_of_frames": frames, "bits_allocated": int(header.BitsAllocated),
        "bits_stored": int(header.BitsStored), "pixel_representation": 0,
        "photometric_interpretation": str(header.PhotometricInterpretation),
    }
    plugin = "pylibjpeg" if transfer_syntax == RLELossless else ""
    encoded = list(get_encoder(transfer_syntax).iter_encode(stored, encoding_plugin=plugin, **options))
    header.PixelData = encapsulate(encoded)
    header.file_meta.TransferSyntaxUID = transfer_syntax


_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
_BINARY_VRS = {"US": "H", "UL": "I", "SS": "h", "SL": "i", "FD": "d", "FL": "f"}


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
        return text if len(text) <= 16 else f"{value:.10g}"[:16]
    return str(value)


def _simple_element(tag: int, vr: str, value: Any, implicit: bool) -> bytes | None:
    """Encode an element of a plain ASCII or binary VR directly; ``None`` when pydicom must do it."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if vr in _TEXT_VRS:
        if not all(isinstance(v, (str, int, float)) for v in values):
            return None
        try:
            raw = "\\".join(_number_text(v) for v in values).encode("ascii", "strict")
        except UnicodeEncodeError:
            return None
        if len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
    elif vr in _BINARY_VRS:
        try:
            raw = struct.pack(f"<{len(values)}{_BINARY_VRS[vr]}", *values)
        except struct.error:
            return None
    elif vr == "AT":
        raw = b"".join(struct.pack("<HH", int(v) >> 16, int(v) & 0xFFFF) for v in values)
    else:
        return None
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack("<I", len(raw)) + raw
    return head + vr.encode("ascii") + struct.pack("<H", len(raw)) + raw


class ElementCache:
    """Encoded bytes of header elements, keyed by tag, value and encoding."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._cache: dict[tuple, bytes] = {}
        self._max = max_entries

    def encode(self, header: Header) -> bytes:
        """Encode a header with native (uncompressed) Pixel Data, if any, as a Part 10 file.

        Args:
            header: attributes plus ``file_meta``; Pixel Data is native unless the transfer syntax is
                RLE/JPEG 2000, in which case it was encapsulated by ``compress_pixels``.

        Returns:
            The complete file.
        """
        meta = header.file_meta
        ts = str(meta.TransferSyntaxUID)
        encapsulated = ts not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        implicit = ts == ImplicitVRLittleEndian
        charset = header.get("SpecificCharacterSet")
        encodings = convert_encodings(charset) if charset else None
        parts = [file_meta_bytes(str(meta.MediaStorageSOPClassUID), str(meta.MediaStorageSOPInstanceUID), ts,
                                 str(meta.get("ImplementationVersionName", "")))]
        pixel_data = None
        for tag, vr, value in header.items():
            if tag == _PIXEL_DATA:
                pixel_data = value
                continue
            key = None
            if vr != "SQ":
                key = (tag, vr, implicit, charset, repr(value))
                cached = self._cache.get(key)
                if cached is not None:
                    parts.append(cached)
                    continue
            encoded = _simple_element(tag, vr, value, implicit) if vr != "SQ" else None
            if encoded is None:
                fp = DicomBytesIO()
                fp.is_little_endian = True
                fp.is_implicit_VR = implicit
                write_data_element(fp, DataElement(tag, vr, value), encodings)
                encoded = fp.getvalue()
            if key is not None and len(self._cache) < self._max:
                self._cache[key] = encoded
            parts.append(encoded)
        if pixel_data is not None and encapsulated:
            # Undefined length: the items from encapsulate(), then a sequence delimitation item.
            parts.append(struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\x00\x00" + b"\xff\xff\xff\xff")
            parts.append(pixel_data)
            parts.append(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
        elif pixel_data is not None:
            if len(pixel_data) % 2:
                pixel_data += b"\x00"
            tag_bytes = struct.pack("<HH", 0x7FE0, 0x0010)
            vr_bytes = b"OB" if int(header.get("BitsAllocated", 16)) == 8 else b"OW"
            length = struct.pack("<I", len(pixel_data))
            parts.append(tag_bytes + length if implicit else tag_bytes + vr_bytes + b"\x00\x00" + length)
            parts.append(pixel_data)
        return b"".join(parts)
