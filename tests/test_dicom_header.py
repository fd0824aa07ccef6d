"""Reading DICOM headers: validation rejects and the flat tag dictionary (no Spark)."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radnet_spark.dicom.header import (
    _meta_rules_out_deflate,
    dataset_to_tags,
    is_image_instance,
    read_dataset,
)
from radnet_spark.dicom.reasons import RecordRejected, RejectReason

BIG = 10**9


def sample_path(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} is not installed"
    return path


def charset_file(name: str) -> str:
    (path,) = get_charset_files(name)
    return path


def part10_bytes(ds: Dataset, transfer_syntax: str | None = ExplicitVRLittleEndian) -> bytes:
    """Serialise a dataset as a Part 10 file, optionally without TransferSyntaxUID in its meta."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    if transfer_syntax is not None:
        meta.TransferSyntaxUID = transfer_syntax
    buffer = DicomBytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=False)
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def small_dataset(**attributes: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Modality = "OT"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def reject_reason(path: str, *, stop_before_pixels: bool = True, max_file_bytes: int = BIG) -> RejectReason:
    with pytest.raises(RecordRejected) as caught:
        read_dataset(path, stop_before_pixels=stop_before_pixels, max_file_bytes=max_file_bytes)
    return caught.value.reason


# --- read_dataset -------------------------------------------------------------------------------


def deflated_part10_bytes(ds: Dataset, meta_padding: int = 0) -> bytes:
    """A Deflated Explicit VR Little Endian file; ``meta_padding`` bytes of private meta lengthen its file meta."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    if meta_padding:
        meta.PrivateInformationCreatorUID = "1.2.3.4.5"
        meta.PrivateInformation = b"\0" * meta_padding
    body = DicomBytesIO()
    body.is_little_endian = True
    body.is_implicit_VR = False
    write_dataset(body, ds)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    buffer = DicomBytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    buffer.write(deflater.compress(body.getvalue()) + deflater.flush())
    return buffer.getvalue()


@pytest.mark.parametrize("meta_padding", [0, 6000], ids=["short meta", "meta longer than the first read"])
def test_deflated_file_is_inflated_however_long_its_file_meta(tmp_path: Path, meta_padding: int) -> None:
    path = write(tmp_path, "deflated.dcm", deflated_part10_bytes(small_dataset(StudyDescription="CT glave"),
                                                                 meta_padding))
    ds = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    assert ds.StudyDescription == "CT glave"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_only_a_whole_file_meta_without_the_deflated_uid_rules_out_deflate(tmp_path: Path) -> None:
    plain = Path(sample_path("CT_small.dcm")).read_bytes()
    deflated = deflated_part10_bytes(small_dataset())
    assert _meta_rules_out_deflate(plain[:4096])
    assert not _meta_rules_out_deflate(deflated[:4096])
    assert not _meta_rules_out_deflate(plain[:150])  # the meta does not end inside these bytes
    assert not _meta_rules_out_deflate(part10_bytes(small_dataset())[:4096])  # no group length: parse it
    assert not _meta_rules_out_deflate(deflated_part10_bytes(small_dataset(), meta_padding=6000)[:4096])


@pytest.mark.parametrize("stop_before_pixels", [True, False])
def test_image_file_reads_and_is_an_image_instance(stop_before_pixels: bool) -> None:
    ds = read_dataset(sample_path("CT_small.dcm"), stop_before_pixels=stop_before_pixels, max_file_bytes=BIG)
    assert ds.Modality == "CT"
    assert is_image_instance(ds)


def test_header_only_read_does_not_load_large_pixel_data() -> None:
    path = sample_path("MR-SIEMENS-DICOM-WithOverlays.dcm")  # 484 x 484 x 16 bit
    ds = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    assert is_image_instance(ds)
    assert ds.get_item("PixelData", keep_deferred=True).value is None  # deferred, not loaded


def test_rt_plan_is_not_an_image_instance() -> None:
    ds = read_dataset(sample_path("rtplan.dcm"), stop_before_pixels=True, max_file_bytes=BIG)
    assert not is_image_instance(ds)


def test_raw_dataset_without_file_meta_gets_its_detected_transfer_syntax() -> None:
    ds = read_dataset(sample_path("rtstruct.dcm"), stop_before_pixels=True, max_file_bytes=BIG)
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_part10_file_whose_meta_lacks_transfer_syntax_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "no_ts.dcm", part10_bytes(small_dataset(), transfer_syntax=None))
    assert reject_reason(path) is RejectReason.MISSING_TRANSFER_SYNTAX


def test_text_file_is_not_dicom(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "Nalaz: uredan nalaz pluća.\n".encode() * 20)
    assert reject_reason(path) is RejectReason.NOT_DICOM


def test_zero_filled_file_is_not_dicom(tmp_path: Path) -> None:
    # force=True "parses" this as one empty group-0 element; our validation must not accept it.
    path = write(tmp_path, "zeros.bin", b"\0" * 600)
    assert reject_reason(path) is RejectReason.NOT_DICOM


@pytest.mark.parametrize(
    "cut",
    [
        300,  # inside the file meta information
        700,  # inside an element header
        1000,  # inside a sequence
        34206,  # inside the pixel data
    ],
)
@pytest.mark.parametrize("stop_before_pixels", [True, False])
def test_truncated_copy_is_rejected_as_truncated(tmp_path: Path, cut: int, stop_before_pixels: bool) -> None:
    data = Path(sample_path("CT_small.dcm")).read_bytes()
    path = write(tmp_path, "cut.dcm", data[:cut])
    assert reject_reason(path, stop_before_pixels=stop_before_pixels) is RejectReason.TRUNCATED


@pytest.mark.parametrize("stop_before_pixels", [True, False])
def test_truncated_compressed_pixel_data_is_rejected_as_truncated(
    tmp_path: Path, stop_before_pixels: bool
) -> None:
    data = Path(sample_path("MR_small_RLE.dcm")).read_bytes()
    path = write(tmp_path, "cut_rle.dcm", data[: len(data) * 3 // 4])  # inside the encapsulated frames
    assert reject_reason(path, stop_before_pixels=stop_before_pixels) is RejectReason.TRUNCATED


def test_file_above_size_limit_is_rejected_before_reading() -> None:
    assert reject_reason(sample_path("CT_small.dcm"), max_file_bytes=1000) is RejectReason.FILE_TOO_LARGE


def test_missing_file_is_a_read_error(tmp_path: Path) -> None:
    assert reject_reason(str(tmp_path / "absent.dcm")) is RejectReason.READ_ERROR


def test_dataset_without_sop_instance_uid_is_rejected(tmp_path: Path) -> None:
    ds = small_dataset()
    del ds.SOPInstanceUID
    path = write(tmp_path, "no_uid.dcm", part10_bytes(ds))
    assert reject_reason(path) is RejectReason.MISSING_SOP_INSTANCE_UID


def nested(depth: int) -> Dataset:
    ds = small_dataset()
    inner = ds
    for _ in range(depth):
        item = Dataset()
        item.CodeValue = "X"
        inner.ContentSequence = Sequence([item])
        inner = item
    return ds


def test_deeply_nested_sequences_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.dcm", part10_bytes(nested(20)))
    assert reject_reason(path) is RejectReason.SEQUENCE_TOO_DEEP


def test_moderately_nested_sequences_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "shallow.dcm", part10_bytes(nested(3)))
    ds = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    assert ds.SOPInstanceUID == "1.2.3.4"


def test_reject_detail_names_no_attribute_value(tmp_path: Path) -> None:
    data = Path(sample_path("CT_small.dcm")).read_bytes()
    path = write(tmp_path, "cut.dcm", data[:1000])
    with pytest.raises(RecordRejected) as caught:
        read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    assert "CompressedSamples" not in caught.value.detail  # the patient name in CT_small
    assert "OtherPatientIDsSequence" in caught.value.detail


# --- dataset_to_tags ----------------------------------------------------------------------------


def ct_tags() -> dict[str, str | None]:
    return dataset_to_tags(
        read_dataset(sample_path("CT_small.dcm"), stop_before_pixels=True, max_file_bytes=BIG)
    )


def test_image_type_is_split_into_numbered_columns_only() -> None:
    tags = ct_tags()
    assert (tags["ImageType_0"], tags["ImageType_1"], tags["ImageType_2"]) == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert "ImageType" not in tags


def test_single_value_of_multi_valued_attribute_still_splits(tmp_path: Path) -> None:
    path = write(tmp_path, "one.dcm", part10_bytes(small_dataset(ImageType="DERIVED", SliceThickness="2.5")))
    tags = dataset_to_tags(read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG))
    assert tags["ImageType_0"] == "DERIVED"
    assert "ImageType" not in tags
    assert tags["SliceThickness"] == "2.5"


def test_multiple_windows_split_into_numbered_columns() -> None:
    path = sample_path("MR-SIEMENS-DICOM-WithOverlays.dcm")
    tags = dataset_to_tags(read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG))
    assert (tags["WindowCenter_0"], tags["WindowCenter_1"]) == ("450", "200")
    assert "WindowCenter" not in tags


def test_pixel_sequence_private_and_binary_elements_are_left_out() -> None:
    ds = read_dataset(sample_path("CT_small.dcm"), stop_before_pixels=False, max_file_bytes=BIG)
    tags = dataset_to_tags(ds)
    assert any(elem.tag.is_private for elem in ds)
    assert "PixelData" not in tags
    assert "OtherPatientIDsSequence" not in tags
    assert all(not column.startswith("Private") for column in tags)
    assert all(isinstance(value, str | None) for value in tags.values())


def test_person_name_is_a_string() -> None:
    assert ct_tags()["PatientName"] == "CompressedSamples^CT1"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chrGerm.dcm", "Äneas^Rüdiger"),  # ISO_IR 100 (Latin-1)
        ("chrX1.dcm", "Wang^XiaoDong=王^小東"),  # ISO_IR 192 (UTF-8)
        ("chrRuss.dcm", "Люкceмбypг"),  # ISO_IR 144 (Cyrillic)
        ("chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # ISO 2022 with escape sequences
    ],
)
def test_non_ascii_character_sets_are_decoded(name: str, expected: str) -> None:
    ds = read_dataset(charset_file(name), stop_before_pixels=True, max_file_bytes=BIG)
    assert dataset_to_tags(ds)["PatientName"] == expected


def test_invalid_bytes_and_invalid_numbers_do_not_fail_the_record(tmp_path: Path) -> None:
    ds = small_dataset(
        SpecificCharacterSet="ISO_IR 192", StudyDescription="Mozak XXXX", SliceThickness="9.99"
    )
    data = part10_bytes(ds).replace(b"XXXX", b"\xff\xfe\xc3\x28").replace(b"9.99", b"abcd")
    path = write(tmp_path, "bad_values.dcm", data)
    tags = dataset_to_tags(read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG))
    assert tags["StudyDescription"].startswith("Mozak ")
    assert "\ufffd" in tags["StudyDescription"]
    assert tags["SliceThickness"] is None
    assert tags["Modality"] == "OT"


def test_unknown_vr_code_is_not_turned_into_a_text_column(tmp_path: Path) -> None:
    data = part10_bytes(small_dataset(StudyDescription="Mozak", SliceThickness="2.5"))
    start = data.index(b"\x08\x00\x30\x10LO")
    data = data[: start + 4] + b"ZZ" + data[start + 6 :]
    path = write(tmp_path, "bad_vr.dcm", data)
    tags = dataset_to_tags(read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG))
    assert tags.get("StudyDescription") is None
    assert tags["SliceThickness"] == "2.5"  # the elements after it still parse


def test_megabyte_text_value_is_left_out_unread(tmp_path: Path) -> None:
    from pydicom.tag import Tag

    # UT has a 4-byte length in explicit VR: the megabyte is written as text, not changed to UN.
    long = small_dataset(TextValue="CT glave nativno. " * 60_000, StudyDescription="CT glave")
    path = write(tmp_path, "long.dcm", part10_bytes(long))
    header = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    assert header.get_item(Tag("TextValue"), keep_deferred=True).VR == "UT"
    tags = dataset_to_tags(header)
    assert "TextValue" not in tags
    assert tags["StudyDescription"] == "CT glave"
    assert header.get_item(Tag("TextValue"), keep_deferred=True).value is None  # never loaded
    short = small_dataset(TextValue="CT glave nativno. " * 3_000)  # 54 KB: under the cap, kept
    tags = dataset_to_tags(read_dataset(write(tmp_path, "short.dcm", part10_bytes(short)),
                                        stop_before_pixels=True, max_file_bytes=BIG))
    assert tags["TextValue"].startswith("CT glave nativno.")


# --- tags straight from raw bytes equal tags through the dataset ----------------------------------


def _converted_through_the_dataset(ds: Dataset) -> Dataset:
    """Convert every loaded element the way a dataset access does (deferred values stay deferred)."""
    for tag in list(ds.keys()):
        if ds.get_item(tag, keep_deferred=True).value is not None:
            with contextlib.suppress(Exception):  # a value pydicom cannot convert stays raw
                ds[tag]  # noqa: B018 - the access converts and stores the element
    return ds


def _raw_bytes(ds: Dataset, implicit: bool, little: bool) -> bytes:
    """A raw dataset (no preamble, no file meta) in the given encoding."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_dataset(buffer, ds)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "path",
    [
        sample_path(name)
        for name in ("CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm",
                     "ExplVR_BigEnd.dcm", "emri_small.dcm", "reportsi_with_empty_number_tags.dcm",
                     "MR-SIEMENS-DICOM-WithOverlays.dcm", "image_dfl.dcm", "ExplVR_BigEndNoMeta.dcm")
    ]
    + [charset_file(name) for name in ("chrGerm.dcm", "chrX1.dcm", "chrRuss.dcm", "chrH31.dcm", "chrArab.dcm", "chrHbrw.dcm")],
)
def test_tags_from_raw_bytes_equal_tags_from_converted_elements(path: str) -> None:
    fresh = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    reference = _converted_through_the_dataset(read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG))
    assert dataset_to_tags(fresh) == dataset_to_tags(reference)


@pytest.mark.parametrize(("implicit", "little"), [(False, True), (True, True), (False, False)])
def test_odd_values_convert_the_same_from_raw_bytes_as_through_the_dataset(
    tmp_path: Path, implicit: bool, little: bool
) -> None:
    ds = small_dataset(
        SpecificCharacterSet="ISO_IR 100",
        StudyDescription="Glava i vrat Öé  ",  # Latin-1, trailing spaces
        SeriesDescription="",  # empty
        PixelSpacing="0.5\\9.99",  # second value made invalid below
        ImagerPixelSpacing="0.25\\0.25",
        InstanceNumber="1234",  # made "inf " below
        SeriesNumber="1.50",  # IS that is not an integer
        EchoNumbers="1\\2\\3",
        AcquisitionNumber="2.0",  # IS written as a float
        AcquisitionMatrix=[0, 256, 192, 0],  # US, VM 4
        SimpleFrameList=[1, 70000],  # UL, 1-n
        TagAngleSecondAxis=-45,  # SS
        ImagedVolumeWidth=0.1,  # FL: a float32 value
        ReferencePixelPhysicalValueX=-1.25e-7,  # FD
        OtherPatientNames="Horvat^Ivan\\Kovač^Ana",  # PN, several values
        ImageComments="first line\\ not a separator in LT ",
        ProtocolName="Mozak\x00\x00",  # trailing nulls
        ImageType="ORIGINAL\\PRIMARY\\AXIAL",
        SliceThickness="  3 ",
    )
    data = _raw_bytes(ds, implicit, little).replace(b"9.99", b"abcd").replace(b"1234", b"inf ")
    path = write(tmp_path, "odd", data)
    fresh = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
    reference = _converted_through_the_dataset(read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG))
    tags = dataset_to_tags(fresh)
    assert tags == dataset_to_tags(reference)
    assert tags["StudyDescription"] == "Glava i vrat Öé"
    assert (tags["AcquisitionMatrix_1"], tags["SimpleFrameList_1"], tags["TagAngleSecondAxis"]) == ("256", "70000", "-45")
    assert tags["InstanceNumber"] is None and tags["SeriesNumber"] is None


def test_skipped_keywords_are_left_out_unconverted() -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = read_dataset(sample_path("CT_small.dcm"), stop_before_pixels=True, max_file_bytes=BIG)
    tags = dataset_to_tags(ds, skip=frozenset({"StudyDate", "InstitutionName"}))
    assert "StudyDate" not in tags and "InstitutionName" not in tags
    assert isinstance(ds.get_item(Tag("StudyDate"), keep_deferred=True), RawDataElement)
    assert tags["Modality"] == "CT"


def test_elements_read_again_later_are_stored_converted_and_others_left_raw() -> None:
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.tag import Tag

    ds = read_dataset(sample_path("CT_small.dcm"), stop_before_pixels=True, max_file_bytes=BIG)
    dataset_to_tags(ds)
    for keyword in ("Rows", "RescaleSlope", "Modality", "PatientName"):  # pixel export, name tokens
        assert isinstance(ds.get_item(Tag(keyword), keep_deferred=True), DataElement), keyword
    assert ds.Rows == 128 and str(ds.PatientName) == "CompressedSamples^CT1"
    assert isinstance(ds.get_item(Tag("StudyDescription"), keep_deferred=True), RawDataElement)


@pytest.mark.parametrize("keep_dates", [False, True])
def test_leaving_out_what_deidentification_drops_changes_no_row(tmp_path: Path, keep_dates: bool) -> None:
    from radnet_spark.dicom.deid import deidentify_tags
    from radnet_spark.dicom.names import record_name_tokens
    from radnet_spark.ingest.instance import unwritten_keywords
    from radnet_spark.synth import DefectRates, generate_pacs

    generate_pacs(tmp_path, exams=3, seed=17, defect_rates=DefectRates.none(), workers=1)
    paths = sorted(str(p) for p in (tmp_path / "dicom").rglob("*") if p.is_file())
    paths.append(sample_path("CT_small.dcm"))
    for path in paths:
        lean = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
        full = read_dataset(path, stop_before_pixels=True, max_file_bytes=BIG)
        lean_tags = dataset_to_tags(lean, skip=unwritten_keywords(keep_dates))
        full_tags = dataset_to_tags(full)
        assert len(lean_tags) < len(full_tags)
        assert (deidentify_tags(lean_tags, salt="s", keep_dates=keep_dates)
                == deidentify_tags(full_tags, salt="s", keep_dates=keep_dates))
        assert record_name_tokens(lean) == record_name_tokens(full) != set()
