"""A hostile, PHI-laden DICOM dump written by code (no binary fixtures), with what ingest must make of it.

:func:`write_hostile_corpus` writes every case of issue 14 under ``root/dicom`` plus a diagnoses
export ``root/diagnoses.csv`` and returns the expectations: for each file the status and the set of
acceptable reasons, the strings that must appear nowhere in the output (:data:`PLANTED`), and the
paths that links must resolve to. Files are written with pydicom's writer where the case is a
well-formed dataset and byte by byte where it is not.
"""

from __future__ import annotations

import csv
import os
import struct
import unicodedata
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from radnet_spark.dicom.deid import IDENTIFYING_KEYWORDS

# --- the identities planted everywhere -----------------------------------------------------------
PATIENT = "Zdravković^Đurđica"
OTHER_PATIENT = "Vukomanović^Slavica"
REFERRING = "Prpić-Ščukanec^Berislav^^dr. med."
OPERATOR = "Tkalčević^Mirjana^^bacc. rad. techn."
READING = "Radmilović^Zvonimir^^dr. sc."
LATIN2_PATIENT = "Šimunović^Ljubica"
JAPANESE_PATIENT = "Yamada^Tarou=山田^太郎=やまだ^たろう"
NESTED_OBSERVER = "Brezovečki^Jasenka"  # only inside a sequence of the SR
SIGNING = "Krunoslav Vidaković"  # in reports only, after "prim. dr. sc."
POSTNOMINAL = "Dalibor Kuštrak"  # in reports only, before ", dr. med."
LEXICON_ONLY = "Snježana Jurković"  # no title, not in the record: the Faker lexicon
STATION = "KVARNERSKA-SALA7"  # device / place names under attributes that name them
PLANTED: tuple[str, ...] = (
    "Zdravković", "Đurđica", "Vukomanović", "Slavica", "Ščukanec", "Berislav", "Tkalčević", "Mirjana",
    "Radmilović", "Zvonimir", "Šimunović", "Ljubica", "Yamada", "Tarou", "山田", "太郎", "やまだ", "たろう",
    "Brezovečki", "Jasenka", "Krunoslav", "Vidaković", "Dalibor", "Kuštrak", "Snježana", "Jurković",
    "Kvarnerska",
)
"""Strings that must not appear, folded (case, diacritics, punctuation), in any output."""

ACCESSION = "HOSTILE0001"
ACCESSION_LATIN2 = "HOSTILE0002"
ACCESSION_JAPANESE = "HOSTILE0003"
GIB = 1024**3
BOMB_INFLATED_BYTES = GIB + 64 * 1024**2  # ≥ 1 GB inflated
MULTIFRAME_FRAMES = 64  # of 512×512×2 bytes: 32 MiB of native pixels


def fold_letters(text: str) -> str:
    """Case, diacritics and every non-letter/digit removed: how planted strings are searched."""
    table = str.maketrans({"đ": "d", "Đ": "d", "ß": "ss", "ł": "l", "ø": "o"})
    decomposed = unicodedata.normalize("NFKD", text.translate(table))
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


@dataclass
class Case:
    status: str
    reasons: frozenset[str] = frozenset()


@dataclass
class HostileCorpus:
    root: Path
    dicom: Path
    diagnoses: Path
    cases: dict[str, Case] = field(default_factory=dict)  # path relative to dicom -> expectation
    link_targets: dict[str, str] = field(default_factory=dict)  # link (relative) -> real path
    not_listed: list[str] = field(default_factory=list)  # relative paths that must not be in files

    def expect(self, relative: str, status: str, *reasons: str) -> None:
        self.cases[relative] = Case(status, frozenset(reasons))


# --- building blocks -----------------------------------------------------------------------------


def _uid(n: int) -> str:
    return f"1.2.826.0.1.3680043.10.1414.{n}"


def _image_dataset(
    n: int,
    *,
    accession: str = ACCESSION,
    patient: str = PATIENT,
    charset: str | list[str] = "ISO_IR 192",
    description: str | None = None,
    rows: int = 64,
    columns: int = 64,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = _uid(n)
    ds.StudyInstanceUID = _uid(10_000 + len(accession))
    ds.SeriesInstanceUID = _uid(20_000 + len(accession))
    ds.AccessionNumber = accession
    ds.Modality = "CT"
    ds.PatientName = patient
    ds.OtherPatientNames = OTHER_PATIENT
    ds.PatientID = "HOSTILE-PID-77"
    ds.ReferringPhysicianName = REFERRING
    ds.OperatorsName = OPERATOR
    ds.NameOfPhysiciansReadingStudy = READING
    ds.StationName = STATION
    ds.RadiationMachineName = STATION
    ds.DeviceSerialNumber = f"SN-{STATION}"
    ds.InstitutionName = f"KBC {STATION}"
    ds.InstitutionalDepartmentName = f"Odjel {STATION}"
    ds.Manufacturer = "SIEMENS"
    ds.StudyDescription = description or "CT glave - pacijent ZDRAVKOVIĆ ĐURĐICA"
    ds.SeriesDescription = "Glava nativ - zdravkovic-durdica"
    ds.BodyPartExamined = "HEAD"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ramp = (np.add.outer(np.arange(rows), np.arange(columns)) * 4096 // (rows + columns)).astype(np.uint16)
    ds.PixelData = ramp.tobytes()
    return ds


def _meta(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", CTImageStorage)
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", _uid(999_999))
    meta.TransferSyntaxUID = syntax
    return meta


def _save(ds: Dataset, path: Path, syntax: str = ExplicitVRLittleEndian) -> None:
    ds.file_meta = _meta(ds, syntax)
    ds.preamble = b"\0" * 128
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hostile values break VR length limits on purpose
        ds.save_as(path, enforce_file_format=True)


def _dataset_bytes(ds: Dataset, *, implicit: bool = False, little: bool = True) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = implicit
    buffer.is_little_endian = little
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _part10_header(ds: Dataset, syntax: str) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = False, True
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, _meta(ds, syntax), enforce_standard=True)
    return buffer.getvalue()


def _element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element (long form for OB/OW/SQ/UN/UT)."""
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _undefined(group: int, element: int, vr: bytes) -> bytes:
    return struct.pack("<HH2sHI", group, element, vr, 0, 0xFFFFFFFF)


def _ascii(text: str) -> str:
    table = str.maketrans({"đ": "d", "Đ": "D"})
    decomposed = unicodedata.normalize("NFKD", text.translate(table))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


def _vr(keyword: str) -> str:
    return next((entry[0] for entry in DicomDictionary.values() if entry[4] == keyword), "")


def _kept_text_keywords() -> list[str]:
    """Every non-retired text attribute of the dictionary that de-identification keeps."""
    structural = {"SpecificCharacterSet", "PhotometricInterpretation", "Modality", "BodyPartExamined"}
    keywords = []
    for tag, (vr, _vm, _name, retired, keyword) in sorted(DicomDictionary.items()):
        group = tag >> 16
        if not keyword or retired or group in (0x0000, 0x0002, 0x0004, 0xFFFE) or keyword in structural:
            continue
        if vr in ("CS", "SH", "LO", "ST", "LT", "UT", "UC") and keyword not in IDENTIFYING_KEYWORDS:
            keywords.append(keyword)
    return keywords


PLANTED_TEXTS = (
    "Kontrola - pacijent ĐURĐICA ZDRAVKOVIĆ",
    "zdravkovic durdica, kontrola",
    "Uputio dr. Berislav Prpić-Ščukanec",
    "Snima: Tkalčević-Mirjana",
    "Očitao prof. dr. sc. Zvonimir Radmilović",
    "Pacijentica Vukomanović Slavica",
    "Poslala Snježana Jurković",
)


# --- the corpus ----------------------------------------------------------------------------------


def write_hostile_corpus(root: Path, *, plant_groups: int = 6) -> HostileCorpus:
    """Write the hostile dump and its diagnoses under ``root``; see the module docstring."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hostile values break VR length limits on purpose
        return _write(root, plant_groups)


def _write(root: Path, plant_groups: int) -> HostileCorpus:
    dicom = root / "dicom"
    dicom.mkdir(parents=True)
    corpus = HostileCorpus(root=root, dicom=dicom, diagnoses=root / "diagnoses.csv")
    rng = np.random.default_rng(14)
    n = 0

    def next_uid() -> int:
        nonlocal n
        n += 1
        return n

    # Not DICOM at all.
    (dicom / "zero-byte.dcm").write_bytes(b"")
    corpus.expect("zero-byte.dcm", "rejected", "not_dicom")
    (dicom / "random-bytes.bin").write_bytes(b"\xff\xfe" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    corpus.expect("random-bytes.bin", "rejected", "not_dicom")
    (dicom / "report.dcm").write_text("Nalaz za ZDRAVKOVIĆ ĐURĐICA\nCT glave uredan.\n", encoding="utf-8")
    corpus.expect("report.dcm", "rejected", "not_dicom")
    (dicom / "garbage-after-dicm.dcm").write_bytes(
        b"\0" * 128 + b"DICM" + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    )
    corpus.expect("garbage-after-dicm.dcm", "rejected", "not_dicom", "truncated", "read_error")

    # Well-formed images carrying planted names in every kept text attribute.
    keywords = _kept_text_keywords()
    for group in range(plant_groups):
        ds = _image_dataset(next_uid())
        for index, keyword in enumerate(keywords[group::plant_groups]):
            text = PLANTED_TEXTS[index % len(PLANTED_TEXTS)]
            # Code strings are ASCII (pydicom encodes only the other text VRs with the character set).
            setattr(ds, keyword, _ascii(text).upper() if _vr(keyword) == "CS" else text)
        name = f"planted/all-text-tags-{group}.dcm"
        _save(ds, dicom / name)
        corpus.expect(name, "ok")
    # 1 MB strings: a kept long-text attribute with a name at its end.
    ds = _image_dataset(next_uid())
    long_text = next(k for k in keywords if _vr(k) == "UT")
    setattr(ds, long_text, ("CT glave nativno. " * 60_000) + "Pacijent Zdravković Đurđica.")
    _save(ds, dicom / "planted/one-megabyte-string.dcm")
    corpus.expect("planted/one-megabyte-string.dcm", "ok")
    # Non-ASCII character sets in PN and descriptions: Latin-2 and ISO 2022 Japanese.
    ds = _image_dataset(
        next_uid(), accession=ACCESSION_LATIN2, patient=LATIN2_PATIENT, charset="ISO_IR 101",
        description="CT glave - pacijent Šimunović Ljubica",
    )
    ds.SeriesDescription = "ŠIMUNOVIĆ-LJUBICA glava"
    _save(ds, dicom / "charsets/latin2.dcm")
    corpus.expect("charsets/latin2.dcm", "ok")
    ds = _image_dataset(
        next_uid(), accession=ACCESSION_JAPANESE, patient=JAPANESE_PATIENT, charset=["", "ISO 2022 IR 87"],
        description="頭部CT 山田太郎",
    )
    ds.SeriesDescription = "Head Yamada Tarou"
    for keyword in ("OtherPatientNames", "ReferringPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy"):
        ds[keyword].value = _ascii(str(ds[keyword].value))  # JIS has no Latin letters with diacritics
    _save(ds, dicom / "charsets/iso2022-japanese.dcm")
    corpus.expect("charsets/iso2022-japanese.dcm", "ok")

    # Old files: no preamble and no file meta, implicit VR; Explicit VR Big Endian (real pydicom files).
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    (dicom / "old/raw-implicit-ct").parent.mkdir(parents=True, exist_ok=True)
    (dicom / "old/raw-implicit-ct").write_bytes(_dataset_bytes(ct, implicit=True))
    corpus.expect("old/raw-implicit-ct", "ok")
    mr_big = pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm", download=False))
    mr_big.SOPInstanceUID = _uid(next_uid())  # the Part 10 copy below keeps the file's own UID
    (dicom / "old/raw-big-endian-mr").write_bytes(_dataset_bytes(mr_big, implicit=False, little=False))
    corpus.expect("old/raw-big-endian-mr", "ok")
    (dicom / "old/part10-big-endian.dcm").write_bytes(
        Path(get_testdata_file("MR_small_bigendian.dcm", download=False)).read_bytes()
    )
    corpus.expect("old/part10-big-endian.dcm", "ok")

    # Broken pixel data.
    ds = _image_dataset(next_uid())
    _save(ds, dicom / "pixels/whole.dcm")
    whole = (dicom / "pixels/whole.dcm").read_bytes()
    (dicom / "pixels/whole.dcm").unlink()
    (dicom / "pixels/truncated-pixels.dcm").write_bytes(whole[: len(whole) - 3000])
    corpus.expect("pixels/truncated-pixels.dcm", "rejected", "truncated")
    # Odd pixel length: 8-bit 63×63 pixels, the PixelData element declared with its odd length.
    ds = _image_dataset(next_uid(), rows=63, columns=63)
    values = ds.PixelData
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.WindowCenter, ds.WindowWidth = 128, 256
    odd = (np.frombuffer(values, dtype=np.uint16) // 16).astype(np.uint8).tobytes()
    assert len(odd) % 2 == 1
    (dicom / "pixels").mkdir(parents=True, exist_ok=True)
    (dicom / "pixels/odd-pixel-length.dcm").write_bytes(
        _part10_header(ds, ExplicitVRLittleEndian) + _dataset_bytes(ds) + _element(0x7FE0, 0x0010, b"OB", odd)
    )
    corpus.expect("pixels/odd-pixel-length.dcm", "ok")
    ds = _image_dataset(next_uid())
    ds.Rows = ds.Columns = 65535
    _save(ds, dicom / "pixels/declared-65535x65535.dcm")
    corpus.expect("pixels/declared-65535x65535.dcm", "rejected", "pixel_data_too_large")
    ds = _image_dataset(next_uid(), rows=512, columns=512)
    ds.NumberOfFrames = 100_000
    _save(ds, dicom / "pixels/100000-frames.dcm")
    corpus.expect("pixels/100000-frames.dcm", "rejected", "pixel_data_too_large")
    # A multi-frame volume whose first frame is blank: frame 1 is exported, frames 2.. are never read.
    ds = _image_dataset(next_uid(), rows=512, columns=512)
    ds.NumberOfFrames = MULTIFRAME_FRAMES
    ds.PixelData = bytes(len(ds.PixelData)) + ds.PixelData * (MULTIFRAME_FRAMES - 1)
    _save(ds, dicom / "pixels/multiframe-first-frame-blank.dcm")
    corpus.expect("pixels/multiframe-first-frame-blank.dcm", "ok")
    ds = _image_dataset(next_uid())
    del ds.Rows
    _save(ds, dicom / "pixels/pixel-data-without-rows.dcm")
    corpus.expect("pixels/pixel-data-without-rows.dcm", "rejected", "invalid_value")
    ds = _image_dataset(next_uid())
    ds.PixelData = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() + b"\xff\xd9"
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([ds.PixelData])
    ds["PixelData"].VR = "OB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    _save(ds, dicom / "pixels/garbage-jpeg-fragment.dcm", JPEGBaseline8Bit)
    corpus.expect("pixels/garbage-jpeg-fragment.dcm", "rejected", "undecodable_compression")

    # Undefined lengths that never close: a sequence, and encapsulated pixels.
    ds = _image_dataset(next_uid())
    del ds.PixelData
    head = _part10_header(ds, ExplicitVRLittleEndian) + _dataset_bytes(ds)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + _element(0x0008, 0x0100, b"SH", b"T-1234")
    (dicom / "lengths/sequence-never-closed.dcm").parent.mkdir(parents=True, exist_ok=True)
    (dicom / "lengths/sequence-never-closed.dcm").write_bytes(head + _undefined(0x0008, 0x1140, b"SQ") + item * 3)
    corpus.expect("lengths/sequence-never-closed.dcm", "rejected", "truncated", "read_error")
    ds = _image_dataset(next_uid())
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    head = _part10_header(ds, JPEGBaseline8Bit) + _dataset_bytes(ds)
    fragments = struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, 2000) + b"\xff\xd8" * 600
    (dicom / "lengths/encapsulated-never-closed.dcm").write_bytes(head + _undefined(0x7FE0, 0x0010, b"OB") + fragments)
    corpus.expect("lengths/encapsulated-never-closed.dcm", "rejected", "truncated", "read_error",
                  "undecodable_compression")

    # A decompression bomb: Deflated Explicit VR Little Endian, ≥ 1 GB inflated, written in chunks.
    ds = _image_dataset(next_uid())
    ds.Rows, ds.Columns = 16384, 32768 + 2048
    del ds.PixelData
    bomb = dicom / "bombs/deflate-bomb.dcm"
    bomb.parent.mkdir(parents=True, exist_ok=True)
    pixel_bytes = 16384 * (32768 + 2048) * 2
    assert pixel_bytes >= BOMB_INFLATED_BYTES - 64 * 1024**2
    with open(bomb, "wb") as out:
        out.write(_part10_header(ds, DeflatedExplicitVRLittleEndian))
        deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        out.write(deflater.compress(_dataset_bytes(ds)))
        out.write(deflater.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes)))
        zeros = bytes(16 * 1024**2)
        for _ in range(pixel_bytes // len(zeros)):
            out.write(deflater.compress(zeros))
        out.write(deflater.flush())
    corpus.expect("bombs/deflate-bomb.dcm", "rejected", "inflated_too_large")

    # Deeply nested sequences.
    ds = _image_dataset(next_uid())
    inner = Dataset()
    inner.CodeValue = "T-1"
    for _ in range(200):
        outer = Dataset()
        outer.ReferencedImageSequence = Sequence([inner])
        inner = outer
    ds.ReferencedImageSequence = inner.ReferencedImageSequence
    _save(ds, dicom / "nesting/200-deep.dcm")
    corpus.expect("nesting/200-deep.dcm", "rejected", "sequence_too_deep")

    # Non-image SOP classes.
    sr = _image_dataset(next_uid())
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(sr, keyword)
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    sr.Modality = "SR"
    observer = Dataset()
    observer.VerifyingObserverName = NESTED_OBSERVER
    observer.VerifyingOrganization = "KBC"
    sr.VerifyingObserverSequence = Sequence([observer])
    sr.StudyDescription = "Nalaz - verificirala Jasenka Brezovečki"
    _save(sr, dicom / "sop/structured-report.dcm")
    corpus.expect("sop/structured-report.dcm", "rejected", "no_pixel_data")
    seg = _image_dataset(next_uid())
    seg.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    seg.Modality = "SEG"
    seg.BitsAllocated, seg.BitsStored, seg.HighBit = 1, 1, 0
    seg.NumberOfFrames = 1
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 1
    seg.PixelData = np.packbits(mask.ravel(), bitorder="little").tobytes()
    _save(seg, dicom / "sop/segmentation.dcm")
    corpus.expect("sop/segmentation.dcm", "rejected", "value_policy_max", "value_policy_distinct", "no_window")
    pdf = _image_dataset(next_uid())
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(pdf, keyword)
    pdf.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    pdf.Modality = "DOC"
    pdf.MIMETypeOfEncapsulatedDocument = "application/pdf"
    pdf.EncapsulatedDocument = b"%PDF-1.4\n% Nalaz: Zdravkovic Durdica\n%%EOF\n"
    _save(pdf, dicom / "sop/encapsulated.pdf.dcm")
    corpus.expect("sop/encapsulated.pdf.dcm", "rejected", "no_pixel_data")
    directory = Dataset()
    directory.FileSetID = "HOSTILE"
    directory.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    directory.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    directory.FileSetConsistencyFlag = 0
    record = Dataset()
    record.DirectoryRecordType = "PATIENT"
    record.PatientName = PATIENT
    record.PatientID = "HOSTILE-PID-77"
    directory.DirectoryRecordSequence = Sequence([record])
    directory.file_meta = FileMetaDataset()
    directory.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    directory.file_meta.MediaStorageSOPInstanceUID = _uid(next_uid())
    directory.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    directory.preamble = b"\0" * 128
    directory.save_as(dicom / "sop/DICOMDIR", enforce_file_format=True)
    corpus.expect("sop/DICOMDIR", "rejected", "missing_sop_instance_uid")
    ds = _image_dataset(next_uid())
    del ds.SOPInstanceUID
    _save(ds, dicom / "sop/missing-sop-instance-uid.dcm")
    corpus.expect("sop/missing-sop-instance-uid.dcm", "rejected", "missing_sop_instance_uid")

    # Duplicate SOPInstanceUIDs: the path that sorts first wins.
    ds = _image_dataset(next_uid())
    _save(ds, dicom / "dup/a-first.dcm")
    _save(ds, dicom / "dup/b-second.dcm")
    corpus.expect("dup/a-first.dcm", "ok")
    corpus.expect("dup/b-second.dcm", "rejected", "duplicate_sop_instance_uid")

    # Links: to a file (one input, the real path), to a directory (not followed), to nothing.
    ds = _image_dataset(next_uid())
    _save(ds, dicom / "links/target/real-file.dcm")
    corpus.expect("links/target/real-file.dcm", "ok")
    os.symlink(dicom / "links/target/real-file.dcm", dicom / "links/a-link-to-file.dcm")
    corpus.link_targets["links/a-link-to-file.dcm"] = str(dicom / "links/target/real-file.dcm")
    corpus.not_listed.append("links/a-link-to-file.dcm")
    os.symlink(dicom / "links/target", dicom / "links/a-link-to-dir")
    corpus.not_listed.append("links/a-link-to-dir/real-file.dcm")
    os.symlink(dicom / "links/nowhere.dcm", dicom / "links/dangling.dcm")
    corpus.expect("links/dangling.dcm", "rejected", "broken_link")

    _write_diagnoses(corpus.diagnoses)
    return corpus


def _write_diagnoses(path: Path) -> None:
    rows = [
        (ACCESSION,
         "Pacijentica ĐURĐICA ZDRAVKOVIĆ (Zdravković-Đurđica) upućena od Prpić-Ščukanec Berislav. "
         "CT glave: bez znakova intrakranijskog krvarenja, ventrikularni sustav uredne širine. "
         "Snimila Mirjana Tkalčević. Nalaz napisao prim. dr. sc. Krunoslav Vidaković. "
         "Pregledao: Dalibor Kuštrak, dr. med. Kontrolu dogovorila Snježana Jurković."),
        (ACCESSION_LATIN2, "Ljubica Šimunović: CT glave uredan, bez patoloških promjena. Šimunović L."),
        (ACCESSION_JAPANESE, "山田太郎様 頭部CT 異常なし. Yamada Tarou, head CT normal, no haemorrhage."),
    ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["AccessionNumber", "diagnosis"])
        writer.writerows(rows)
