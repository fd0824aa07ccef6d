"""Pixel data to the 8-bit square image the image view uses (RadiologyNET export, see DESIGN).

The export, step by step: size checks before decoding; decoding with pydicom's pixel plugins (one
frame at a time); RescaleSlope/RescaleIntercept; windowing with the first valid
WindowCenter/WindowWidth pair, ``y = (x − L) / w · 255`` clipped to [0, 255] with
``L = c − w/2``; MONOCHROME1 inversion; the value policy per frame (the first frame that passes is
the one exported); the shape policy; bilinear resize of the longer side to ``image_size`` and zero
padding to a centred square.

Choices beyond the paper: a dataset without a usable window gets one estimated from its own pixel
distribution (0.5th to 99.5th percentile; ``estimate_missing_window=False`` rejects it like the
paper). Colour images (RGB, YBR_*, PALETTE COLOR) have no window: they are converted to RGB, then to
luminance (ITU-R BT.601 weights), and their stored range is scaled to 8 bits; their
``window_source`` is ``"none"``.

Speed: integer frames of at most 16 bits never go through floating point per pixel. Every value
such a frame can hold (2^8 or 2^16 bit patterns, unused high bits corrected as pydicom's decoder
does) is rescaled and windowed once with the same float64 formula, MONOCHROME1 inversion included,
into a 256- or 65,536-entry lookup table cached per (dtype, unused bits, rescale, window, inversion);
the frame is then one ``np.take`` through it, byte for byte what the formula gives on the frame.
An estimated window comes from the frame's histogram over the same table domain (the percentiles
NumPy's linear method would compute on the rescaled values). Native frames are read from the file
(or the loaded value) straight into an array, without pydicom's decoder; the value policy reads
the 8-bit histogram that the resize's PIL image computes anyway.

Memory: the declared size (Rows × Columns × NumberOfFrames × SamplesPerPixel × bytes per sample)
is checked against ``max_pixel_bytes`` before any pixel byte is read. When the header read deferred
the pixel data (``read_dataset(..., stop_before_pixels=True)``), the pixel value is never loaded as a
whole: each frame is read and decoded from the file on its own (native data by offset, encapsulated
data fragment by fragment), and frames after the exported one are never read. Rescale and window
run over blocks of rows (:data:`WINDOW_BLOCK_PIXELS`), so a frame costs its stored bytes plus one byte
per pixel, not several float64 copies; only a frame that needs an estimated window holds one float64
copy (for its percentiles).

Every function except :func:`export_8bit` is pure and works on NumPy arrays.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import UID

from radnet_spark.dicom.header import is_image_instance, quiet_pydicom
from radnet_spark.dicom.reasons import RecordRejected, RejectReason

MONOCHROME = frozenset({"MONOCHROME1", "MONOCHROME2"})
COLOUR = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "YBR_PARTIAL_422"}
)
PALETTE = "PALETTE COLOR"
_NATIVE_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2",  # Implicit VR Little Endian
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    }
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UNDEFINED_LENGTH = 0xFFFFFFFF
WINDOW_BLOCK_PIXELS = 1 << 20
"""Rescale and window work on blocks of whole rows of about this many pixels (bounded float64 temporaries)."""
# ITU-R BT.601 luma weights, the usual RGB -> grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class PixelPolicy:
    """Settings of the 8-bit export; defaults are the paper's values.

    Attributes:
        image_size: Side of the square output image.
        min_max_value: Value policy: images whose 8-bit maximum is below this are dropped.
        min_distinct_ratio: Value policy: distinct values / (2^bits − 1) must exceed this.
        min_distinct_ratio_xa_multiframe: The same for multi-frame XA.
        min_aspect_ratio: Shape policy: min(h, w) / max(h, w) must not be below this.
        estimate_missing_window: Estimate a window when the dataset has no valid one (else reject).
        max_pixel_bytes: Rows × Columns × frames × samples × bytes above this are rejected undecoded.
    """

    image_size: int = 128
    min_max_value: int = 64
    min_distinct_ratio: float = 0.1
    min_distinct_ratio_xa_multiframe: float = 0.2
    min_aspect_ratio: float = 0.1
    estimate_missing_window: bool = True
    max_pixel_bytes: int = 256 * 1024 * 1024

    @classmethod
    def from_config(cls, ingest: Any) -> PixelPolicy:
        """Build the policy from an :class:`radnet_spark.config.IngestConfig` (same field names)."""
        return cls(
            image_size=ingest.image_size,
            min_max_value=ingest.min_max_value,
            min_distinct_ratio=ingest.min_distinct_ratio,
            min_distinct_ratio_xa_multiframe=ingest.min_distinct_ratio_xa_multiframe,
            min_aspect_ratio=ingest.min_aspect_ratio,
            estimate_missing_window=ingest.estimate_missing_window,
            max_pixel_bytes=ingest.max_pixel_bytes,
        )


@dataclass
class ExportedImage:
    """One exported image and how it was made.

    Attributes:
        image: ``uint8`` array of shape (image_size, image_size).
        original_rows: Rows of the source frame.
        original_columns: Columns of the source frame.
        frames: Number of frames in the dataset.
        frame_index: Index of the exported frame (the first passing the value policy).
        window_center: Window centre used, None for colour images.
        window_width: Window width used, None for colour images.
        window_source: ``"dicom"``, ``"estimated"`` or ``"none"`` (colour images).
        photometric: PhotometricInterpretation of the dataset.
    """

    image: np.ndarray
    original_rows: int
    original_columns: int
    frames: int
    frame_index: int
    window_center: float | None
    window_width: float | None
    window_source: str
    photometric: str


# --- pure steps ---------------------------------------------------------------------------------


def apply_rescale(values: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Apply the linear modality transform ``slope · x + intercept``.

    Args:
        values: Stored pixel values.
        slope: RescaleSlope (1 when absent).
        intercept: RescaleIntercept (0 when absent).

    Returns:
        float64 array of modality values.
    """
    out = values.astype(np.float64)
    if slope != 1.0:
        out *= slope
    if intercept != 0.0:
        out += intercept
    return out


def _as_float_list(value: Any) -> list[float | None]:
    """A DICOM value (single, multi-valued, string, None) as a list of floats, None where invalid."""
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    out: list[float | None] = []
    for item in items:
        try:
            number = float(item)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(number if math.isfinite(number) else None)
    return out


def valid_windows(centers: Any, widths: Any) -> list[tuple[float, float]]:
    """All valid (centre, width) pairs in order: both numeric and finite, width > 0.

    Args:
        centers: WindowCenter value(s) as stored (number, string, list, MultiValue or None).
        widths: WindowWidth value(s) as stored.

    Returns:
        The valid pairs, paired by position; a single value pairs with every value of the other.
    """
    cs, ws = _as_float_list(centers), _as_float_list(widths)
    if not cs or not ws:
        return []
    count = max(len(cs), len(ws)) if 1 in (len(cs), len(ws)) else min(len(cs), len(ws))
    pairs = []
    for i in range(count):
        c = cs[0] if len(cs) == 1 else cs[i]
        w = ws[0] if len(ws) == 1 else ws[i]
        if c is not None and w is not None and w > 0:
            pairs.append((c, w))
    return pairs


def first_valid_window(centers: Any, widths: Any) -> tuple[float, float] | None:
    """The first valid (centre, width) pair, or None; see :func:`valid_windows`."""
    pairs = valid_windows(centers, widths)
    return pairs[0] if pairs else None


def estimate_window(
    values: np.ndarray, low: float = 0.5, high: float = 99.5, *, overwrite_input: bool = False
) -> tuple[float, float]:
    """Estimate a window from the value distribution: it spans the ``low``..``high`` percentiles.

    A constant image gets a window just above its value, so it exports as black (and the value
    policy then drops it as empty).

    Args:
        values: Modality values (after rescale).
        low: Lower percentile.
        high: Upper percentile.
        overwrite_input: Let the percentile computation reorder ``values`` instead of copying them.

    Returns:
        (centre, width) with width > 0.
    """
    lo, hi = np.percentile(values, [low, high], overwrite_input=overwrite_input)
    return _window_from_percentiles(float(lo), float(hi))


def apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Window values to 8 bits: 0 below ``L = c − w/2``, 255 above ``U = c + w/2``, linear between.

    Args:
        values: Modality values.
        center: Window centre c.
        width: Window width w (> 0).

    Returns:
        uint8 array, ``(x − L) / w · 255`` clipped to [0, 255] and rounded half up.
    """
    lower = center - width / 2.0
    scaled = (np.asarray(values, dtype=np.float64) - lower) / width * 255.0
    # Round half up (127.5 -> 128), not NumPy's half-to-even.
    return np.floor(np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)


def value_policy_reason(
    image: np.ndarray, min_max_value: int, min_distinct_ratio: float
) -> RejectReason | None:
    """The paper's value policy on an 8-bit image; None when the image has enough content.

    Args:
        image: uint8 image.
        min_max_value: Reject when the maximum is below this.
        min_distinct_ratio: Distinct values / (2^bits − 1), with bits = ⌊log2 max⌋ + 1, must exceed this.

    Returns:
        ``value_policy_max``, ``value_policy_distinct`` or None.
    """
    counts = np.bincount(image.ravel(), minlength=256) if image.size else np.zeros(256, dtype=np.intp)
    return _value_policy_from_histogram(counts, min_max_value, min_distinct_ratio)


def _value_policy_from_histogram(
    counts: Any, min_max_value: int, min_distinct_ratio: float
) -> RejectReason | None:
    """:func:`value_policy_reason` from the image's 256-bin histogram (a sequence of counts)."""
    present = np.flatnonzero(np.asarray(counts))
    maximum = int(present[-1]) if present.size else 0
    if maximum < min_max_value or maximum <= 0:
        return RejectReason.VALUE_POLICY_MAX
    bits = int(math.floor(math.log2(maximum))) + 1
    if present.size / (2**bits - 1) <= min_distinct_ratio:
        return RejectReason.VALUE_POLICY_DISTINCT
    return None


def shape_policy_reason(rows: int, columns: int, min_aspect_ratio: float) -> RejectReason | None:
    """The paper's shape policy: reject when min(h, w) / max(h, w) is below ``min_aspect_ratio``."""
    if rows <= 0 or columns <= 0 or min(rows, columns) / max(rows, columns) < min_aspect_ratio:
        return RejectReason.SHAPE_POLICY
    return None


def resize_and_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (bilinear, aspect kept) so the longer side is ``size``, then zero-pad to a centred square.

    Args:
        image: 2-D uint8 image.
        size: Side of the output square.

    Returns:
        uint8 array of shape (size, size).
    """
    from PIL import Image

    return _resize_and_pad_image(Image.fromarray(image), size)


def _resize_and_pad_image(picture: Any, size: int) -> np.ndarray:
    """:func:`resize_and_pad` of an 8-bit PIL image (mode ``L``)."""
    from PIL import Image

    columns, rows = picture.size
    scale = size / max(rows, columns)
    new_rows = min(size, max(1, round(rows * scale)))
    new_columns = min(size, max(1, round(columns * scale)))
    resized = np.asarray(picture.resize((new_columns, new_rows), Image.BILINEAR))
    out = np.zeros((size, size), dtype=np.uint8)
    top = (size - new_rows) // 2
    left = (size - new_columns) // 2
    out[top : top + new_rows, left : left + new_columns] = resized
    return out


def to_luminance(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) to luminance with BT.601 weights, as float64."""
    return rgb.astype(np.float64) @ _LUMA


# --- dataset-level helpers ------------------------------------------------------------------------


_TAGS = {
    keyword: Tag(keyword)
    for keyword in (
        "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "BitsStored",
        "PixelRepresentation", "PhotometricInterpretation", "RescaleSlope", "RescaleIntercept",
        "WindowCenter", "WindowWidth", "Modality", "ModalityLUTSequence", *_PIXEL_KEYWORDS,
    )
}


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` by tag (the keyword lookup costs more than the value here)."""
    element = ds.get(_TAGS[keyword])
    return default if element is None else element.value


def _required_int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = _get(ds, keyword, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (number == 0 and keyword != "PixelRepresentation"):
        raise RecordRejected(RejectReason.INVALID_VALUE, f"{keyword} is missing or not a positive integer.")
    return number


def _rescale_parameters(ds: Dataset) -> tuple[float, float]:
    slope_values = _as_float_list(_get(ds, "RescaleSlope"))
    intercept_values = _as_float_list(_get(ds, "RescaleIntercept"))
    slope = slope_values[0] if slope_values else 1.0
    intercept = intercept_values[0] if intercept_values else 0.0
    if slope is None or slope == 0.0 or intercept is None:
        raise RecordRejected(
            RejectReason.INVALID_VALUE, "RescaleSlope or RescaleIntercept is not a usable number."
        )
    return slope, intercept


def _expected_bytes(rows: int, columns: int, frames: int, samples: int, bits: int, photometric: str) -> int:
    pixels = rows * columns * frames * samples
    if bits == 1:
        return (pixels + 7) // 8
    if photometric == "YBR_FULL_422":  # natively stored with horizontally halved chroma
        pixels = rows * columns * frames * 2
    return pixels * (bits // 8)


def _rescale_and_window(
    frame: np.ndarray, rescale: tuple[float, float], center: float, width: float
) -> np.ndarray:
    """``apply_window(apply_rescale(frame, *rescale), center, width)``, computed over blocks of rows.

    Every step is element-wise, so the result is the same as on the whole frame, but the float64
    temporaries never exceed :data:`WINDOW_BLOCK_PIXELS` values.
    """
    out = np.empty(frame.shape, dtype=np.uint8)
    if frame.ndim == 0 or frame.shape[0] == 0:
        return apply_window(apply_rescale(frame, *rescale), center, width)
    row_pixels = max(1, frame.size // frame.shape[0])
    step = max(1, WINDOW_BLOCK_PIXELS // row_pixels)
    for start in range(0, frame.shape[0], step):
        block = apply_rescale(frame[start : start + step], *rescale)
        out[start : start + step] = apply_window(block, center, width)
    return out


_LUT_CACHE_SIZE = 64
"""Lookup tables kept per process (64 KiB each for 16-bit frames): a series shares one window."""
_PERCENTILES = (0.5, 99.5)
"""Percentiles that bound an estimated window (see :func:`estimate_window`)."""


def _lut_dtype(frame: np.ndarray) -> str | None:
    """The native-order dtype string of a frame the lookup table handles (8- or 16-bit integers), else None."""
    dtype = frame.dtype
    if dtype.kind in "ui" and dtype.itemsize in (1, 2):
        return dtype.newbyteorder("=").str
    return None


def _lut_index(frame: np.ndarray) -> np.ndarray:
    """A view of the frame's bit patterns as unsigned integers: the positions in its lookup table."""
    return frame.view(np.dtype(f"u{frame.dtype.itemsize}").newbyteorder(frame.dtype.byteorder))


@functools.lru_cache(maxsize=8)
def _lut_domain(dtype: str, unused_bits: int) -> np.ndarray:
    """The value of every bit pattern of ``dtype``, as pydicom's decoder returns it.

    Args:
        dtype: Native-order integer dtype of 1 or 2 bytes (``"|u1"``, ``"<i2"``, …).
        unused_bits: BitsAllocated − BitsStored when the high bits still need clearing (unsigned) or
            sign extension (signed), as pydicom's ``correct_unused_bits`` does; 0 when already done.

    Returns:
        Read-only array of 2^8 or 2^16 values; entry ``p`` is the value of bit pattern ``p``.
    """
    kind = np.dtype(dtype)
    values = np.arange(1 << (8 * kind.itemsize), dtype=f"u{kind.itemsize}").view(kind)
    if unused_bits:
        np.left_shift(values, unused_bits, out=values)
        np.right_shift(values, unused_bits, out=values)
    values.flags.writeable = False
    return values


@functools.lru_cache(maxsize=8)
def _lut_domain_order(dtype: str, unused_bits: int) -> np.ndarray:
    """Bit patterns of :func:`_lut_domain` sorted by their value (ascending)."""
    order = np.argsort(_lut_domain(dtype, unused_bits), kind="stable")
    order.flags.writeable = False
    return order


@functools.lru_cache(maxsize=16)
def _lut_modality(dtype: str, unused_bits: int, slope: float, intercept: float) -> np.ndarray:
    """:func:`apply_rescale` of every value of :func:`_lut_domain` (float64, read-only)."""
    values = apply_rescale(_lut_domain(dtype, unused_bits), slope, intercept)
    values.flags.writeable = False
    return values


@functools.lru_cache(maxsize=_LUT_CACHE_SIZE)
def _window_lut(
    dtype: str, unused_bits: int, slope: float, intercept: float, center: float, width: float, invert: bool
) -> np.ndarray:
    """The 8-bit output for every bit pattern: the reference formula applied once per possible value.

    ``apply_window(apply_rescale(x, slope, intercept), center, width)`` (inverted for MONOCHROME1)
    is element-wise, so looking a frame's values up in this table gives the same bytes as computing
    the formula on the frame.
    """
    lut = apply_window(_lut_modality(dtype, unused_bits, slope, intercept), center, width)
    if invert:
        np.subtract(255, lut, out=lut)
    lut.flags.writeable = False
    return lut


def _look_up(lut: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``lut[index]`` over blocks of rows (the gather's integer temporaries stay bounded)."""
    out = np.empty(index.shape, dtype=np.uint8)
    if index.ndim == 0 or index.shape[0] == 0:
        return lut[index].astype(np.uint8)
    step = max(1, WINDOW_BLOCK_PIXELS // max(1, index.size // index.shape[0]))
    for start in range(0, index.shape[0], step):
        # Every index is a bit pattern of the table's width, so "clip" never clips; it only spares
        # np.take the buffered copy that mode="raise" makes when ``out`` is given.
        np.take(lut, index[start : start + step], out=out[start : start + step], mode="clip")
    return out


def _numpy_linear_percentile(order_statistic: Any, count: int, percentile: float) -> float:
    """``np.percentile(values, percentile)`` (method "linear") from the values' order statistics.

    The same float64 operations as NumPy's implementation, so the result is bit for bit the same.

    Args:
        order_statistic: ``k -> k-th smallest value`` (0-based) of the ``count`` values.
        count: Number of values (> 0).
        percentile: In [0, 100].

    Returns:
        The percentile.
    """
    virtual = (count - 1) * (percentile / 100)
    if virtual >= count - 1:
        return float(order_statistic(count - 1))
    previous = math.floor(virtual)
    below, above = float(order_statistic(previous)), float(order_statistic(previous + 1))
    gamma = virtual - previous
    difference = above - below
    if gamma >= 0.5:
        return above - difference * (1 - gamma)
    return below + difference * gamma


def _estimate_window_from_index(
    index: np.ndarray, dtype: str, unused_bits: int, rescale: tuple[float, float]
) -> tuple[float, float]:
    """:func:`estimate_window` of the rescaled frame, from a histogram of its bit patterns.

    Rescaling is monotonic (increasing for a positive slope, decreasing for a negative one), so the
    k-th smallest rescaled value is the rescaled k-th smallest (or largest) stored value.
    """
    modality = _lut_modality(dtype, unused_bits, *rescale)
    order = _lut_domain_order(dtype, unused_bits)
    if rescale[0] < 0:
        order = order[::-1]
    counts = np.zeros(modality.size, dtype=np.int64)
    step = max(1, WINDOW_BLOCK_PIXELS // max(1, index.size // max(1, index.shape[0])))
    for start in range(0, index.shape[0], step):
        counts += np.bincount(index[start : start + step].ravel(), minlength=modality.size)
    cumulative = np.cumsum(counts[order])

    def order_statistic(k: int) -> float:
        return modality[order[int(np.searchsorted(cumulative, k, side="right"))]]

    low, high = (_numpy_linear_percentile(order_statistic, index.size, q) for q in _PERCENTILES)
    return _window_from_percentiles(low, high)


def _window_from_percentiles(low: float, high: float) -> tuple[float, float]:
    if high <= low:
        return low + 0.5, 1.0
    return (low + high) / 2.0, high - low


def _window_frame(
    frame: np.ndarray,
    rescale: tuple[float, float],
    pairs: list[tuple[float, float]],
    estimate: bool,
    *,
    invert: bool = False,
    unused_bits: int = 0,
) -> tuple[np.ndarray, float, float, str]:
    """Window one frame: the first DICOM pair giving a non-constant image, else the first pair.

    Args:
        frame: Decoded (or raw native) monochrome frame.
        rescale: (slope, intercept).
        pairs: Valid (centre, width) pairs in order.
        estimate: Estimate a window when there is no pair (else reject ``no_window``).
        invert: MONOCHROME1: return ``255 − image``.
        unused_bits: High bits of a raw integer frame still to correct (see :func:`_lut_domain`).

    Returns:
        (8-bit image, centre, width, window source).
    """
    dtype = _lut_dtype(frame)
    if dtype is None:
        if unused_bits:
            raise ValueError("Only 8- and 16-bit integer frames can carry uncorrected high bits.")

        def by_formula(center: float, width: float) -> np.ndarray:
            return _rescale_and_window(frame, rescale, center, width)

        def estimated_by_formula() -> tuple[float, float]:
            # The percentiles need the frame's values at once: one float64 copy, reordered in place.
            return estimate_window(apply_rescale(frame, *rescale), overwrite_input=True)

        image, center, width, source = _first_meaningful_window(pairs, by_formula, estimate, estimated_by_formula)
        return (255 - image if invert else image), center, width, source
    index = _lut_index(frame)

    def by_table(center: float, width: float) -> np.ndarray:
        return _look_up(_window_lut(dtype, unused_bits, *rescale, center, width, invert), index)

    def estimated_from_index() -> tuple[float, float]:
        return _estimate_window_from_index(index, dtype, unused_bits, rescale)

    return _first_meaningful_window(pairs, by_table, estimate, estimated_from_index)


def _first_meaningful_window(
    pairs: list[tuple[float, float]],
    window_with: Callable[[float, float], np.ndarray],
    estimate: bool,
    estimated_window: Callable[[], tuple[float, float]],
) -> tuple[np.ndarray, float, float, str]:
    """The window policy, whatever computes the pixels: first pair with a non-constant image, else first pair.

    Args:
        pairs: Valid (centre, width) pairs in order.
        window_with: 8-bit image of the frame under one (centre, width).
        estimate: Estimate a window when there is no pair (else reject ``no_window``).
        estimated_window: The estimated (centre, width), computed only when needed.

    Returns:
        (8-bit image, centre, width, window source).
    """
    first: np.ndarray | None = None
    for center, width in pairs:
        image = window_with(center, width)
        if image.max() != image.min():
            return image, center, width, "dicom"
        first = image if first is None else first
    if pairs:
        center, width = pairs[0]
        return first, center, width, "dicom"
    if not estimate:
        raise RecordRejected(RejectReason.NO_WINDOW, "The dataset has no valid WindowCenter/WindowWidth.")
    center, width = estimated_window()
    return window_with(center, width), center, width, "estimated"


def _colour_to_8bit(rgb: np.ndarray, max_value: float) -> np.ndarray:
    grey = to_luminance(rgb) / max_value * 255.0
    return np.floor(np.clip(grey, 0.0, 255.0) + 0.5).astype(np.uint8)


def _frame_to_8bit(
    frame: np.ndarray,
    photometric: str,
    ds: Dataset,
    rescale: tuple[float, float],
    pairs: list[tuple[float, float]],
    policy: PixelPolicy,
    bits_stored: int,
    unused_bits: int = 0,
) -> tuple[np.ndarray, float | None, float | None, str]:
    """One decoded frame to an unresized 8-bit image plus the window used."""
    if photometric in MONOCHROME:
        # MONOCHROME1: low values are white, inverted to the usual display.
        return _window_frame(frame, rescale, pairs, policy.estimate_missing_window,
                             invert=photometric == "MONOCHROME1", unused_bits=unused_bits)
    if photometric == PALETTE:
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(frame, ds)
        return _colour_to_8bit(rgb, 255.0 if rgb.dtype == np.uint8 else 65535.0), None, None, "none"
    if photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        frame = convert_color_space(frame, photometric, "RGB")
    return _colour_to_8bit(frame, float(2**bits_stored - 1)), None, None, "none"


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if not uid:
        raise RecordRejected(RejectReason.MISSING_TRANSFER_SYNTAX, "The dataset has no TransferSyntaxUID.")
    return uid if isinstance(uid, UID) else UID(uid)


def export_8bit(ds: Dataset, policy: PixelPolicy) -> ExportedImage:
    """Export a dataset's image as a square 8-bit array, or raise :class:`RecordRejected`.

    Args:
        ds: A dataset from :func:`radnet_spark.dicom.header.read_dataset` (pixel data loaded or deferred).
        policy: Export settings.

    Returns:
        The exported image and its provenance.

    Raises:
        RecordRejected: ``no_pixel_data``, ``invalid_value``, ``unsupported_photometric``,
            ``shape_policy``, ``pixel_data_too_large``, ``pixel_data_size_mismatch``,
            ``missing_transfer_syntax``, ``undecodable_compression``, ``modality_lut``,
            ``no_window``, ``value_policy_max`` or ``value_policy_distinct``.
    """
    with quiet_pydicom():
        return _export(ds, policy)


def _export(ds: Dataset, policy: PixelPolicy) -> ExportedImage:
    if not is_image_instance(ds):
        raise RecordRejected(RejectReason.NO_PIXEL_DATA, "The dataset has no pixel data.")
    rows = _required_int(ds, "Rows")
    columns = _required_int(ds, "Columns")
    frames = _required_int(ds, "NumberOfFrames", 1)
    samples = _required_int(ds, "SamplesPerPixel", 1)
    bits_allocated = _required_int(ds, "BitsAllocated")
    photometric = str(_get(ds, "PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in MONOCHROME | COLOUR | {PALETTE}:
        raise RecordRejected(
            RejectReason.UNSUPPORTED_PHOTOMETRIC,
            f"PhotometricInterpretation {photometric or '(missing)'} is not supported.",
        )
    if (samples == 1) != (photometric in MONOCHROME or photometric == PALETTE) or samples not in (1, 3):
        raise RecordRejected(
            RejectReason.INVALID_VALUE, "SamplesPerPixel does not match PhotometricInterpretation."
        )
    uses_float_data = _TAGS["PixelData"] not in ds
    bits_stored = bits_allocated if uses_float_data else _required_int(ds, "BitsStored", bits_allocated)
    if not uses_float_data:
        _required_int(ds, "PixelRepresentation", 0)

    shape_reason = shape_policy_reason(rows, columns, policy.min_aspect_ratio)
    if shape_reason is not None:
        raise RecordRejected(shape_reason, f"The image is {rows}×{columns}, too narrow for the shape policy.")

    expected = _expected_bytes(rows, columns, frames, samples, bits_allocated, photometric)
    decoded_bytes = rows * columns * frames * samples * max(1, bits_allocated // 8)
    if decoded_bytes > policy.max_pixel_bytes:
        raise RecordRejected(
            RejectReason.PIXEL_DATA_TOO_LARGE,
            f"Decoding would need {decoded_bytes} bytes ({frames} frames), above the limit of "
            f"{policy.max_pixel_bytes}.",
        )
    if _TAGS["ModalityLUTSequence"] in ds:
        raise RecordRejected(
            RejectReason.MODALITY_LUT, "The dataset uses a (non-linear) ModalityLUTSequence."
        )

    syntax = _transfer_syntax(ds)
    keyword = next(k for k in _PIXEL_KEYWORDS if _TAGS[k] in ds)
    source = _PixelSource.of(ds, keyword, bits_allocated)
    native = syntax in _NATIVE_SYNTAXES
    if native:
        if source.undefined_length:
            raise RecordRejected(
                RejectReason.UNDECODABLE_COMPRESSION,
                f"The pixel data is compressed but the transfer syntax is {syntax.name}.",
            )
        actual = source.length
        if actual < expected or actual > 2 * expected + 2:
            raise RecordRejected(
                RejectReason.PIXEL_DATA_SIZE_MISMATCH,
                f"{keyword} holds {actual} bytes but Rows, Columns, NumberOfFrames, SamplesPerPixel and "
                f"BitsAllocated call for {expected}.",
            )

    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise RecordRejected(
            RejectReason.UNDECODABLE_COMPRESSION,
            f"No pixel decoder exists for transfer syntax {syntax.name}.",
        ) from None
    if not decoder.is_available:
        raise RecordRejected(
            RejectReason.UNDECODABLE_COMPRESSION,
            f"No installed pixel decoder plugin handles {syntax.name}.",
        )

    rescale = _rescale_parameters(ds) if photometric in MONOCHROME else (1.0, 0.0)
    try:
        pairs = valid_windows(_get(ds, "WindowCenter"), _get(ds, "WindowWidth"))
    except Exception:  # noqa: BLE001 - unparsable window values count as absent
        pairs = []
    xa_multiframe = frames > 1 and str(_get(ds, "Modality", "")).upper() == "XA"
    min_ratio = policy.min_distinct_ratio_xa_multiframe if xa_multiframe else policy.min_distinct_ratio

    with source:
        return _export_first_passing_frame(
            ds, source, decoder, syntax, native, photometric, rows, columns, frames, bits_allocated,
            bits_stored, rescale, pairs, min_ratio, policy,
        )


class _PixelSource:
    """Where the frames are decoded from: the loaded value, or the file when the value is deferred.

    A deferred value (left unread by ``read_dataset(..., stop_before_pixels=True)``) is never loaded
    whole: the decoder gets the open file positioned at the value and reads only the frame asked for.
    """

    def __init__(self, ds: Dataset, keyword: str, length: int, undefined_length: bool,
                 offset: int | None, vr: str) -> None:
        self.ds = ds
        self.keyword = keyword
        self.length = length
        self.undefined_length = undefined_length
        self.offset = offset  # file offset of the value when deferred, else None
        self.vr = vr
        self._handle: Any = None

    @classmethod
    def of(cls, ds: Dataset, keyword: str, bits_allocated: int) -> _PixelSource:
        from pydicom.dataelem import RawDataElement
        from pydicom.tag import Tag

        raw = ds.get_item(Tag(keyword), keep_deferred=True)
        filename = getattr(ds, "filename", None)
        if (
            isinstance(raw, RawDataElement)
            and raw.value is None
            and raw.value_tell is not None
            and isinstance(filename, str)
        ):
            undefined = raw.length == _UNDEFINED_LENGTH
            vr = raw.VR or ("OW" if bits_allocated > 8 else "OB")  # implicit VR: as pydicom resolves it
            return cls(ds, keyword, 0 if undefined else raw.length, undefined, raw.value_tell, vr)
        element = ds[keyword]
        return cls(ds, keyword, len(element.value or b""), bool(element.is_undefined_length), None,
                   element.VR)

    def __enter__(self) -> _PixelSource:
        if self.offset is not None:
            try:
                self._handle = open(self.ds.filename, "rb")  # noqa: SIM115 - closed by __exit__
            except OSError as error:
                raise RecordRejected(
                    RejectReason.READ_ERROR, f"The pixel data cannot be read ({type(error).__name__})."
                ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def frame(self, decoder: Any, index: int) -> tuple[np.ndarray, dict]:
        """Decode frame ``index`` (and only that frame)."""
        if self._handle is None:
            return decoder.as_array(self.ds, index=index)
        from pydicom.pixels.utils import as_pixel_options

        options = as_pixel_options(self.ds)
        options.update(pixel_keyword=self.keyword, pixel_vr=self.vr)
        self._handle.seek(self.offset)
        return decoder.as_array(self._handle, index=index, **options)

    def native_frame(self, index: int, layout: _NativeLayout, rows: int, columns: int) -> np.ndarray:
        """Native frame ``index`` as stored (read-only array), read alone from the file or the value.

        Raises:
            ValueError: The pixel data ends before the frame does.
        """
        count = rows * columns
        size = count * layout.dtype.itemsize
        start = index * size
        if self._handle is None:
            value = self.ds[self.keyword].value
            if len(value) < start + size:
                raise ValueError("The pixel data ends before the frame does.")
            return np.frombuffer(value, dtype=layout.dtype, count=count, offset=start).reshape(rows, columns)
        self._handle.seek(self.offset + start)
        data = self._handle.read(size)
        if len(data) < size:
            raise ValueError("The pixel data ends before the frame does.")
        return np.frombuffer(data, dtype=layout.dtype).reshape(rows, columns)


@dataclass(frozen=True)
class _NativeLayout:
    """How a native monochrome frame is stored, for reading it without pydicom's decoder.

    Attributes:
        dtype: Stored integer type with the dataset's byte order.
        unused_bits: BitsAllocated − BitsStored (high bits pydicom's decoder would correct).
    """

    dtype: np.dtype
    unused_bits: int


def _native_layout(
    ds: Dataset, syntax: UID, source: _PixelSource, photometric: str, rows: int, columns: int,
    bits_allocated: int,
) -> _NativeLayout | None:
    """The layout of a native frame this module reads itself, or None to leave it to pydicom's decoder.

    Only the plain case qualifies, where reading the bytes gives exactly what pydicom's native
    decoder returns before its unused-bit correction (which the lookup table then applies): a
    single-sample MONOCHROME1/2 ``PixelData`` of 8 or 16 bits with every attribute pydicom's decoder
    validates present and valid. Anything else (odd attribute values the decoder would reject, 8-bit
    OW data in big endian, colour, bit-packed) keeps the decoder and its errors.
    """
    if source.keyword != "PixelData" or bits_allocated not in (8, 16):
        return None
    if not (0 < rows <= 0xFFFF and 0 < columns <= 0xFFFF):
        return None
    try:
        values = {keyword: ds[_TAGS[keyword]].value for keyword in (
            "SamplesPerPixel", "PhotometricInterpretation", "BitsStored", "PixelRepresentation")}
    except KeyError:
        return None
    if values["SamplesPerPixel"] != 1 or values["PhotometricInterpretation"] != photometric:
        return None
    bits_stored, representation = values["BitsStored"], values["PixelRepresentation"]
    if not isinstance(bits_stored, int) or not 1 <= bits_stored <= bits_allocated or representation not in (0, 1):
        return None
    little = syntax.is_little_endian
    if not little and bits_allocated == 8 and source.vr == "OW":
        return None  # pydicom swaps byte pairs of 8-bit OW data in big endian
    kind = f"{'ui'[representation]}{bits_allocated // 8}"
    dtype = np.dtype(kind).newbyteorder("<" if little else ">")
    return _NativeLayout(dtype=dtype, unused_bits=bits_allocated - bits_stored)


def _export_first_passing_frame(
    ds: Dataset,
    source: _PixelSource,
    decoder: Any,
    syntax: UID,
    native: bool,
    photometric: str,
    rows: int,
    columns: int,
    frames: int,
    bits_allocated: int,
    bits_stored: int,
    rescale: tuple[float, float],
    pairs: list[tuple[float, float]],
    min_ratio: float,
    policy: PixelPolicy,
) -> ExportedImage:
    """Decode frames one at a time until one passes the value policy; later frames are never read."""
    from PIL import Image

    layout = _native_layout(ds, syntax, source, photometric, rows, columns, bits_allocated) if native else None
    first_reason: RejectReason | None = None
    for index in range(frames):
        try:
            if layout is not None:
                frame, meta = source.native_frame(index, layout, rows, columns), {}
            else:
                frame, meta = source.frame(decoder, index)
        except Exception as error:  # noqa: BLE001 - plugins raise many types on bad streams
            if native:
                raise RecordRejected(
                    RejectReason.INVALID_VALUE,
                    f"The native pixel data cannot be decoded ({type(error).__name__}).",
                ) from None
            raise RecordRejected(
                RejectReason.UNDECODABLE_COMPRESSION,
                f"The {syntax.name} pixel data cannot be decoded by the installed plugins.",
            ) from None
        decoded_photometric = str(meta.get("photometric_interpretation", photometric))
        image, center, width, window_source = _frame_to_8bit(
            frame, decoded_photometric, ds, rescale, pairs, policy, bits_stored,
            unused_bits=layout.unused_bits if layout is not None else 0,
        )
        picture = Image.fromarray(image)  # shares the array's memory
        reason = _value_policy_from_histogram(picture.histogram(), policy.min_max_value, min_ratio)
        if reason is None:
            return ExportedImage(
                image=_resize_and_pad_image(picture, policy.image_size),
                original_rows=rows,
                original_columns=columns,
                frames=frames,
                frame_index=index,
                window_center=center,
                window_width=width,
                window_source=window_source,
                photometric=photometric,
            )
        first_reason = first_reason or reason
    raise RecordRejected(
        first_reason or RejectReason.VALUE_POLICY_MAX,
        "No frame has enough content for the value policy (maximum or number of distinct values too low).",
    )
