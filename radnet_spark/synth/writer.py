"""Write a synthetic PACS dump: DICOM tree, diagnoses.csv and ground_truth.csv.

Each exam is generated from its own random stream seeded by (seed, exam index), so the dump does not
depend on the number of worker processes, and exams are generated in parallel.
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from radnet_spark.synth import defects as dfx
from radnet_spark.synth import intensity as inten
from radnet_spark.synth import phantoms as ph
from radnet_spark.synth import tags as tg
from radnet_spark.synth import vocabulary as voc
from radnet_spark.synth.defects import DefectRates
from radnet_spark.synth.diagnoses import diagnosis_text
from radnet_spark.synth.fileformat import ElementCache, Header, compress_pixels

GROUND_TRUTH_COLUMNS = ["relative_path", "sop_instance_uid", "accession_number", "modality", "body_part",
                        "defect", "transfer_syntax", "frames"]


@dataclass
class SynthSummary:
    """Counts of what ``generate_pacs`` wrote."""

    exams: int = 0
    files: int = 0
    dicom_files: int = 0
    diagnoses: int = 0
    seconds: float = 0.0
    per_modality: dict[str, int] = field(default_factory=dict)
    per_defect: dict[str, int] = field(default_factory=dict)

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        mods = ", ".join(f"{k} {v}" for k, v in sorted(self.per_modality.items()))
        defects = ", ".join(f"{k} {v}" for k, v in sorted(self.per_defect.items())) or "none"
        return (f"{self.exams} exams, {self.files} files ({self.dicom_files} DICOM) in {self.seconds:.1f} s "
                f"({self.files_per_second:.0f} files/s); {self.diagnoses} diagnoses\n"
                f"  files by modality: {mods}\n  defects: {defects}")


def _weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _heavy(rng: np.random.Generator, median: float, sigma: float, cap: int) -> int:
    """A lognormal count: most series are small, a few are very large."""
    return int(min(max(round(median * math.exp(sigma * rng.standard_normal())), 1), cap))


@dataclass
class _SeriesPlan:
    number: int
    instances: int
    frames: int
    rows: int
    cols: int
    view: str
    description: str
    localizer: bool = False


def _plan_series(modality: str, part: str, rng: np.random.Generator) -> list[_SeriesPlan]:
    """Series and instance counts of one exam, heavy-tailed."""
    plans: list[_SeriesPlan] = []
    terms = voc.SERIES_TERMS[modality]
    scale = math.exp(0.6 * rng.standard_normal())  # exam-level size: a few exams are huge

    def desc() -> str:
        return str(terms[int(rng.integers(0, len(terms)))])

    if modality in ("CT", "MR"):
        spine_or_limb = part not in ("HEAD", "SKULL", "CHEST", "ABDOMEN", "PELVIS", "NECK", "CAROTID",
                                     "URINARYTRACT", "WHOLEBODY", "GITRACT", "BREAST", "TEST", "HIP")
        if modality == "CT":
            size = int(rng.choice([512, 512, 512, 384, 256]))
            shape = (size, size)
        else:
            shape = [(256, 256), (320, 320), (192, 256), (256, 192), (288, 288), (320, 260)][int(rng.integers(0, 6))]
        if rng.random() < 0.7:
            n_loc = 1 if modality == "CT" else 3
            plans.append(_SeriesPlan(1, n_loc, 1, shape[0], shape[1], ph.PROJECTION,
                                     "Topogram" if modality == "CT" else "localizer", localizer=True))
        n_series = int(rng.integers(1, 4 if modality == "CT" else 6))
        for _ in range(n_series):
            view = ph.PROJECTION if (modality == "MR" and part in ("CSPINE", "TSPINE", "LSPINE")) or spine_or_limb \
                else ph.AXIAL
            n = _heavy(rng, (14 if modality == "CT" else 10) * scale, 0.7, 400)
            plans.append(_SeriesPlan(len(plans) + 1, n, 1, shape[0], shape[1], view, desc()))
    elif modality == "CR":
        for _ in range(int(rng.integers(1, 4))):
            rows = int(rng.integers(300, 513)) * 2
            cols = int(rng.integers(250, 513)) * 2
            plans.append(_SeriesPlan(len(plans) + 1, 1 if rng.random() < 0.85 else 2, 1, rows, cols,
                                     ph.PROJECTION, desc()))
    elif modality in ("XA", "RF"):
        for _ in range(_heavy(rng, 2.5 * scale, 0.6, 25)):
            big = rng.random() < 0.1
            size = 1024 if big else 512
            multi = rng.random() < (0.8 if modality == "XA" else 0.45)
            frames = int(rng.integers(4, 9 if big else 25)) if multi else 1
            n = 1 if multi or rng.random() < 0.5 else int(rng.integers(2, 5))
            plans.append(_SeriesPlan(len(plans) + 1, n, frames, size, size, ph.PROJECTION, desc()))
    elif modality == "NM":
        plans.append(_SeriesPlan(1, int(rng.integers(1, 3)), 1, 256, 128, ph.PROJECTION, desc()))
    else:  # US
        plans.append(_SeriesPlan(1, int(rng.integers(3, 12)), 1, 480, 640, ph.AXIAL, desc()))
    return plans


_LAYOUTS = 6


def _relpath(layout: int, ctx: tg.ExamContext, plan: _SeriesPlan, inst: int, series_uid: str, sop_uid: str) -> str:
    """Where a PACS export would have put this instance (no patient identifiers in paths)."""
    y, m, d = ctx.study_date[:4], ctx.study_date[4:6], ctx.study_date[6:]
    e = ctx.exam_index
    if layout == 0:
        return f"{y}/{m}/{d}/ST{e:07d}/SE{plan.number:03d}/IM{inst:05d}"
    if layout == 1:
        return f"{ctx.study_uid}/{series_uid}/{sop_uid}.dcm"
    if layout == 2:
        return f"export_{e % 17:02d}/DICOM/{e:08X}/{plan.number:08X}/{inst:08X}"
    if layout == 3:
        name = re.sub(r"[^A-Za-z0-9 ]+", " ", plan.description).strip() or "series"
        return f"{y}{m}/{ctx.modality}_{e}/{plan.number} {name}/image ({inst}).dcm"
    if layout == 4:
        return f"{y}/{e}/{sop_uid}.DCM"
    return f"misc/{e}_{plan.number}_{inst}.dicom"


def _set_pixels(ds: Header, stored: np.ndarray, style: inten.SeriesStyle, frames: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = style.photometric
    ds.Rows, ds.Columns = int(stored.shape[-2]), int(stored.shape[-1])
    ds.BitsAllocated = style.bits_allocated
    ds.BitsStored = style.bits_stored
    ds.HighBit = style.bits_stored - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameTime = round(1000.0 / float(ds.get("CineRate", 15)), 2)
        ds.FrameIncrementPointer = 0x00181063
    ds.PixelData = np.ascontiguousarray(stored).tobytes()


def _set_windows(ds: Header, windows: list[tuple[float, float]], explanations: list[str]) -> None:
    if len(windows) == 1:
        ds.WindowCenter, ds.WindowWidth = windows[0]
    else:
        ds.WindowCenter = [c for c, _ in windows]
        ds.WindowWidth = [w for _, w in windows]
    if explanations:
        ds.WindowCenterWidthExplanation = explanations[: len(windows)]


def _no_pixel_dataset(ctx: tg.ExamContext, sop_uid: str, series_uid: str, number: int,
                      rng: np.random.Generator, bpe: str | None) -> tuple[Header, str]:
    """An SR document or presentation state: valid DICOM, no pixels."""
    if rng.random() < 0.6:
        ds = tg.base_dataset(ctx, tg.SOP_CLASSES["SR"], sop_uid, series_uid, number, 1, "SR", "Dose Report", bpe)
        ds.ValueType = "CONTAINER"
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "UNVERIFIED"
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113701", "DCM", "X-Ray Radiation Dose Report"
        ds.ConceptNameCodeSequence = Sequence([code])
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
        item.TextValue = f"DLP {rng.uniform(50, 1500):.1f} mGy*cm"
        ds.ContentSequence = Sequence([item])
        return ds, "SR"
    ds = tg.base_dataset(ctx, tg.SOP_CLASSES["PR"], sop_uid, series_uid, number, 1, "PR", "Presentation State", bpe)
    ds.ContentLabel = "ANNOTATION"
    ds.PresentationCreationDate = ctx.study_date
    return ds, "PR"


def _jpeg2000_available() -> bool:
    try:
        from pydicom.pixels import get_encoder

        return bool(get_encoder(JPEG2000Lossless).is_available)
    except Exception:  # noqa: BLE001 - any import or plugin failure means "not available"
        return False


def generate_exam(task: tuple) -> tuple[list[dict], tuple[str, str] | None]:
    """Generate and write one exam; top-level so a process pool can run it.

    Raw BodyPartExamined values such as ``C-SPINE`` or ``Thorax`` break the CS value rules on purpose,
    so pydicom's write-time validation is silenced while the exam is written.

    Args:
        task: ``(out_dir, seed, exam_index, exams, language, missing_bpe_share, defect_rates)``.

    Returns:
        Ground-truth rows of the files written, and the ``(AccessionNumber, diagnosis)`` row or
        ``None`` when the exam has no diagnosis row.
    """
    settings = pydicom_config.settings
    previous = settings.reading_validation_mode, settings.writing_validation_mode
    # Values are validated on assignment with the reading mode and on writing with the writing mode.
    settings.reading_validation_mode = settings.writing_validation_mode = pydicom_config.IGNORE
    try:
        return _generate_exam(task)
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = previous


class _SeriesRenderer:
    """Pixels of one series: a pose, an intensity style and label maps shared by neighbouring slices."""

    def __init__(self, modality: str, part: str, plan: _SeriesPlan, style: inten.SeriesStyle,
                 bank: np.ndarray, rng: np.random.Generator) -> None:
        self.modality, self.part, self.plan, self.style, self.bank = modality, part, plan, style, bank
        self.pose = ph.Pose.random(rng, 8 if plan.view == ph.AXIAL else 20)
        # Neighbouring slices share a label map and differ by noise only, which keeps big series cheap.
        self.n_keys = max(1, min(plan.instances, 1 + plan.instances // 6))
        self._key: int | None = None
        self._base: np.ndarray | None = None
        self.vessels = None
        if modality == "XA":
            mask = ph.draw_vessels(part, plan.rows, plan.cols, rng, self.pose).astype(np.float32)
            self.vessels = inten.uniform_filter(mask, size=3)
        self.subtracted = modality == "XA" and rng.random() < 0.3  # DSA: flat background, dark vessels
        self.fan = None
        if modality == "US":
            yy, xx = np.mgrid[0:plan.rows, 0:plan.cols]
            angle = np.arctan2(xx - plan.cols / 2, yy + 40)
            inside = (np.abs(angle) < 0.6) & (np.hypot(xx - plan.cols / 2, yy + 40) < plan.rows)
            self.fan = inside.astype(np.float32)

    def _base_values(self, inst: int, rng: np.random.Generator) -> np.ndarray:
        plan = self.plan
        key = min(int((inst - 1) * self.n_keys / plan.instances), self.n_keys - 1)
        if key != self._key or self._base is None:
            labels = ph.draw(self.part, plan.view, plan.rows, plan.cols, rng, self.pose, (key + 0.5) / self.n_keys)
            base = inten.base_values(labels, self.style)
            self._key, self._base = key, base * self.fan if self.fan is not None else base
        return self._base

    def _one(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = inten.noise_crop(self.bank, self.plan.rows, self.plan.cols, rng)
        return inten.store(inten.finish(values, self.style, noise, rng), self.style)

    def pixels(self, inst: int, rng: np.random.Generator) -> np.ndarray:
        """Stored values of instance ``inst`` (1-based): ``(rows, cols)`` or ``(frames, rows, cols)``."""
        base = self._base_values(inst, rng)
        if self.vessels is None and self.plan.frames == 1:
            return self._one(base, rng)
        frames = []
        for f in range(self.plan.frames):
            # Contrast washes in and out over a run.
            fill = math.sin(math.pi * (f + 1) / (self.plan.frames + 1)) if self.plan.frames > 1 else 1.0
            img = np.full_like(base, 0.55) if self.subtracted else base
            if self.vessels is not None:
                img = img - (0.45 * fill) * self.vessels
            frames.append(self._one(img, rng))
        return np.stack(frames) if self.plan.frames > 1 else frames[0]


def _junk_row(path: Path, dicom_root: Path, accession: str) -> dict:
    return {"relative_path": path.relative_to(dicom_root).as_posix(), "sop_instance_uid": "",
            "accession_number": accession, "modality": "", "body_part": "", "defect": dfx.NOT_DICOM,
            "transfer_syntax": "", "frames": 0}


def _image_header(ctx: tg.ExamContext, plan: _SeriesPlan, renderer: _SeriesRenderer, params: dict,
                  ids: tuple[str, str, int], bpe: str | None, stored: np.ndarray, defect: str,
                  rng: np.random.Generator) -> Header:
    """The full header of an image instance, pixel data included, with the defect applied."""
    series_uid, sop_uid, inst = ids
    style = renderer.style
    ds = tg.base_dataset(ctx, tg.SOP_CLASSES[ctx.modality], sop_uid, series_uid, plan.number, inst, ctx.modality,
                         plan.description, bpe)
    tg.add_modality_tags(ds, ctx, params, rng, inst - 1, plan.rows, plan.cols)
    if plan.localizer:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    if plan.frames > 1:
        ds.CineRate = params["cine_rate"]
    if style.rescale is not None:
        ds.RescaleIntercept = style.rescale[1]
        ds.RescaleSlope = style.rescale[0]
        if style.rescale_type:
            ds.RescaleType = style.rescale_type
    _set_pixels(ds, stored, style, plan.frames)
    if defect != dfx.NO_WINDOW:
        first = stored if stored.ndim == 2 else stored[stored.shape[0] // 2]
        _set_windows(ds, inten.display_windows(first, style, rng), style.window_explanations)
    if defect == dfx.MODALITY_LUT:
        dfx.add_modality_lut(ds, style.bits_stored, rng)
    if defect in (dfx.RLE, dfx.JPEG2000):
        compress_pixels(stored, ds, RLELossless if defect == dfx.RLE else JPEG2000Lossless)
    return ds


def _generate_exam(task: tuple) -> tuple[list[dict], tuple[str, str] | None]:
    out_dir, seed, e, exams, language, missing_share, rates = task
    dicom_root = Path(out_dir) / "dicom"
    rng = np.random.default_rng([seed, e])
    modality = _weighted(rng, voc.MODALITY_WEIGHTS)
    part = _weighted(rng, voc.MODALITY_BODY_PARTS[modality])
    # Patients come back: draw the owner from a pool smaller than the number of exams.
    patient_index = int(np.random.default_rng([seed, 99, e]).integers(0, max(1, int(exams * 0.75))))
    ctx = tg.make_exam_context(seed, e, modality, part, tg.make_patient(seed, patient_index), rng)
    text = diagnosis_text(part, modality, language, np.random.default_rng([seed, e, 5]),
                          ctx.patient.patient_id, ctx.study_date)
    diag = None if text is None else (ctx.accession, text)
    layout = int(rng.integers(0, _LAYOUTS))
    bank = inten.noise_bank(seed)
    rows_out: list[dict] = []
    junk_count = 0
    j2k = _jpeg2000_available()
    cache = ElementCache()

    for plan in _plan_series(modality, part, rng):
        series_uid = generate_uid(entropy_srcs=["|".join([str(seed), "series", str(e), str(plan.number)])])
        style = inten.series_style(modality, part, rng, ctx.contrast)
        if plan.localizer and modality == "CT":
            style.windows = style.windows[:1]
        params = tg.series_params(modality, part, rng, ctx)
        params["pixel_spacing"] = float(rng.uniform(0.3, 0.9)) if modality in ("CT", "MR") else float(
            rng.choice([0.1, 0.139, 0.143, 0.15, 0.2]))
        params["frames"] = plan.frames
        params["cine_rate"] = int(rng.choice([7, 15, 15, 30]))
        renderer = _SeriesRenderer(modality, part, plan, style, bank, rng)

        for inst in range(1, plan.instances + 1):
            sop_uid = generate_uid(entropy_srcs=["|".join([str(seed), "sop", str(e), str(plan.number), str(inst)])])
            defect = rates.draw(rng)
            if defect == dfx.JPEG2000 and not j2k:
                defect = dfx.RLE
            bpe = tg.bpe_value(part, rng, missing_share)
            rel = _relpath(layout, ctx, plan, inst, series_uid, sop_uid)
            path = dicom_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if defect == dfx.NOT_DICOM:
                junk_count += 1
                name, data = dfx.junk_file(rng, f"{e}_{junk_count}")
                (path.parent / name).write_bytes(data)
                rows_out.append(_junk_row(path.parent / name, dicom_root, ctx.accession))
                continue
            if defect == dfx.NO_PIXEL_DATA:
                ds, file_modality = _no_pixel_dataset(ctx, sop_uid, series_uid, plan.number, rng, bpe)
                frames = 0
            else:
                stored = dfx.damage_pixels(defect, renderer.pixels(inst, rng), rng)
                ds = _image_header(ctx, plan, renderer, params, (series_uid, sop_uid, inst), bpe, stored, defect,
                                   rng)
                file_modality, frames = modality, plan.frames
            data = cache.encode(ds)
            if defect == dfx.TRUNCATED:
                data = dfx.truncate(data, rng)
            path.write_bytes(data)
            rows_out.append({"relative_path": rel, "sop_instance_uid": sop_uid, "accession_number": ctx.accession,
                             "modality": file_modality, "body_part": part, "defect": defect,
                             "transfer_syntax": str(ds.file_meta.TransferSyntaxUID), "frames": frames})

    # A DICOMDIR-ish leftover next to the exam's first file, in some exams (none when not_dicom is 0).
    if rows_out and rng.random() < min(1.0, 3.0 * rates.not_dicom):
        jpath = (dicom_root / rows_out[0]["relative_path"]).parent / f"DICOMDIR_{e}"
        jpath.write_bytes(b"\x00" * 128 + b"DICM" + rng.bytes(64))
        rows_out.append(_junk_row(jpath, dicom_root, ctx.accession))
    return rows_out, diag


def generate_pacs(out_dir: Path, exams: int, seed: int, language: str = "hr", missing_bpe_share: float = 0.45,
                  defect_rates: DefectRates | None = None, workers: int | None = None,
                  progress: bool = False, first_exam: int = 0) -> SynthSummary:
    """Write a synthetic, realistic PACS dump with known ground truth.

    Args:
        out_dir: output folder; receives ``dicom/``, ``diagnoses.csv`` and ``ground_truth.csv``.
        exams: number of exams to generate.
        seed: random seed; the same seed gives the same files and ground truth.
        language: language of the narrative diagnoses, ``"hr"`` (Croatian) or ``"en"``.
        missing_bpe_share: share of instances without BodyPartExamined.
        defect_rates: per-file defect probabilities; ``None`` uses the defaults.
        workers: worker processes; ``None`` uses every core, 1 runs in this process. The output does
            not depend on it: exam ``i`` is drawn from its own stream seeded by ``(seed, i)`` (only the
            pool of recurring patients scales with ``exams``).
        progress: show a progress bar over exams.
        first_exam: index of the first exam. Dumps generated with the same seed and consecutive,
            non-overlapping ranges are disjoint parts of one larger dump (unique accession numbers and
            UIDs), so a benchmark can grow a dump by adding parts instead of regenerating it.

    Returns:
        Counts of what was written.
    """
    if language not in ("hr", "en"):
        raise ValueError(f"Unknown diagnosis language {language!r}; use 'hr' or 'en'.")
    if exams < 1:
        raise ValueError(f"The number of exams must be at least 1, got {exams}.")
    if not 0.0 <= missing_bpe_share <= 1.0:
        raise ValueError(f"missing_bpe_share must lie in [0, 1], got {missing_bpe_share}.")
    rates = defect_rates or DefectRates()
    out_dir = Path(out_dir)
    (out_dir / "dicom").mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    if first_exam < 0:
        raise ValueError(f"first_exam must be at least 0, got {first_exam}.")
    last_exam = first_exam + exams
    tasks = [(str(out_dir), seed, e, last_exam, language, missing_bpe_share, rates) for e in range(first_exam, last_exam)]
    started = time.perf_counter()
    if workers == 1:
        results = map(generate_exam, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(generate_exam, tasks, chunksize=max(1, min(8, exams // (workers * 8))))
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=exams, unit="exam", desc="synth")
    summary = SynthSummary(exams=exams)
    per_modality: Counter[str] = Counter()
    per_defect: Counter[str] = Counter()
    try:
        with open(out_dir / "ground_truth.csv", "w", newline="", encoding="utf-8") as gt, \
                open(out_dir / "diagnoses.csv", "w", newline="", encoding="utf-8") as dg:
            gt_writer = csv.DictWriter(gt, fieldnames=GROUND_TRUTH_COLUMNS)
            gt_writer.writeheader()
            dg_writer = csv.writer(dg)
            dg_writer.writerow(["AccessionNumber", "diagnosis"])
            for rows, diag in results:
                gt_writer.writerows(rows)
                for row in rows:
                    summary.files += 1
                    if row["sop_instance_uid"] and row["defect"] != dfx.TRUNCATED:
                        summary.dicom_files += 1
                    per_modality[row["modality"] or "non-DICOM"] += 1
                    if row["defect"]:
                        per_defect[row["defect"]] += 1
                if diag is not None:
                    dg_writer.writerow(diag)
                    summary.diagnoses += 1
    finally:
        if pool is not None:
            pool.shutdown()
    summary.seconds = time.perf_counter() - started
    summary.per_modality = dict(per_modality)
    summary.per_defect = dict(per_defect)
    return summary
