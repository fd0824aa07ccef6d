"""Modality intensity models: tissue labels to stored pixel values plus the pixel-module tags.

CT is stored in Hounsfield units shifted by RescaleIntercept −1024 in 12 bits, MR in arbitrary units
with a bias field, radiographs as 10–14-bit attenuation (some MONOCHROME1, i.e. inverted), XA/RF as
8/10-bit fluoroscopy with dark contrast, NM as counts and US as 8-bit speckle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.ndimage import uniform_filter

from radnet_spark.synth import phantoms as ph

# Per label (AIR, LUNG, FAT, SOFT, MUSCLE, FLUID, ORGAN, BONE, CORTEX, VESSEL, GAS, BARIUM, GREY, WHITE).
_CT_HU = np.array([-1000, -850, -100, 30, 50, 8, 60, 320, 1300, 260, -950, 900, 42, 28], dtype=np.float32)
_MR_T1 = np.array([0, 25, 950, 420, 330, 120, 480, 640, 25, 60, 8, 180, 380, 560], dtype=np.float32)
_MR_T2 = np.array([0, 30, 700, 380, 220, 1500, 330, 520, 20, 40, 8, 250, 620, 420], dtype=np.float32)
_XRAY = np.array([0.03, 0.16, 0.38, 0.46, 0.5, 0.47, 0.52, 0.74, 0.92, 0.5, 0.12, 0.95, 0.47, 0.47],
                 dtype=np.float32)
_NM = np.array([0, 5, 10, 20, 25, 30, 160, 90, 60, 40, 0, 10, 50, 40], dtype=np.float32)
_US = np.array([5, 20, 120, 90, 70, 10, 110, 230, 250, 15, 30, 200, 90, 100], dtype=np.float32)

CT_WINDOWS: dict[str, list[tuple[float, float]]] = {
    "HEAD": [(40, 80), (600, 2800)],
    "SKULL": [(600, 2800), (40, 80)],
    "CHEST": [(40, 400), (-600, 1500)],
    "TSPINE": [(400, 1800), (40, 400)],
    "CSPINE": [(400, 1800), (40, 400)],
    "LSPINE": [(400, 1800), (40, 400)],
    "NECK": [(50, 350), (40, 400)],
    "CAROTID": [(300, 700), (50, 350)],
}
_CT_DEFAULT_WINDOWS = [(40, 400), (400, 1800)]


@lru_cache(maxsize=2)
def noise_bank(seed: int, size: int = 2048) -> np.ndarray:
    """A fixed field of unit-variance noise, mildly correlated; crops of it are each image's noise.

    Drawing fresh normals for every 512² slice costs more than everything else together; random crops
    of one per-seed field look the same to any consumer and keep the dump deterministic.
    """
    rng = np.random.default_rng([seed, 7_919])
    white = rng.standard_normal((size, size), dtype=np.float32)
    smooth = uniform_filter(white, size=3) * 3.0
    return (0.6 * white + 0.4 * smooth).astype(np.float32)


def noise_crop(bank: np.ndarray, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``rows × cols`` crop of the bank, flipped at random."""
    r0 = int(rng.integers(0, bank.shape[0] - rows + 1))
    c0 = int(rng.integers(0, bank.shape[1] - cols + 1))
    crop = bank[r0:r0 + rows, c0:c0 + cols]
    if rng.random() < 0.5:
        crop = crop[::-1]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop


@dataclass
class SeriesStyle:
    """How one series turns labels into stored values; fixed for all its instances."""

    modality: str
    table: np.ndarray
    noise: float
    bits_stored: int
    bits_allocated: int
    photometric: str = "MONOCHROME2"
    signed: bool = False
    rescale: tuple[float, float] | None = None  # (slope, intercept)
    rescale_type: str | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)
    window_explanations: list[str] = field(default_factory=list)
    weighting: str = ""
    gain: float = 1.0
    bias: tuple[float, float] = (0.0, 0.0)  # MR receive-coil shading: linear gradient in x and y


def series_style(modality: str, part: str, rng: np.random.Generator, contrast: bool = False) -> SeriesStyle:
    """Draw the intensity model of one series.

    Args:
        modality: DICOM Modality of the series.
        part: true body part, which picks CT window presets.
        rng: random generator.
        contrast: whether contrast agent is present (brightens vessels in CT).

    Returns:
        The style shared by the series' instances.
    """
    if modality == "CT":
        table = _CT_HU.copy()
        if not contrast:
            table[ph.VESSEL] = 45.0
        table += rng.normal(0, 6, table.shape).astype(np.float32)
        windows = CT_WINDOWS.get(part, _CT_DEFAULT_WINDOWS)
        n = 2 if rng.random() < 0.35 else 1
        return SeriesStyle(
            modality, table, noise=float(rng.uniform(4, 14)), bits_stored=12, bits_allocated=16,
            rescale=(1.0, -1024.0), rescale_type="HU", windows=list(windows[:n]),
            window_explanations=["WINDOW1", "WINDOW2"][:n],
        )
    if modality == "MR":
        t2 = rng.random() < 0.5
        gain = float(rng.uniform(0.6, 2.2))
        table = (_MR_T2 if t2 else _MR_T1) * gain
        bits = 12 if rng.random() < 0.7 else 16
        a, b = rng.uniform(-0.25, 0.25, 2)
        return SeriesStyle(modality, table.astype(np.float32), noise=float(rng.uniform(8, 25)) * gain,
                           bits_stored=bits, bits_allocated=16, weighting="T2" if t2 else "T1", gain=gain,
                           bias=(float(a), float(b)))
    if modality in ("CR", "DX"):
        bits = int(rng.choice([10, 12, 12, 14]))
        mono1 = rng.random() < 0.3
        style = SeriesStyle(modality, _XRAY.copy(), noise=float(rng.uniform(0.01, 0.03)), bits_stored=bits,
                            bits_allocated=16, photometric="MONOCHROME1" if mono1 else "MONOCHROME2")
        if rng.random() < 0.5:
            style.rescale = (1.0, 0.0)
        return style
    if modality in ("XA", "RF"):
        bits = 8 if rng.random() < 0.6 else 10
        return SeriesStyle(modality, (1.0 - _XRAY) * 0.9 + 0.05, noise=float(rng.uniform(0.015, 0.04)),
                           bits_stored=bits, bits_allocated=8 if bits == 8 else 16)
    if modality == "NM":
        return SeriesStyle(modality, _NM * float(rng.uniform(0.5, 3)), noise=0.0, bits_stored=16,
                           bits_allocated=16)
    return SeriesStyle(modality, _US.copy(), noise=25.0, bits_stored=8, bits_allocated=8)


def base_values(labels: np.ndarray, style: SeriesStyle) -> np.ndarray:
    """Noise-free physical values (HU, a.u., attenuation 0..1, counts) of a label map, lightly blurred.

    MR values include the series' bias field.
    """
    values = uniform_filter(style.table[labels], size=3)
    if style.modality == "MR":
        rows, cols = labels.shape
        a, b = style.bias
        yy = np.linspace(-b, b, rows, dtype=np.float32)[:, None]
        xx = np.linspace(-a, a, cols, dtype=np.float32)[None, :]
        values *= 1.0 + xx + yy
    return values


def finish(base: np.ndarray, style: SeriesStyle, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add the modality's noise to noise-free values of one image (magnitude for MR, Poisson for NM)."""
    if style.modality == "MR":
        out = noise * np.float32(style.noise)
        out += base
        return np.abs(out, out=out)
    if style.modality == "NM":
        return rng.poisson(np.maximum(base, 0)).astype(np.float32)
    if style.modality == "US":
        return base * np.abs(1.0 + 0.5 * noise)
    out = noise * np.float32(style.noise)
    out += base
    return out


def store(values: np.ndarray, style: SeriesStyle) -> np.ndarray:
    """Quantise physical values to the stored integer representation of the style.

    ``values`` is used as scratch space (it is a fresh array from ``finish``).
    """
    top = (1 << style.bits_stored) - 1
    out = values.astype(np.float32, copy=False)
    if style.modality == "CT":
        out += 1024.0
    elif style.modality in ("CR", "DX", "XA", "RF"):
        np.clip(out, 0.0, 1.0, out=out)
        out *= top
        if style.photometric == "MONOCHROME1":
            np.subtract(top, out, out=out)
    out += 0.5  # round half up on the cast below
    np.clip(out, 0, top + 0.49, out=out)
    return out.astype(np.uint8 if style.bits_allocated == 8 else np.uint16)


def display_windows(stored: np.ndarray, style: SeriesStyle, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Window centre/width pairs a vendor would write for this image (CT: presets; others: from data)."""
    if style.windows:
        return style.windows
    lo, hi = np.percentile(stored[:: max(stored.shape[0] // 64, 1), :: max(stored.shape[1] // 64, 1)], (2, 99))
    width = max(float(hi - lo), 2.0) * float(rng.uniform(0.9, 1.2))
    centre = float(lo + hi) / 2.0
    if style.modality in ("XA", "RF"):
        return [(round(centre), round(width)), (round(centre * 1.1), round(width * 0.8)),
                (round(centre * 0.9), round(width * 1.3))][: int(rng.integers(2, 4))]
    return [(round(centre), round(width))]
