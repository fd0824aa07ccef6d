"""De-identification of tag rows, salted hashes, salt resolution and free-text scrubbing (no Spark)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from radnet_spark.dicom.deid import (
    CLEAN_DESCRIPTOR_KEYWORDS,
    DATE_TIME_KEYWORDS,
    IDENTIFYING_KEYWORDS,
    SaltError,
    deidentify_tags,
    exam_id_for,
    resolve_salt,
    salted_hash,
    scrub_free_text,
)
from radnet_spark.dicom.header import dataset_to_tags, read_dataset
from radnet_spark.dicom.reasons import RecordRejected, RejectReason

SALT = "test-salt"


def raw_tags() -> dict[str, str | None]:
    tags = {
        "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.1",
        "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.2",
        "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.3",
        "FrameOfReferenceUID": "1.2.826.0.1.3680043.8.498.4",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
        "AccessionNumber": "ACC2023000123",
        "PatientName": "Horvat^Ivan",
        "PatientID": "12345678901",
        "PatientBirthDate": "19700101",
        "PatientAddress": "Ilica 1, Zagreb",
        "OtherPatientIDs_0": "MBO123456789",
        "OtherPatientIDs_1": "X9",
        "InstitutionName": "KBC Rijeka",
        "ReferringPhysicianName": "Kovac^Ana",
        "PerformingPhysicianName_0": "Babic^Marko",
        "OperatorsName_0": "Novak^Petra",
        "StationName": "CT01",
        "DeviceSerialNumber": "SN-998877",
        "StudyID": "4455",
        "StudyDate": "20230105",
        "StudyTime": "143000",
        "AcquisitionDateTime": "20230105143012",
        "PatientAge": "045Y",
        "PatientSex": "M",
        "Modality": "CT",
        "Manufacturer": "GE MEDICAL SYSTEMS",
        "ImageType_0": "ORIGINAL",
        "ImageType_1": "PRIMARY",
        "SliceThickness": "5.0",
        "StudyDescription": "CT glave 05.01.2023 nativno",
        "SeriesDescription": "Axial 5 mm C5-C6",
        "ProtocolName": "GLAVA_RUTINA",
        "RequestedProcedureDescription": "CT mozga, uputnica 123456789",
        "BodyPartExamined": "HEAD",
    }
    return tags


def test_identifying_attributes_never_reach_the_row() -> None:
    row = deidentify_tags(raw_tags(), salt=SALT)
    for column in row:
        base = column.rsplit("_", 1)[0] if column[-1].isdigit() else column
        assert base not in IDENTIFYING_KEYWORDS, column
    clear_values = {
        "Horvat^Ivan",
        "12345678901",
        "KBC Rijeka",
        "Kovac^Ana",
        "ACC2023000123",
        "CT01",
        "SN-998877",
    }
    assert not clear_values & {value for value in row.values() if value}


def test_ids_are_replaced_by_their_salted_hashes() -> None:
    tags = raw_tags()
    row = deidentify_tags(tags, salt=SALT)
    assert row["sop_instance_uid"] == tags["SOPInstanceUID"]  # clear by default: links back to the PACS
    assert row["exam_id"] == salted_hash("ACC2023000123", SALT)
    assert row["study_id"] == salted_hash(tags["StudyInstanceUID"], SALT)
    assert row["series_id"] == salted_hash(tags["SeriesInstanceUID"], SALT)
    for keyword in (
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "AccessionNumber",
        "FrameOfReferenceUID",
    ):
        assert keyword not in row


def test_sop_instance_uid_is_hashed_on_request() -> None:
    tags = raw_tags()
    row = deidentify_tags(tags, salt=SALT, hash_sop_instance_uid=True)
    assert row["sop_instance_uid"] == salted_hash(tags["SOPInstanceUID"], SALT)
    assert tags["SOPInstanceUID"] not in row.values()


def test_exam_id_falls_back_to_study_instance_uid_without_accession_number() -> None:
    tags = raw_tags()
    tags["AccessionNumber"] = None
    row = deidentify_tags(tags, salt=SALT)
    assert row["exam_id"] == salted_hash(tags["StudyInstanceUID"], SALT)
    assert exam_id_for(None, None, SALT) is None


def test_hashes_are_deterministic_per_salt_and_differ_across_salts() -> None:
    first = deidentify_tags(raw_tags(), salt=SALT)
    again = deidentify_tags(raw_tags(), salt=SALT)
    other = deidentify_tags(raw_tags(), salt="another-salt")
    assert first == again
    for column in ("exam_id", "study_id", "series_id"):
        assert first[column] != other[column]
        assert len(first[column]) == 32


def test_salted_hash_is_hmac_sha256_truncated_to_32_hex_characters() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"value", hashlib.sha256).hexdigest()[:32]
    assert salted_hash("value", "k") == expected


def test_dates_and_times_are_dropped_unless_kept() -> None:
    dropped = deidentify_tags(raw_tags(), salt=SALT)
    kept = deidentify_tags(raw_tags(), salt=SALT, keep_dates=True)
    for keyword in ("StudyDate", "StudyTime", "AcquisitionDateTime"):
        assert keyword in DATE_TIME_KEYWORDS
        assert keyword not in dropped
        assert kept[keyword] == raw_tags()[keyword]
    assert "PatientBirthDate" not in kept  # a patient's date, not an exam's: removed even then


def test_patient_characteristics_follow_their_option() -> None:
    assert "PatientSex" not in deidentify_tags(raw_tags(), salt=SALT)
    kept = deidentify_tags(raw_tags(), salt=SALT, keep_patient_characteristics=True)
    assert (kept["PatientSex"], kept["PatientAge"]) == ("M", "045Y")
    assert "PatientName" not in kept


def test_non_identifying_tags_are_kept_with_their_split_columns() -> None:
    row = deidentify_tags(raw_tags(), salt=SALT)
    assert row["Modality"] == "CT"
    assert row["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2"
    assert (row["ImageType_0"], row["ImageType_1"]) == ("ORIGINAL", "PRIMARY")
    assert row["SliceThickness"] == "5.0"
    assert "OtherPatientIDs_0" not in row and "OtherPatientIDs_1" not in row


def test_descriptors_are_kept_but_scrubbed() -> None:
    row = deidentify_tags(raw_tags(), salt=SALT)
    assert set(row) >= CLEAN_DESCRIPTOR_KEYWORDS
    assert row["StudyDescription"] == "CT glave [DATE] nativno"
    assert row["SeriesDescription"] == "Axial 5 mm C5-C6"
    assert row["RequestedProcedureDescription"] == "CT mozga, uputnica [ID]"
    assert row["BodyPartExamined"] == "HEAD"


def test_row_without_sop_instance_uid_is_rejected() -> None:
    tags = raw_tags()
    tags["SOPInstanceUID"] = None
    with pytest.raises(RecordRejected) as caught:
        deidentify_tags(tags, salt=SALT)
    assert caught.value.reason is RejectReason.MISSING_SOP_INSTANCE_UID


def test_real_file_row_keeps_no_patient_data() -> None:
    path = get_testdata_file("CT_small.dcm", download=False)
    tags = dataset_to_tags(read_dataset(path, stop_before_pixels=True, max_file_bytes=10**9))
    row = deidentify_tags(tags, salt=SALT)
    values = {value for value in row.values() if value}
    for keyword in ("PatientName", "PatientID", "InstitutionName", "StationName", "StudyInstanceUID"):
        assert tags[keyword] not in values, keyword
    assert row["Modality"] == "CT"


def test_identifying_list_comes_from_the_ps3_15_table() -> None:
    expected = {
        "PatientName", "PatientID", "OtherPatientIDs", "PatientAddress", "AccessionNumber", "InstitutionName",
        "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
        "DeviceSerialNumber", "StationName", "StudyID", "FrameOfReferenceUID", "PatientBirthDate",
    }  # fmt: skip
    assert expected <= IDENTIFYING_KEYWORDS
    assert {"Modality", "SOPClassUID", "ImageType", "Manufacturer", "SliceThickness"}.isdisjoint(
        IDENTIFYING_KEYWORDS
    )
    assert len(IDENTIFYING_KEYWORDS) > 300  # the whole table, not a hand-typed handful


# --- salt -----------------------------------------------------------------------------------------


def test_salt_from_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RADNET_SALT", "from-env")
    salt_file = tmp_path / "salt"
    salt_file.write_text("from-file")
    assert resolve_salt(fallback_file=salt_file) == "from-env"


def test_salt_file_is_created_once_with_owner_only_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RADNET_SALT", raising=False)
    salt_file = tmp_path / "_private" / "salt"
    first = resolve_salt(fallback_file=salt_file)
    assert len(first) == 64
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert resolve_salt(fallback_file=salt_file) == first


def test_missing_salt_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADNET_SALT", raising=False)
    with pytest.raises(SaltError, match="RADNET_SALT"):
        resolve_salt()


def test_empty_salt_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RADNET_SALT", raising=False)
    salt_file = tmp_path / "salt"
    salt_file.write_text("\n")
    with pytest.raises(SaltError, match="empty"):
        resolve_salt(fallback_file=salt_file)


# --- free text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Kontrola 05.01.2023. bez promjena", "Kontrola [DATE] bez promjena"),
        ("usporedba s 5.1.23 i 2023-01-05", "usporedba s [DATE] i [DATE]"),
        ("snimano 20230105 u 14:30", "snimano [DATE] u [TIME]"),
        ("pregled 5. siječnja 2023. u 9.30 h", "pregled [DATE] u [TIME]"),
        ("compared with January 5, 2023 and 12 Feb 2022", "compared with [DATE] and [DATE]"),
        ("follow-up 03/04/2021", "follow-up [DATE]"),
        ("OIB 12345678901, MBO 123456789", "OIB [ID], MBO [ID]"),
        ("accession AB123456 and 2023000123", "accession [ID] and [ID]"),
        ("study 1.2.840.113619.2.55.3 attached", "study [ID] attached"),
        ("javiti se na ivan.horvat@kbc-ri.hr", "javiti se na [EMAIL]"),
        ("tel. 091 234 5678 ili +385 1 2345 678", "tel. [PHONE] ili [PHONE]"),
    ],
)
def test_scrub_replaces_dates_times_ids_emails_and_phones(text: str, expected: str) -> None:
    assert scrub_free_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Protruzija diska L4/L5 od 5 mm, suženje C5-C6.",
        "T2 i FLAIR hiperintenzitet 3.5 cm, T1 nakon kontrasta.",
        "Fractura Th12-L1, RR 120/80, 1.5T MR, DWI b1000, 12 x 15 x 20 mm.",
        "Pleural effusion, 30 mL; S1 root compressed; C2 dens intact; COVID19 negative.",
    ],
)
def test_scrub_keeps_medical_shorthand_and_measurements(text: str) -> None:
    assert scrub_free_text(text) == text


def test_scrub_of_empty_text_is_empty() -> None:
    assert scrub_free_text("") == ""
