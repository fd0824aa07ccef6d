"""The 8-bit image export: window maths, policies, decoders and real-file edge cases (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from radnet_spark.dicom.header import read_dataset
from radnet_spark.dicom.pixels import (
    PixelPolicy,
    apply_rescale,
    apply_window,
    estimate_window,
    export_8bit,
    first_valid_window,
    resize_and_pad,
    shape_policy_reason,
    valid_windows,
    value_policy_reason,
)
from radnet_spark.dicom.reasons import RecordRejected, RejectReason

POLICY = PixelPolicy()
# Keeps every image whatever its content: for tests about decoding and colour, not the value policy.
PERMISSIVE = PixelPolicy(min_max_value=0, min_distinct_ratio=0.0)


def read(name: str, stop_before_pixels: bool = False) -> Dataset:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} is not installed"
    return read_dataset(path, stop_before_pixels=stop_before_pixels, max_file_bytes=10**9)


def synthetic(pixels: np.ndarray, **attributes: object) -> Dataset:
    """A native 16-bit MONOCHROME2 dataset holding ``pixels`` (2-D, or 3-D for multi-frame)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def gradient(rows: int = 64, columns: int = 64) -> np.ndarray:
    return (np.arange(rows * columns, dtype=np.uint32).reshape(rows, columns) % 1000).astype(np.uint16)


def reason_of(ds: Dataset, policy: PixelPolicy = POLICY) -> RejectReason:
    with pytest.raises(RecordRejected) as caught:
        export_8bit(ds, policy)
    return caught.value.reason


# --- pure functions -----------------------------------------------------------------------------


def test_window_maps_lower_bound_to_0_upper_bound_to_255_and_middle_linearly() -> None:
    # c = 100, w = 200: L = 0, U = 200; (x − L) / w · 255.
    values = np.array([-50.0, 0.0, 50.0, 100.0, 150.0, 200.0, 250.0])
    assert apply_window(values, 100.0, 200.0).tolist() == [0, 0, 64, 128, 191, 255, 255]
    assert apply_window(values, 100.0, 200.0).dtype == np.uint8


def test_window_with_negative_centre_for_ct_lung() -> None:
    # c = −600, w = 1500: L = −1350, U = 150; x = −600 → 750 / 1500 · 255 = 127.5 → 128.
    assert apply_window(np.array([-1400.0, -1350.0, -600.0, 150.0]), -600.0, 1500.0).tolist() == [
        0,
        0,
        128,
        255,
    ]


def test_rescale_applies_slope_and_intercept() -> None:
    stored = np.array([0, 1000, 2000], dtype=np.uint16)
    assert apply_rescale(stored, 1.0, -1024.0).tolist() == [-1024.0, -24.0, 976.0]
    assert apply_rescale(stored, 0.5, 10.0).tolist() == [10.0, 510.0, 1010.0]
    assert apply_rescale(stored).tolist() == [0.0, 1000.0, 2000.0]


def test_first_valid_window_skips_invalid_pairs() -> None:
    centers = MultiValue(str, ["abc", "40", "300"])
    widths = MultiValue(str, ["400", "0", "1500"])
    assert first_valid_window(centers, widths) == (300.0, 1500.0)
    assert first_valid_window("40", "400") == (40.0, 400.0)
    assert first_valid_window(None, "400") is None
    assert first_valid_window("40", "-5") is None
    assert valid_windows([40, 50], 400) == [(40.0, 400.0), (50.0, 400.0)]


def test_estimated_window_spans_the_central_percentiles() -> None:
    values = np.arange(1001, dtype=np.float64)
    center, width = estimate_window(values)
    assert center == pytest.approx(500.0)
    assert width == pytest.approx(990.0)


def test_estimated_window_of_a_constant_image_exports_black() -> None:
    values = np.full((8, 8), 300.0)
    assert apply_window(values, *estimate_window(values)).max() == 0


def test_value_policy_rejects_dark_and_nearly_constant_images() -> None:
    dark = np.arange(64, dtype=np.uint8).reshape(8, 8) // 2  # maximum 31 < 64
    assert value_policy_reason(dark, 64, 0.1) is RejectReason.VALUE_POLICY_MAX
    few = np.zeros((8, 8), dtype=np.uint8)
    few[0, :5] = [50, 100, 150, 200, 255]  # 6 distinct of 255 possible
    assert value_policy_reason(few, 64, 0.1) is RejectReason.VALUE_POLICY_DISTINCT
    rich = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert value_policy_reason(rich, 64, 0.1) is None


def test_value_policy_threshold_uses_bits_of_the_maximum() -> None:
    # max 100 → bits 7 → 127 possible values; 13 distinct: 13/127 ≈ 0.102 > 0.1 passes, 12 fails.
    passing = np.array([0, *range(89, 101)], dtype=np.uint8)
    assert len(np.unique(passing)) == 13
    assert value_policy_reason(passing, 64, 0.1) is None
    assert value_policy_reason(passing[1:], 64, 0.1) is RejectReason.VALUE_POLICY_DISTINCT


def test_shape_policy_rejects_line_like_images() -> None:
    assert shape_policy_reason(1, 512, 0.1) is RejectReason.SHAPE_POLICY
    assert shape_policy_reason(52, 512, 0.1) is None  # 0.1016
    assert shape_policy_reason(51, 512, 0.1) is RejectReason.SHAPE_POLICY  # 0.0996


def test_resize_keeps_aspect_and_pads_to_a_centred_square() -> None:
    wide = np.full((50, 100), 200, dtype=np.uint8)
    out = resize_and_pad(wide, 128)
    assert out.shape == (128, 128) and out.dtype == np.uint8
    assert (out[32:96, :] == 200).all()
    assert (out[:32, :] == 0).all() and (out[96:, :] == 0).all()


# --- export on synthetic datasets ---------------------------------------------------------------


def test_export_uses_dicom_window_after_rescale() -> None:
    # Rescaled: row 0 = [−1024, 0, 100], row 1 = [50, 150, 200]; window c = 100, w = 200 (L = 0, U = 200).
    stored = np.array([[0, 1024, 1124], [1074, 1174, 1224]] * 8, dtype=np.uint16)
    ds = synthetic(stored, RescaleSlope="1", RescaleIntercept="-1024", WindowCenter="100", WindowWidth="200")
    exported = export_8bit(ds, PixelPolicy(image_size=16, min_max_value=0, min_distinct_ratio=0.0))
    assert (exported.window_center, exported.window_width, exported.window_source) == (100.0, 200.0, "dicom")
    # 16 × 3 needs no resize for size 16; its 3 columns sit centred at 6..8, zero padding around.
    assert exported.image[0, 6:9].tolist() == [0, 0, 128]
    assert exported.image[1, 6:9].tolist() == [64, 191, 255]
    assert exported.image[:, :6].max() == 0 and exported.image[:, 9:].max() == 0
    assert (exported.original_rows, exported.original_columns) == (16, 3)


def test_monochrome1_is_inverted() -> None:
    pixels = gradient()
    same_size = PixelPolicy(image_size=64)  # no resize, so the comparison is exact
    plain = export_8bit(synthetic(pixels, WindowCenter="500", WindowWidth="1000"), same_size)
    inverted_ds = synthetic(
        pixels, WindowCenter="500", WindowWidth="1000", PhotometricInterpretation="MONOCHROME1"
    )
    inverted = export_8bit(inverted_ds, same_size)
    assert np.array_equal(inverted.image.astype(int), 255 - plain.image.astype(int))


def test_missing_window_is_estimated_or_rejected_by_policy() -> None:
    ds = synthetic(gradient())
    assert export_8bit(ds, POLICY).window_source == "estimated"
    assert reason_of(ds, PixelPolicy(estimate_missing_window=False)) is RejectReason.NO_WINDOW


def test_blank_image_is_rejected_by_value_policy() -> None:
    air = synthetic(
        np.zeros((64, 64), dtype=np.uint16), RescaleIntercept="-1024", WindowCenter="40", WindowWidth="400"
    )
    assert reason_of(air) is RejectReason.VALUE_POLICY_MAX
    assert reason_of(synthetic(np.full((64, 64), 7, dtype=np.uint16))) is RejectReason.VALUE_POLICY_MAX


def test_one_pixel_high_image_is_rejected_by_shape_policy() -> None:
    assert reason_of(synthetic(gradient(1, 512))) is RejectReason.SHAPE_POLICY


def test_first_frame_with_content_is_exported() -> None:
    frames = np.stack([np.zeros((64, 64), np.uint16), gradient(), gradient()])
    exported = export_8bit(synthetic(frames, WindowCenter="500", WindowWidth="1000"), POLICY)
    assert (exported.frames, exported.frame_index) == (3, 1)


def test_multiframe_xa_uses_its_stricter_distinct_ratio() -> None:
    # 40 distinct values of 255: ratio 0.157 passes 0.1 but not the 0.2 of multi-frame XA.
    frame = (np.arange(64 * 64).reshape(64, 64) % 40 * 25).astype(np.uint16)
    frames = np.stack([frame, frame])
    kwargs = {"WindowCenter": "500", "WindowWidth": "1000"}
    assert export_8bit(synthetic(frames, Modality="CT", **kwargs), POLICY).frame_index == 0
    assert reason_of(synthetic(frames, Modality="XA", **kwargs)) is RejectReason.VALUE_POLICY_DISTINCT


def test_pixel_data_far_smaller_than_declared_is_a_size_mismatch() -> None:
    ds = synthetic(gradient())
    ds.Rows = 512
    ds.Columns = 512
    assert reason_of(ds) is RejectReason.PIXEL_DATA_SIZE_MISMATCH


def test_huge_multiframe_is_rejected_before_decoding() -> None:
    ds = synthetic(gradient())
    ds.NumberOfFrames = 100_000  # 64×64×2×100k bytes = 819 MB declared
    assert reason_of(ds) is RejectReason.PIXEL_DATA_TOO_LARGE


def test_modality_lut_sequence_is_rejected() -> None:
    ds = synthetic(gradient())
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.ModalityLUTType = "HU"
    item.LUTData = list(range(256))
    ds.ModalityLUTSequence = Sequence([item])
    assert reason_of(ds) is RejectReason.MODALITY_LUT


def test_unsupported_photometric_is_rejected() -> None:
    assert (
        reason_of(synthetic(gradient(), PhotometricInterpretation="HSV"))
        is RejectReason.UNSUPPORTED_PHOTOMETRIC
    )


def test_missing_rows_is_an_invalid_value() -> None:
    ds = synthetic(gradient())
    del ds.Rows
    assert reason_of(ds) is RejectReason.INVALID_VALUE


# --- export on real files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",  # native, explicit VR
        "SC_rgb_jpeg.dcm",  # JPEG baseline, RGB
        "JPEG-LL.dcm",  # JPEG lossless (GDCM)
        "emri_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless, multi-frame (GDCM)
        "JPEG2000.dcm",  # JPEG 2000 (OpenJPEG)
        "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
        "MR_small_RLE.dcm",  # RLE lossless
        "image_dfl.dcm",  # deflated explicit VR
        "ExplVR_BigEnd.dcm",  # explicit VR big endian, RGB
    ],
)
def test_transfer_syntaxes_of_the_default_install_decode(name: str) -> None:
    exported = export_8bit(read(name), PERMISSIVE)
    assert exported.image.shape == (128, 128)
    assert exported.image.dtype == np.uint8
    assert exported.image.max() > 0
    # A header-only read defers the pixel data; decoding it later gives the same image.
    deferred = export_8bit(read(name, stop_before_pixels=True), PERMISSIVE)
    assert np.array_equal(deferred.image, exported.image)


def test_jpeg_ls_near_lossless_decodes() -> None:
    exported = export_8bit(read("JPEGLSNearLossless_16.dcm"), PERMISSIVE)
    assert exported.original_rows == 50 and exported.original_columns == 10


def test_12_bit_jpeg_extended_without_gpl_plugin_is_a_clear_reject() -> None:
    with pytest.raises(RecordRejected) as caught:
        export_8bit(read("JPEG-lossy.dcm"), POLICY)
    assert caught.value.reason is RejectReason.UNDECODABLE_COMPRESSION
    assert "JPEG Extended" in caught.value.detail


def test_real_monochrome1_radiograph_is_inverted() -> None:
    ds = read("RG1_UNCI.dcm")
    as_stored = export_8bit(ds, POLICY)
    ds.PhotometricInterpretation = "MONOCHROME2"
    not_inverted = export_8bit(ds, POLICY)
    assert as_stored.photometric == "MONOCHROME1"
    content = not_inverted.image > 0  # outside the zero padding
    total = as_stored.image[content].astype(int) + not_inverted.image[content].astype(int)
    assert np.abs(total - 255).max() <= 1  # bilinear resize rounds each image separately


def test_real_file_window_comes_from_dicom() -> None:
    exported = export_8bit(read("MR_small.dcm"), POLICY)
    assert (exported.window_center, exported.window_width, exported.window_source) == (600.0, 1600.0, "dicom")


def test_real_multiframe_reports_frames_and_index() -> None:
    exported = export_8bit(read("emri_small.dcm"), POLICY)
    assert (exported.frames, exported.frame_index) == (10, 0)


def test_first_of_several_dicom_windows_is_used() -> None:
    exported = export_8bit(read("MR-SIEMENS-DICOM-WithOverlays.dcm"), POLICY)
    assert (exported.window_center, exported.window_width) == (450.0, 790.0)


def test_rgb_is_converted_to_luminance_without_window() -> None:
    # SC_rgb.dcm holds colour bars: pure red, green and blue rows among others.
    exported = export_8bit(
        read("SC_rgb.dcm"), PixelPolicy(image_size=100, min_max_value=0, min_distinct_ratio=0.0)
    )
    column = exported.image[:, 50]
    assert column[0] == round(0.299 * 255)  # red
    assert column[20] == round(0.587 * 255)  # green
    assert column[40] == round(0.114 * 255)  # blue
    assert (exported.window_center, exported.window_source) == (None, "none")


def test_ybr_full_is_converted_to_rgb_before_luminance() -> None:
    ybr = export_8bit(
        read("SC_ybr_full_uncompressed.dcm"),
        PixelPolicy(image_size=100, min_max_value=0, min_distinct_ratio=0.0),
    )
    rgb = export_8bit(
        read("SC_rgb.dcm"), PixelPolicy(image_size=100, min_max_value=0, min_distinct_ratio=0.0)
    )
    assert np.abs(ybr.image.astype(int) - rgb.image.astype(int)).max() <= 2  # YBR rounding


def test_colour_bars_fail_the_value_policy() -> None:
    assert reason_of(read("SC_rgb.dcm")) is RejectReason.VALUE_POLICY_DISTINCT


def test_real_modality_lut_file_is_rejected() -> None:
    assert reason_of(read("mlut_18.dcm")) is RejectReason.MODALITY_LUT


@pytest.mark.parametrize("name", ["rtplan.dcm", "rtstruct.dcm"])
def test_non_image_objects_have_no_pixel_data(name: str) -> None:
    assert reason_of(read(name)) is RejectReason.NO_PIXEL_DATA


# --- bounded memory: one frame read from the file, blocks of rows windowed ------------------------


def _save(ds: Dataset, path, syntax=ExplicitVRLittleEndian) -> str:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.preamble = b"\0" * 128
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _pixel_value_is_still_deferred(ds: Dataset) -> bool:
    from pydicom.tag import Tag

    return ds.get_item(Tag("PixelData"), keep_deferred=True).value is None


def _noise_frames(count: int, blank: int, side: int = 128) -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 1000, (count, side, side)).astype(np.uint16)
    frames[:blank] = 0
    return frames


def test_deferred_multiframe_is_decoded_one_frame_at_a_time_from_the_file(tmp_path) -> None:
    frames = _noise_frames(8, blank=3)  # 256 KiB of pixels: deferred by the header read
    path = _save(synthetic(frames, WindowCenter="500", WindowWidth="1000"), tmp_path / "mf.dcm")
    loaded = export_8bit(read_dataset(path, stop_before_pixels=False, max_file_bytes=10**9), POLICY)
    header = read_dataset(path, stop_before_pixels=True, max_file_bytes=10**9)
    assert _pixel_value_is_still_deferred(header)
    exported = export_8bit(header, POLICY)
    assert (exported.frames, exported.frame_index) == (8, 3)
    assert np.array_equal(exported.image, loaded.image)
    # The pixel value was never loaded whole: frames were read from the file on their own.
    assert _pixel_value_is_still_deferred(header)


def test_deferred_big_endian_multiframe_matches_little_endian(tmp_path) -> None:
    from pydicom.uid import ExplicitVRBigEndian

    frames = _noise_frames(4, blank=1)
    little = synthetic(frames, WindowCenter="500", WindowWidth="1000")
    big = synthetic(frames, WindowCenter="500", WindowWidth="1000")
    big.PixelData = frames.astype(">u2").tobytes()
    little_path = _save(little, tmp_path / "le.dcm")
    big_path = _save(big, tmp_path / "be.dcm", ExplicitVRBigEndian)
    header = read_dataset(big_path, stop_before_pixels=True, max_file_bytes=10**9)
    exported = export_8bit(header, POLICY)
    expected = export_8bit(read_dataset(little_path, stop_before_pixels=True, max_file_bytes=10**9), POLICY)
    assert exported.frame_index == 1
    assert np.array_equal(exported.image, expected.image)
    assert _pixel_value_is_still_deferred(header)


def test_deferred_encapsulated_multiframe_decodes_only_the_frames_it_needs(tmp_path) -> None:
    from pydicom.uid import RLELossless

    frames = _noise_frames(6, blank=2)
    ds = synthetic(frames, WindowCenter="500", WindowWidth="1000")
    ds.compress(RLELossless, generate_instance_uid=False)
    path = _save(ds, tmp_path / "rle.dcm", RLELossless)
    header = read_dataset(path, stop_before_pixels=True, max_file_bytes=10**9)
    assert _pixel_value_is_still_deferred(header)
    exported = export_8bit(header, POLICY)
    loaded = export_8bit(read_dataset(path, stop_before_pixels=False, max_file_bytes=10**9), POLICY)
    assert exported.frame_index == 2
    assert np.array_equal(exported.image, loaded.image)
    assert _pixel_value_is_still_deferred(header)  # fragments read from the file, never all at once


def test_declared_size_is_rejected_before_any_pixel_byte_is_read(tmp_path) -> None:
    ds = synthetic(_noise_frames(4, blank=0))
    ds.NumberOfFrames = 50_000  # 128×128×2×50k = 1.6 GB declared, 128 KiB stored
    path = _save(ds, tmp_path / "declared.dcm")
    header = read_dataset(path, stop_before_pixels=True, max_file_bytes=10**9)
    with pytest.raises(RecordRejected) as caught:
        export_8bit(header, POLICY)
    assert caught.value.reason is RejectReason.PIXEL_DATA_TOO_LARGE
    assert _pixel_value_is_still_deferred(header)


def test_pixel_data_far_larger_than_declared_is_a_size_mismatch_without_loading_it(tmp_path) -> None:
    ds = synthetic(_noise_frames(8, blank=0))
    del ds.NumberOfFrames  # one 128×128 frame declared, eight stored
    path = _save(ds, tmp_path / "larger.dcm")
    header = read_dataset(path, stop_before_pixels=True, max_file_bytes=10**9)
    with pytest.raises(RecordRejected) as caught:
        export_8bit(header, POLICY)
    assert caught.value.reason is RejectReason.PIXEL_DATA_SIZE_MISMATCH
    assert _pixel_value_is_still_deferred(header)


def test_windowing_in_blocks_of_rows_equals_the_whole_frame(monkeypatch) -> None:
    import radnet_spark.dicom.pixels as pixels

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 4096, (97, 61)).astype(np.uint16)
    expected = apply_window(apply_rescale(frame, 1.5, -1024.0), 300.0, 1500.0)
    monkeypatch.setattr(pixels, "WINDOW_BLOCK_PIXELS", 200)  # 3 rows per block, a partial last block
    assert np.array_equal(pixels._rescale_and_window(frame, (1.5, -1024.0), 300.0, 1500.0), expected)


@pytest.mark.parametrize(("implicit", "little"), [(True, True), (False, False)])
def test_deferred_multiframe_of_a_raw_dataset_without_preamble_is_read_from_the_file(
    tmp_path, implicit: bool, little: bool
) -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    frames = _noise_frames(4, blank=1)
    ds = synthetic(frames, WindowCenter="500", WindowWidth="1000")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    del ds.file_meta
    ds.PixelData = frames.astype("<u2" if little else ">u2").tobytes()
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_dataset(buffer, ds)
    path = tmp_path / "raw"
    path.write_bytes(buffer.getvalue())
    header = read_dataset(str(path), stop_before_pixels=True, max_file_bytes=10**9)
    exported = export_8bit(header, POLICY)
    loaded = export_8bit(read_dataset(str(path), stop_before_pixels=False, max_file_bytes=10**9), POLICY)
    assert exported.frame_index == 1
    assert np.array_equal(exported.image, loaded.image)
    assert _pixel_value_is_still_deferred(header)


# --- the lookup-table path gives the float formula's bytes ----------------------------------------


def _formula(stored: np.ndarray, slope: float, intercept: float, center: float, width: float,
             invert: bool) -> np.ndarray:
    """The window written out in float64, independent of the module: the reference."""
    modality = stored.astype(np.float64) * slope + intercept
    scaled = (modality - (center - width / 2.0)) / width * 255.0
    image = np.floor(np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)
    return 255 - image if invert else image


def _corrected(raw: np.ndarray, unused_bits: int) -> np.ndarray:
    """What pydicom's decoder returns for raw native values: unused high bits cleared or sign-extended."""
    values = raw.astype(raw.dtype.newbyteorder("="))
    return (values << unused_bits) >> unused_bits if unused_bits else values


def _every_value(dtype: str) -> np.ndarray:
    """Every bit pattern of a 1- or 2-byte dtype, as a (rows, 256) frame."""
    kind = np.dtype(dtype)
    patterns = np.arange(1 << (8 * kind.itemsize), dtype=f"u{kind.itemsize}")
    return patterns.view(kind.newbyteorder("=")).astype(kind).reshape(-1, 256)


@pytest.mark.parametrize("dtype", ["|u1", "|i1", "<u2", "<i2", ">u2", ">i2"])
@pytest.mark.parametrize("unused_bits", [0, 4])
@pytest.mark.parametrize(
    ("slope", "intercept", "center", "width"),
    [
        (1.0, 0.0, 40.0, 400.0),
        (1.0, -1024.0, -600.0, 1500.0),  # CT lung
        (0.5, 3.25, 127.5, 255.0),
        (-2.0, 100.0, 0.0, 1.0),  # negative slope, window one unit wide
        (1.0, 0.0, 0.5, 1e-3),  # a step between two stored values
        (3.7, -11.1, 1e6, 2.0),  # everything below the window
    ],
)
@pytest.mark.parametrize("invert", [False, True])
def test_lookup_table_equals_the_float_formula_for_every_stored_value(
    dtype: str, unused_bits: int, slope: float, intercept: float, center: float, width: float, invert: bool
) -> None:
    import radnet_spark.dicom.pixels as pixels

    frame = _every_value(dtype)
    expected = _formula(_corrected(frame, unused_bits), slope, intercept, center, width, invert)
    image, *_ = pixels._window_frame(frame, (slope, intercept), [(center, width)], True,
                                     invert=invert, unused_bits=unused_bits)
    assert image.dtype == np.uint8
    assert np.array_equal(image, expected)


def test_window_edges_and_half_way_values_match_the_formula() -> None:
    import radnet_spark.dicom.pixels as pixels

    # c = 100, w = 200: L = 0 -> 0, U = 200 -> 255, x = 100 -> 127.5 rounds up to 128.
    frame = np.array([[0, 1, 99, 100, 101, 199, 200, 201]], dtype=np.uint16)
    image, *_ = pixels._window_frame(frame, (1.0, 0.0), [(100.0, 200.0)], True)
    assert image.tolist() == [[0, 1, 126, 128, 129, 254, 255, 255]]
    assert np.array_equal(image, _formula(frame, 1.0, 0.0, 100.0, 200.0, False))


@pytest.mark.parametrize("dtype", ["|u1", "<u2", "<i2", ">i2"])
@pytest.mark.parametrize("unused_bits", [0, 3])
@pytest.mark.parametrize(("slope", "intercept"), [(1.0, 0.0), (1.0, -1024.0), (0.37, 12.5), (-1.5, 7.0)])
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (3, 5), (97, 61), (256, 256)])
def test_estimated_window_from_the_histogram_equals_numpy_percentiles(
    dtype: str, unused_bits: int, slope: float, intercept: float, shape: tuple[int, int]
) -> None:
    import radnet_spark.dicom.pixels as pixels

    kind = np.dtype(dtype)
    rng = np.random.default_rng(shape[0] * 1000 + shape[1] + unused_bits)
    info = np.iinfo(kind)
    frame = rng.integers(info.min, info.max, shape, endpoint=True).astype(kind)
    frame[: shape[0] // 2] = frame.flat[0]  # ties, as in real images
    reference = pixels.estimate_window(_corrected(frame, unused_bits).astype(np.float64) * slope + intercept)
    image, center, width, source = pixels._window_frame(frame, (slope, intercept), [], True,
                                                        unused_bits=unused_bits)
    assert source == "estimated"
    assert (center, width) == reference  # bit for bit, not approximately
    assert np.array_equal(image, _formula(_corrected(frame, unused_bits), slope, intercept, *reference, False))


def test_estimated_window_of_a_constant_frame_matches_the_reference() -> None:
    import radnet_spark.dicom.pixels as pixels

    frame = np.full((16, 16), 300, dtype=np.uint16)
    _, center, width, _ = pixels._window_frame(frame, (1.0, -1024.0), [], True)
    assert (center, width) == pixels.estimate_window(frame.astype(np.float64) - 1024.0) == (-723.5, 1.0)


def test_frames_without_a_lookup_table_use_the_float_formula() -> None:
    import radnet_spark.dicom.pixels as pixels

    for frame in (np.arange(64, dtype=np.int32).reshape(8, 8) * 1000, np.linspace(-1, 1, 64).reshape(8, 8)):
        image, *_ = pixels._window_frame(frame, (2.0, 5.0), [(10.0, 50.0)], True, invert=True)
        assert np.array_equal(image, _formula(frame, 2.0, 5.0, 10.0, 50.0, True))


@pytest.mark.parametrize(("bits_stored", "representation", "photometric"), [
    (12, 0, "MONOCHROME2"), (12, 1, "MONOCHROME2"), (16, 1, "MONOCHROME1"), (10, 1, "MONOCHROME1"),
])
@pytest.mark.parametrize("deferred", [True, False])
def test_native_frames_read_directly_equal_pydicom_decoding_and_the_formula(
    tmp_path, bits_stored: int, representation: int, photometric: str, deferred: bool
) -> None:
    """Garbage in the unused high bits: pydicom's decoder corrects them, and so must the direct read."""
    rng = np.random.default_rng(bits_stored + representation)
    raw = rng.integers(0, 1 << 16, (3, 40, 48)).astype(np.uint16)
    ds = synthetic(raw, BitsStored=bits_stored, HighBit=bits_stored - 1, PixelRepresentation=representation,
                   PhotometricInterpretation=photometric, RescaleSlope="1.5", RescaleIntercept="-100",
                   WindowCenter="50", WindowWidth="900")
    path = _save(ds, tmp_path / "garbage_bits.dcm")
    header = read_dataset(path, stop_before_pixels=deferred, max_file_bytes=10**9)
    exported = export_8bit(header, PixelPolicy(image_size=48))
    decoded = read_dataset(path, stop_before_pixels=False, max_file_bytes=10**9).pixel_array[exported.frame_index]
    expected = _formula(decoded, 1.5, -100.0, 50.0, 900.0, photometric == "MONOCHROME1")
    assert np.array_equal(exported.image[4:44], expected)  # 40 × 48 sits centred in 48 × 48, no resize
    assert exported.image[:4].max() == 0 and exported.image[44:].max() == 0


def test_compressed_frames_go_through_the_lookup_table_with_the_formula_s_bytes(tmp_path) -> None:
    from pydicom.uid import RLELossless

    rng = np.random.default_rng(5)
    stored = rng.integers(0, 4096, (64, 64)).astype(np.uint16)
    ds = synthetic(stored, BitsStored=12, HighBit=11, WindowCenter="2000", WindowWidth="3000")
    ds.compress(RLELossless, generate_instance_uid=False)
    path = _save(ds, tmp_path / "rle12.dcm", RLELossless)
    exported = export_8bit(read_dataset(path, stop_before_pixels=True, max_file_bytes=10**9),
                           PixelPolicy(image_size=64))
    assert np.array_equal(exported.image, _formula(stored, 1.0, 0.0, 2000.0, 3000.0, False))


def test_value_policy_from_the_histogram_equals_the_array_version() -> None:
    import radnet_spark.dicom.pixels as pixels

    rng = np.random.default_rng(11)
    for maximum in (0, 1, 63, 64, 100, 255):
        for distinct in (1, 5, 13, 40):
            image = rng.integers(0, maximum + 1, (32, 32)).astype(np.uint8) % max(1, distinct)
            counts = np.bincount(image.ravel(), minlength=256).tolist()
            for ratio in (0.0, 0.1, 0.2):
                assert pixels._value_policy_from_histogram(counts, 64, ratio) == value_policy_reason(image, 64, ratio)
