"""The synthetic PACS generator writes a realistic, deterministic dump with known ground truth."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radnet_spark.synth import GROUND_TRUTH_COLUMNS, DefectRates, generate_pacs
from radnet_spark.synth import defects as dfx
from radnet_spark.synth import phantoms as ph
from radnet_spark.synth import tags as tg
from radnet_spark.synth import vocabulary as voc
from radnet_spark.synth.diagnoses import PHRASES, diagnosis_text

# High rates so every defect shows up in a small dump.
TEST_RATES = DefectRates(truncated=0.04, not_dicom=0.04, no_pixel_data=0.04, blank=0.04, monochrome=0.04,
                         one_pixel_high=0.04, modality_lut=0.04, no_window=0.04, rle=0.04, jpeg2000=0.04)
EXAMS = 24
SEED = 11


def _ground_truth(root: Path) -> list[dict[str, str]]:
    with open(root / "ground_truth.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _digest(root: Path) -> str:
    h = hashlib.sha256((root / "ground_truth.csv").read_bytes())
    for path in sorted((root / "dicom").rglob("*")):
        if path.is_file():
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pacs")
    generate_pacs(root, exams=EXAMS, seed=SEED, defect_rates=TEST_RATES, workers=1)
    return root


@pytest.fixture(scope="module")
def rows(dump: Path) -> list[dict[str, str]]:
    return _ground_truth(dump)


@pytest.fixture(scope="module")
def headers(dump: Path, rows: list[dict[str, str]]) -> dict[str, pydicom.Dataset]:
    """Headers of every file pydicom can parse, keyed by relative path."""
    out = {}
    for row in rows:
        if row["defect"] in dfx.READ_DEFECTS:
            continue
        out[row["relative_path"]] = pydicom.dcmread(dump / "dicom" / row["relative_path"], stop_before_pixels=True)
    return out


def test_ground_truth_lists_every_written_file_with_the_documented_columns(dump, rows):
    with open(dump / "ground_truth.csv", encoding="utf-8") as f:
        assert f.readline().strip().split(",") == GROUND_TRUTH_COLUMNS
    on_disk = {p.relative_to(dump / "dicom").as_posix() for p in (dump / "dicom").rglob("*") if p.is_file()}
    assert on_disk == {r["relative_path"] for r in rows}
    assert len(on_disk) == len(rows), "every file appears exactly once"
    assert len(rows) > EXAMS


def test_folder_tree_mixes_extensionless_dcm_and_odd_file_names(rows):
    names = [r["relative_path"].rsplit("/", 1)[-1] for r in rows if r["sop_instance_uid"]]
    assert any("." not in n for n in names)
    assert any(n.endswith(".dcm") for n in names)
    assert any(not n.endswith(".dcm") and "." in n for n in names)
    assert len({r["relative_path"].count("/") for r in rows}) > 1


def test_body_parts_are_plausible_for_the_modality(rows, headers):
    exams = {}
    for row in rows:
        if row["modality"] in voc.MODALITY_BODY_PARTS:
            exams[row["accession_number"]] = row["modality"]
            assert row["body_part"] in voc.MODALITY_BODY_PARTS[row["modality"]]
            assert row["body_part"] in voc.BODY_PARTS
    assert set(exams.values()) >= {"CT", "MR", "CR"}
    for path, ds in headers.items():
        row = next(r for r in rows if r["relative_path"] == path)
        assert ds.Modality == row["modality"]
        assert ds.SOPClassUID == tg.SOP_CLASSES[row["modality"]]
        assert ds.SOPInstanceUID == row["sop_instance_uid"]


def test_modality_weights_cover_kept_and_dropped_modalities():
    rng = np.random.default_rng(0)
    keys = list(voc.MODALITY_WEIGHTS)
    p = np.array([voc.MODALITY_WEIGHTS[k] for k in keys])
    drawn = Counter(keys[i] for i in rng.choice(len(keys), size=2000, p=p / p.sum()))
    assert set(drawn) == set(voc.KEPT_MODALITIES) | set(voc.DROPPED_MODALITIES)
    assert all(set(parts) <= set(voc.BODY_PARTS) for parts in voc.MODALITY_BODY_PARTS.values())
    assert set(voc.BODY_PART_TERMS) == set(voc.BODY_PARTS) == set(voc.RAW_BPE_VARIANTS)


def test_body_part_examined_is_missing_in_about_the_configured_share(rows, headers):
    images = [headers[r["relative_path"]] for r in rows
              if r["relative_path"] in headers and r["defect"] != dfx.NO_PIXEL_DATA]
    missing = sum("BodyPartExamined" not in ds for ds in images) / len(images)
    assert abs(missing - 0.45) < 0.1
    present = [ds.BodyPartExamined for ds in images if "BodyPartExamined" in ds]
    raw = [v for v in present if v not in voc.BODY_PARTS]
    assert raw, "some BodyPartExamined values should be raw variants"
    variants = {v for vs in voc.RAW_BPE_VARIANTS.values() for v in vs}
    assert set(raw) <= variants


def test_missing_bpe_share_is_configurable():
    rng = np.random.default_rng(3)
    values = [tg.bpe_value("KNEE", rng, 0.1) for _ in range(2000)]
    assert abs(sum(v is None for v in values) / 2000 - 0.1) < 0.03


def test_every_defect_appears_near_its_rate(rows):
    counts = Counter(r["defect"] for r in rows)
    n = len(rows)
    for code in ("truncated", "not_dicom", "no_pixel_data", "blank", "monochrome", "one_pixel_high",
                 "modality_lut", "no_window", "rle", "jpeg2000"):
        expected = 0.04 * n
        assert 0.3 * expected <= counts[code] <= 2.5 * expected, (code, counts[code], expected)


def test_no_defects_rates_write_a_clean_dump(tmp_path):
    generate_pacs(tmp_path, exams=12, seed=5, workers=2, defect_rates=DefectRates.none())
    assert all(r["defect"] == "" for r in _ground_truth(tmp_path))


def test_parts_with_consecutive_exam_ranges_make_one_larger_dump(tmp_path):
    # A benchmark grows a dump part by part: the parts must not collide and must equal the whole.
    whole = tmp_path / "whole"
    generate_pacs(whole, exams=4, seed=7, workers=1, defect_rates=DefectRates.none())
    first, second = tmp_path / "first", tmp_path / "second"
    generate_pacs(first, exams=2, seed=7, workers=1, defect_rates=DefectRates.none(), first_exam=0)
    generate_pacs(second, exams=2, seed=7, workers=1, defect_rates=DefectRates.none(), first_exam=2)

    def uids(root: Path) -> set[str]:
        return {r["sop_instance_uid"] for r in _ground_truth(root)}

    def accessions(root: Path) -> set[str]:
        return {r["accession_number"] for r in _ground_truth(root)}

    assert not uids(first) & uids(second)
    assert not accessions(first) & accessions(second)
    assert uids(second) <= uids(whole)
    assert accessions(second) <= accessions(whole)


def test_defect_rates_reject_a_total_above_one():
    with pytest.raises(ValueError, match="sum to at most 1"):
        DefectRates(truncated=0.6, not_dicom=0.6)


def test_files_except_read_defects_parse_and_their_pixels_decode(dump, rows):
    for row in rows:
        if row["defect"] in dfx.READ_DEFECTS:
            continue
        ds = pydicom.dcmread(dump / "dicom" / row["relative_path"])
        assert str(ds.file_meta.TransferSyntaxUID) == row["transfer_syntax"]
        if row["defect"] == dfx.NO_PIXEL_DATA:
            assert "PixelData" not in ds
            continue
        pixels = ds.pixel_array
        frames = int(row["frames"])
        assert int(ds.get("NumberOfFrames", 1)) == frames
        assert pixels.shape[-2:] == (ds.Rows, ds.Columns)
        if frames > 1:
            assert pixels.shape[0] == frames


def test_read_defects_are_not_usable_dicom_images(dump, rows):
    for row in rows:
        if row["defect"] not in dfx.READ_DEFECTS:
            continue
        path = dump / "dicom" / row["relative_path"]
        with pytest.raises(Exception):  # noqa: B017 - any failure to read or decode is the point
            _ = pydicom.dcmread(path).pixel_array


def test_pixel_defects_have_the_announced_shape_and_values(dump, rows):
    seen = set()
    for row in rows:
        code = row["defect"]
        if code not in ("blank", "monochrome", "one_pixel_high", "modality_lut", "no_window", "rle", "jpeg2000"):
            continue
        ds = pydicom.dcmread(dump / "dicom" / row["relative_path"])
        pixels = ds.pixel_array
        if code == "blank":
            assert np.unique(pixels).size == 1
        elif code == "monochrome":
            assert np.unique(pixels).size <= 3 and pixels.max() >= 64
        elif code == "one_pixel_high":
            assert ds.Rows == 1
        elif code == "modality_lut":
            assert "ModalityLUTSequence" in ds and "RescaleSlope" not in ds
        elif code == "no_window":
            assert "WindowCenter" not in ds and "WindowWidth" not in ds
        elif code == "rle":
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
        elif code == "jpeg2000":
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEG2000Lossless
        seen.add(code)
    assert len(seen) == 7


def test_ct_is_stored_in_shifted_hounsfield_units(dump, rows):
    row = next(r for r in rows if r["modality"] == "CT" and not r["defect"])
    ds = pydicom.dcmread(dump / "dicom" / row["relative_path"])
    assert (ds.RescaleIntercept, ds.RescaleSlope, ds.BitsStored, ds.HighBit) == (-1024, 1, 12, 11)
    hu = ds.pixel_array.astype(float) * ds.RescaleSlope + ds.RescaleIntercept
    assert hu.min() < -900 and hu.max() > 200


def test_windows_are_mostly_present_and_sometimes_multi_valued(rows, headers):
    images = [headers[r["relative_path"]] for r in rows if r["relative_path"] in headers
              and r["defect"] not in (dfx.NO_PIXEL_DATA, dfx.NO_WINDOW)]
    assert all("WindowCenter" in ds for ds in images)
    assert any(isinstance(ds.WindowCenter, pydicom.multival.MultiValue) for ds in images)


def test_same_seed_gives_identical_dump_whatever_the_worker_count(dump, tmp_path):
    again = tmp_path / "again"
    generate_pacs(again, exams=EXAMS, seed=SEED, defect_rates=TEST_RATES, workers=2)
    assert (again / "ground_truth.csv").read_bytes() == (dump / "ground_truth.csv").read_bytes()
    assert (again / "diagnoses.csv").read_bytes() == (dump / "diagnoses.csv").read_bytes()
    assert _digest(again) == _digest(dump)


def test_different_seed_gives_a_different_dump(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_pacs(a, exams=3, seed=1, workers=1)
    generate_pacs(b, exams=3, seed=2, workers=1)
    assert (a / "ground_truth.csv").read_bytes() != (b / "ground_truth.csv").read_bytes()


def test_raw_files_carry_identifying_data(headers):
    for ds in headers.values():
        assert str(ds.PatientName) and ds.PatientID and ds.PatientBirthDate and ds.AccessionNumber
        assert ds.InstitutionName and ds.StationName and ds.DeviceSerialNumber
    assert any(ds.get("ReferringPhysicianName") for ds in headers.values())
    assert any(ds.get("OperatorsName") for ds in headers.values())


def test_diagnoses_csv_has_the_documented_columns_and_keys_exams(dump, rows):
    with open(dump / "diagnoses.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["AccessionNumber", "diagnosis"]
        diag = list(reader)
    accessions = {r["accession_number"] for r in rows}
    assert diag and {d["AccessionNumber"] for d in diag} <= accessions
    assert len({d["AccessionNumber"] for d in diag}) == len(diag)


def test_diagnoses_include_empty_short_missing_and_phi_bearing_texts():
    texts = [diagnosis_text("KNEE", "CR", "hr", np.random.default_rng([5, i]), "123456789", "20200315")
             for i in range(1000)]
    assert 10 < sum(t is None for t in texts) < 100
    assert 10 < sum(t == "" for t in texts) < 120
    assert 10 < sum(t is not None and 0 < len(t) < 10 for t in texts) < 120
    assert 5 < sum(t is not None and "123456789" in t and "2019." in t for t in texts) < 100
    full = [t for t in texts if t and len(t) > 20]
    assert len(full) > 700
    assert any("koljen" in t.lower() for t in full)


def _words(text: str) -> set[str]:
    return {w.strip(".,:;()%").lower() for w in text.split()} - {""}


def test_english_option_writes_english_diagnoses(tmp_path):
    generate_pacs(tmp_path, exams=6, seed=4, language="en", workers=1)
    with open(tmp_path / "diagnoses.csv", newline="", encoding="utf-8") as f:
        texts = [d["diagnosis"] for d in csv.DictReader(f) if len(d["diagnosis"]) > 15]
    assert texts
    english = set().union(*(_words(p) for fam in PHRASES["en"].values() for ps in fam.values() for p in ps))
    croatian = set().union(*(_words(p) for fam in PHRASES["hr"].values() for ps in fam.values() for p in ps))
    croatian -= english
    for text in texts:
        words = _words(text)
        assert len(words & english) / len(words) > 0.6, text
        assert not words & croatian, text


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="language"):
        generate_pacs(tmp_path, exams=1, seed=1, language="fr")


def test_descriptions_name_the_body_part_in_the_large_majority_of_exams():
    rng = np.random.default_rng(8)
    recoverable = vague = 0
    trials = 600
    for i in range(trials):
        modality = voc.KEPT_MODALITIES[i % 5]
        parts = list(voc.MODALITY_BODY_PARTS[modality])
        part = parts[i % len(parts)]
        d = tg.describe(part, modality, rng)
        vague += d.vague
        text = " ".join(x for x in (d.study, d.protocol, d.requested) if x).lower()
        terms = [t.lower() for lang in ("hr", "la", "en", "de") for t in voc.terms_for(part, modality, lang)]
        recoverable += any(t in text or t.replace(" ", "_") in text or t.replace(" ", "^") in text for t in terms)
    assert recoverable / trials > 0.8
    assert 0.02 < vague / trials < 0.12


def test_phantom_shapes_depend_on_the_body_part():
    rng = np.random.default_rng(0)
    pose = ph.Pose()
    chest = ph.draw("CHEST", ph.AXIAL, 128, 128, rng, pose)
    head = ph.draw("HEAD", ph.AXIAL, 128, 128, rng, pose)
    hand = ph.draw("HAND", ph.PROJECTION, 128, 128, rng, pose)
    assert (chest == ph.LUNG).mean() > 0.1 and (head == ph.LUNG).sum() == 0
    assert (head == ph.CORTEX).mean() > 0.03 and (head == ph.GREY).sum() > 0
    assert (hand == ph.BONE).sum() > 0 and (hand == ph.LUNG).sum() == 0
    assert ph.draw_vessels("CAROTID", 128, 128, rng, pose).sum() > 50


def test_radiographs_use_10_to_14_bits_and_sometimes_monochrome1():
    from radnet_spark.synth import intensity as inten

    rng = np.random.default_rng(2)
    styles = [inten.series_style("CR", "HAND", rng) for _ in range(300)]
    assert {s.bits_stored for s in styles} == {10, 12, 14}
    share_mono1 = sum(s.photometric == "MONOCHROME1" for s in styles) / len(styles)
    assert 0.15 < share_mono1 < 0.45


def test_xa_frames_carry_several_window_pairs():
    from radnet_spark.synth import intensity as inten

    rng = np.random.default_rng(1)
    style = inten.series_style("XA", "CHEST", rng)
    labels = ph.draw("CHEST", ph.PROJECTION, 64, 64, rng, ph.Pose())
    stored = inten.store(inten.base_values(labels, style), style)
    assert len(inten.display_windows(stored, style, rng)) >= 2


def test_summary_counts_files_by_modality_and_defect(tmp_path):
    summary = generate_pacs(tmp_path, exams=4, seed=9, workers=1,
                            defect_rates=DefectRates(no_window=0.5, rle=0.0, jpeg2000=0.0))
    rows = _ground_truth(tmp_path)
    assert summary.files == len(rows) == sum(summary.per_modality.values())
    assert summary.per_defect.get("no_window", 0) == sum(r["defect"] == "no_window" for r in rows) > 0
    assert "4 exams" in str(summary) and "files" in str(summary)


def test_instance_series_and_study_uids_are_unique(rows, headers):
    # pydicom joins entropy sources without a separator; ("1", "11") and ("11", "1") once collided.
    sop_uids = [r["sop_instance_uid"] for r in rows if r["sop_instance_uid"] and r["defect"] != "truncated"]
    assert len(sop_uids) == len(set(sop_uids))
    series_by_exam: dict[str, set[str]] = {}
    for ds in headers.values():
        series_by_exam.setdefault(str(ds.SeriesInstanceUID), set()).add(str(ds.StudyInstanceUID))
    assert all(len(studies) == 1 for studies in series_by_exam.values())
