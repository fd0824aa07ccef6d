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

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
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
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        return lo + 0.5, 1.0
    return (lo + hi) / 2.0, hi - lo


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
    maximum = int(image.max()) if image.size else 0
    if maximum < min_max_value or maximum <= 0:
        return RejectReason.VALUE_POLICY_MAX
    bits = int(math.floor(math.log2(maximum))) + 1
    distinct = int(np.count_nonzero(np.bincount(image.ravel(), minlength=256)))
    if distinct / (2**bits - 1) <= min_distinct_ratio:
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

    rows, columns = image.shape
    scale = size / max(rows, columns)
    new_rows = min(size, max(1, round(rows * scale)))
    new_columns = min(size, max(1, round(columns * scale)))
    resized = np.asarray(Image.fromarray(image).resize((new_columns, new_rows), Image.BILINEAR))
    out = np.zeros((size, size), dtype=np.uint8)
    top = (size - new_rows) // 2
    left = (size - new_columns) // 2
    out[top : top + new_rows, left : left + new_columns] = resized
    return out


def to_luminance(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) to luminance with BT.601 weights, as float64."""
    return rgb.astype(np.float64) @ _LUMA


# --- dataset-level helpers ------------------------------------------------------------------------


def _required_int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (number == 0 and keyword != "PixelRepresentation"):
        raise RecordRejected(RejectReason.INVALID_VALUE, f"{keyword} is missing or not a positive integer.")
    return number


def _rescale_parameters(ds: Dataset) -> tuple[float, float]:
    slope_values = _as_float_list(ds.get("RescaleSlope"))
    intercept_values = _as_float_list(ds.get("RescaleIntercept"))
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


def _window_frame(
    frame: np.ndarray, rescale: tuple[float, float], pairs: list[tuple[float, float]], estimate: bool
) -> tuple[np.ndarray, float, float, str]:
    """Window one frame: the first DICOM pair giving a non-constant image, else the first pair."""
    first: np.ndarray | None = None
    for center, width in pairs:
        image = _rescale_and_window(frame, rescale, center, width)
        if image.max() != image.min():
            return image, center, width, "dicom"
        first = image if first is None else first
    if pairs:
        center, width = pairs[0]
        return first, center, width, "dicom"
    if not estimate:
        raise RecordRejected(RejectReason.NO_WINDOW, "The dataset has no valid WindowCenter/WindowWidth.")
    # The percentiles need the frame's values at once: one float64 copy, reordered in place.
    center, width = estimate_window(apply_rescale(frame, *rescale), overwrite_input=True)
    return _rescale_and_window(frame, rescale, center, width), center, width, "estimated"


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
) -> tuple[np.ndarray, float | None, float | None, str]:
    """One decoded frame to an unresized 8-bit image plus the window used."""
    if photometric in MONOCHROME:
        image, center, width, source = _window_frame(frame, rescale, pairs, policy.estimate_missing_window)
        if photometric == "MONOCHROME1":  # low values are white: invert to the usual display
            image = 255 - image
        return image, center, width, source
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
    return UID(uid)


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
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in MONOCHROME | COLOUR | {PALETTE}:
        raise RecordRejected(
            RejectReason.UNSUPPORTED_PHOTOMETRIC,
            f"PhotometricInterpretation {photometric or '(missing)'} is not supported.",
        )
    if (samples == 1) != (photometric in MONOCHROME or photometric == PALETTE) or samples not in (1, 3):
        raise RecordRejected(
            RejectReason.INVALID_VALUE, "SamplesPerPixel does not match PhotometricInterpretation."
        )
    uses_float_data = "PixelData" not in ds
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
    if "ModalityLUTSequence" in ds:
        raise RecordRejected(
            RejectReason.MODALITY_LUT, "The dataset uses a (non-linear) ModalityLUTSequence."
        )

    syntax = _transfer_syntax(ds)
    keyword = next(k for k in _PIXEL_KEYWORDS if k in ds)
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
        pairs = valid_windows(ds.get("WindowCenter"), ds.get("WindowWidth"))
    except Exception:  # noqa: BLE001 - unparsable window values count as absent
        pairs = []
    xa_multiframe = frames > 1 and str(ds.get("Modality", "")).upper() == "XA"
    min_ratio = policy.min_distinct_ratio_xa_multiframe if xa_multiframe else policy.min_distinct_ratio

    with source:
        return _export_first_passing_frame(
            ds, source, decoder, syntax, native, photometric, rows, columns, frames, bits_stored, rescale,
            pairs, min_ratio, policy,
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
    bits_stored: int,
    rescale: tuple[float, float],
    pairs: list[tuple[float, float]],
    min_ratio: float,
    policy: PixelPolicy,
) -> ExportedImage:
    """Decode frames one at a time until one passes the value policy; later frames are never read."""
    first_reason: RejectReason | None = None
    for index in range(frames):
        try:
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
            frame, decoded_photometric, ds, rescale, pairs, policy, bits_stored
        )
        reason = value_policy_reason(image, policy.min_max_value, min_ratio)
        if reason is None:
            return ExportedImage(
                image=resize_and_pad(image, policy.image_size),
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
