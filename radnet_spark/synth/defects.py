"""The flaws of a real PACS dump, injected at configurable rates.

Each written file carries at most one defect code; ``ground_truth.csv`` records it so ingest and the
image policies can be checked against what was injected.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radnet_spark.synth.fileformat import Header

# Codes written to ground_truth.csv.
TRUNCATED = "truncated"
NOT_DICOM = "not_dicom"
NO_PIXEL_DATA = "no_pixel_data"
BLANK = "blank"
MONOCHROME = "monochrome"
ONE_PIXEL_HIGH = "one_pixel_high"
MODALITY_LUT = "modality_lut"
NO_WINDOW = "no_window"
RLE = "rle"
JPEG2000 = "jpeg2000"

# Defects a reader must survive without being able to use the file at all.
READ_DEFECTS = frozenset({TRUNCATED, NOT_DICOM})


@dataclass
class DefectRates:
    """Probability that a written file carries each defect (one defect per file at most)."""

    truncated: float = 0.01
    not_dicom: float = 0.01
    no_pixel_data: float = 0.01
    blank: float = 0.01
    monochrome: float = 0.01
    one_pixel_high: float = 0.005
    modality_lut: float = 0.02
    no_window: float = 0.03
    rle: float = 0.03
    jpeg2000: float = 0.02

    def __post_init__(self) -> None:
        total = sum(getattr(self, f.name) for f in fields(self))
        if any(getattr(self, f.name) < 0 for f in fields(self)) or total > 1.0:
            raise ValueError(f"Defect rates must be non-negative and sum to at most 1 (they sum to {total:.3f}).")

    @classmethod
    def none(cls) -> DefectRates:
        """Rates that inject no defect at all (clean dumps for benchmarks)."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def draw(self, rng: np.random.Generator) -> str:
        """The defect of one file, ``""`` for none."""
        u = rng.random()
        acc = 0.0
        for f in fields(self):
            acc += getattr(self, f.name)
            if u < acc:
                return f.name
        return ""


def damage_pixels(code: str, stored: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply a pixel-value defect (blank, near-monochrome, 1-pixel-high) to a stored array.

    Args:
        code: defect code.
        stored: ``(rows, cols)`` or ``(frames, rows, cols)`` stored values.
        rng: random generator.

    Returns:
        The damaged array (same dtype); unchanged for other codes.
    """
    if code == BLANK:
        value = 0 if rng.random() < 0.5 else int(stored.max() // 2)
        return np.full_like(stored, value)
    if code == MONOCHROME:
        # Two or three levels: above the max-value floor but far too few distinct values.
        top = int(np.iinfo(stored.dtype).max) if stored.dtype == np.uint8 else 1000
        levels = np.array(sorted(rng.choice(np.arange(70, top), size=3, replace=False)), dtype=stored.dtype)
        return levels[(stored > np.median(stored)).astype(int) + (stored > np.percentile(stored, 95))]
    if code == ONE_PIXEL_HIGH:
        return np.ascontiguousarray(stored[..., :1, :])
    return stored


def add_modality_lut(ds: Header, bits_stored: int, rng: np.random.Generator) -> None:
    """Replace the linear rescale by a non-linear Modality LUT (as some CR/XA vendors write)."""
    entries = 1 << bits_stored
    x = np.linspace(0.0, 1.0, entries)
    gamma = float(rng.uniform(0.4, 0.7)) if rng.random() < 0.5 else float(rng.uniform(1.6, 2.5))
    lut = np.rint(4095 * x**gamma).astype("<u2")
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        if keyword in ds:
            delattr(ds, keyword)
    item = Dataset()
    item.LUTDescriptor = [entries if entries < 65536 else 0, 0, 16]
    item.ModalityLUTType = "US"
    item.add(DataElement(0x00283006, "OW", lut.tobytes()))
    ds.ModalityLUTSequence = Sequence([item])


def junk_file(rng: np.random.Generator, index: str) -> tuple[str, bytes]:
    """A non-DICOM file found in PACS exports: a text note, a JPEG preview or DICOMDIR-like junk.

    Args:
        rng: random generator.
        index: token that makes the file name unique within the dump.

    Returns:
        File name and content.
    """
    kind = int(rng.integers(0, 4))
    if kind == 0:
        text = f"Export PACS\r\nStatus: OK\r\nBroj datoteka: {int(rng.integers(1, 500))}\r\n"
        return f"export_log_{index}.txt", text.encode("utf-8")
    if kind == 1:
        from PIL import Image

        arr = (rng.random((32, 32)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=70)
        return f"preview_{index}.jpg", buf.getvalue()
    if kind == 2:
        # Starts like a DICOM file (preamble + magic) but the rest is garbage.
        return f"DICOMDIR_{index}", b"\x00" * 128 + b"DICM" + rng.bytes(int(rng.integers(16, 400)))
    return f"Thumbs_{index}.db", rng.bytes(int(rng.integers(64, 2048)))


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut a file short: inside the header for a third of files, else inside the pixel data."""
    if rng.random() < 0.35:
        return data[: int(rng.integers(132, min(600, len(data) - 1)))]
    return data[: int(len(data) * float(rng.uniform(0.3, 0.95)))]
