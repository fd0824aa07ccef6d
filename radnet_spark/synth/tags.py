"""DICOM headers of the synthetic PACS: vendors, fake identities, descriptions and per-modality tags."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from radnet_spark.synth import vocabulary as voc
from radnet_spark.synth.fileformat import Header

SOP_CLASSES: dict[str, str] = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "XA": "1.2.840.10008.5.1.4.1.1.12.1",
    "RF": "1.2.840.10008.5.1.4.1.1.12.2",
    "NM": "1.2.840.10008.5.1.4.1.1.20",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "SR": "1.2.840.10008.5.1.4.1.1.88.11",
    "PR": "1.2.840.10008.5.1.4.1.1.11.1",
}

VENDORS: dict[str, list[tuple[str, list[str]]]] = {
    "CT": [("SIEMENS", ["SOMATOM Definition AS+", "SOMATOM go.Up", "Sensation 64"]),
           ("GE MEDICAL SYSTEMS", ["LightSpeed VCT", "Revolution CT", "Optima CT660"]),
           ("Philips", ["Brilliance 64", "Ingenuity CT", "iCT 256"]),
           ("TOSHIBA", ["Aquilion", "Aquilion ONE"])],
    "MR": [("SIEMENS", ["Avanto", "Skyra", "Aera"]),
           ("GE MEDICAL SYSTEMS", ["SIGNA Explorer", "Optima MR450w", "DISCOVERY MR750"]),
           ("Philips Medical Systems", ["Ingenia", "Achieva"])],
    "CR": [("Carestream Health", ["DRX-Evolution", "DRX-1"]), ("Agfa", ["CR 85-X", "DX-D 500"]),
           ("FUJIFILM Corporation", ["FCR CAPSULA XLII", "FDR D-EVO II"]),
           ("Philips Medical Systems", ["DigitalDiagnost"]), ("SIEMENS", ["Ysio Max", "Multix Fusion"])],
    "XA": [("SIEMENS", ["AXIOM-Artis", "Artis zee", "Artis Q"]), ("Philips Medical Systems", ["Allura Xper FD20"]),
           ("GE MEDICAL SYSTEMS", ["Innova 2100-IQ", "Innova IGS 530"])],
    "RF": [("SIEMENS", ["Luminos dRF", "AXIOM Iconos R200"]), ("Philips Medical Systems", ["EasyDiagnost Eleva"]),
           ("SHIMADZU", ["SONIALVISION G4"])],
    "NM": [("SIEMENS NM", ["Symbia T2", "Symbia Intevo"]), ("GE MEDICAL SYSTEMS", ["Infinia", "Discovery NM630"])],
    "US": [("GE Healthcare", ["LOGIQ E9", "Voluson E8"]), ("Philips Medical Systems", ["EPIQ 7G"]),
           ("SIEMENS", ["ACUSON S2000"])],
}

INSTITUTIONS: list[tuple[str, str]] = [
    ("KBC Rijeka", "Krešimirova 42, 51000 Rijeka"),
    ("Klinički bolnički centar Rijeka", "Krešimirova 42, Rijeka"),
    ("KBC RIJEKA - Klinički zavod za radiologiju", "Tome Strižića 3, 51000 Rijeka"),
    ("KBC Sušak", "Tome Strižića 3, Rijeka"),
    ("Opća bolnica Pula", "Santoriova 24a, 52100 Pula"),
    ("Thalassotherapia Opatija", "Maršala Tita 188, 51410 Opatija"),
    ("Poliklinika Rijeka", "Fiorello la Guardia 13, Rijeka"),
]

FIRST_NAMES: dict[str, list[str]] = {
    "M": ["Ivan", "Marko", "Luka", "Josip", "Tomislav", "Nikola", "Željko", "Zoran", "Dražen", "Goran", "Ante",
          "Mario", "Stjepan", "Krešimir", "Đuro", "Matej", "Filip", "Petar", "Dino", "Branko"],
    "F": ["Ana", "Marija", "Ivana", "Petra", "Katarina", "Mirjana", "Dragica", "Snježana", "Lucija", "Maja",
          "Jelena", "Nikolina", "Vesna", "Ljiljana", "Sanja", "Đurđica", "Tea", "Martina", "Gordana", "Iva"],
}
LAST_NAMES: list[str] = [
    "Horvat", "Kovačević", "Babić", "Marić", "Jurić", "Novak", "Kovačić", "Knežević", "Vuković", "Marković",
    "Petrović", "Matić", "Tomić", "Pavlović", "Božić", "Blažević", "Grgić", "Pavić", "Radić", "Perić",
    "Šarić", "Lovrić", "Vidović", "Ćosić", "Jukić", "Đurić", "Žagar", "Brajković", "Mihaljević", "Rukavina",
]
_CHARSETS = ["ISO_IR 192", "ISO_IR 192", "ISO_IR 101", None]


def ascii_fold(text: str) -> str:
    """Drop diacritics the way old modalities without a character set do (``Š`` → ``S``)."""
    text = text.replace("đ", "d").replace("Đ", "D").replace("ß", "ss")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def typo(text: str, rng: np.random.Generator, rate: float = 0.04) -> str:
    """Corrupt words with a dropped, doubled or swapped letter, each with probability ``rate``."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) < 5 or rng.random() >= rate:
            continue
        k = int(rng.integers(1, len(word) - 2))
        op = int(rng.integers(0, 3))
        if op == 0:
            word = word[:k] + word[k + 1:]
        elif op == 1:
            word = word[:k] + word[k] + word[k:]
        else:
            word = word[:k] + word[k + 1] + word[k] + word[k + 2:]
        words[i] = word
    return " ".join(words)


def _pick(rng: np.random.Generator, items: list) -> object:
    return items[int(rng.integers(0, len(items)))]


def _weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


@dataclass
class Patient:
    """Fake identity of one patient; the same patient can own several exams."""

    name: str
    patient_id: str
    birth_date: str
    sex: str


def make_patient(seed: int, patient_index: int) -> Patient:
    """A deterministic fake patient for (seed, index)."""
    rng = np.random.default_rng([seed, 1_000_003, patient_index])
    sex = "F" if rng.random() < 0.5 else "M"
    if rng.random() < 0.01:
        sex = "O"
    first = _pick(rng, FIRST_NAMES["F" if sex == "F" else "M"])
    last = _pick(rng, LAST_NAMES)
    name = f"{last}^{first}".upper() if rng.random() < 0.6 else f"{last}^{first}"
    year = int(rng.integers(1925, 2012))
    return Patient(
        name=name,
        patient_id=str(int(rng.integers(100_000_000, 999_999_999))),
        birth_date=f"{year:04d}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}",
        sex=sex,
    )


def physician(rng: np.random.Generator) -> str:
    """A fake physician or radiographer name in DICOM PN form."""
    sex = "F" if rng.random() < 0.5 else "M"
    suffix = _pick(rng, ["", "", "^^dr. med.", "^^dr.", "^^bacc. rad. techn."])
    return f"{_pick(rng, LAST_NAMES)}^{_pick(rng, FIRST_NAMES[sex])}{suffix}"


@dataclass
class Descriptions:
    """Free-text descriptions of one exam; ``None`` means the attribute is absent."""

    study: str | None
    protocol: str | None
    requested: str | None
    vague: bool


_LANG_WEIGHTS = {"hr": 0.5, "la": 0.15, "en": 0.2, "de": 0.15}


def _term(part: str, modality: str, rng: np.random.Generator, weights: dict[str, float] = _LANG_WEIGHTS) -> str:
    return str(_pick(rng, voc.terms_for(part, modality, _weighted(rng, weights))))


def _modality_term(modality: str, rng: np.random.Generator) -> str:
    return str(_pick(rng, voc.MODALITY_TERMS[modality][_weighted(rng, _LANG_WEIGHTS)]))


def describe(part: str, modality: str, rng: np.random.Generator, vague_share: float = 0.06) -> Descriptions:
    """Draw StudyDescription, ProtocolName and RequestedProcedureDescription for an exam.

    Args:
        part: true body part.
        modality: exam modality.
        rng: random generator.
        vague_share: share of exams whose descriptions name no body part at all.

    Returns:
        The descriptions; ``vague`` tells that none of them names the body part.
    """
    if rng.random() < vague_share:
        study = str(_pick(rng, voc.VAGUE_DESCRIPTIONS))
        protocol = str(_pick(rng, ["Routine", "Default", "Standard", "Protokol 1", "USER"])) if rng.random() < 0.6 else None
        return Descriptions(study=study, protocol=protocol, requested=None, vague=True)
    qualifier = str(_pick(rng, voc.QUALIFIERS))
    term = _term(part, modality, rng)
    mod = _modality_term(modality, rng)
    form = int(rng.integers(0, 4))
    if form == 0:
        study = f"{mod} {term} {qualifier}"
    elif form == 1:
        study = f"{term} {qualifier}"
    elif form == 2:
        study = f"{term} - {mod}"
    else:
        study = f"{mod}^{term}"
    study = typo(study.strip(), rng)
    if rng.random() < 0.35:
        study = study.upper()
    # A share of studies carry only the modality word; the protocol or request then names the part.
    if rng.random() < 0.12:
        study = mod
    protocol = None
    if rng.random() < 0.85:
        pterm = _term(part, modality, rng, {"hr": 0.2, "la": 0.2, "en": 0.35, "de": 0.25})
        sep = str(_pick(rng, [" ", "_", "^", " "]))
        protocol = typo(sep.join([pterm.replace(" ", sep), str(_pick(rng, ["", "Routine", "std", "1", "nativ", "KM"]))])
                        .strip(sep), rng)
    requested = None
    if rng.random() < 0.7:
        requested = typo(f"{_modality_term(modality, rng)} {_term(part, modality, rng, {'hr': 0.8, 'la': 0.2})}", rng, 0.02)
    return Descriptions(study=study[:64], protocol=protocol[:64] if protocol else None,
                        requested=requested[:64] if requested else None, vague=False)


def bpe_value(part: str, rng: np.random.Generator, missing_share: float, raw_share: float = 0.15) -> str | None:
    """What this instance's BodyPartExamined holds: absent, the canonical label or a raw variant."""
    if rng.random() < missing_share:
        return None
    if rng.random() < raw_share:
        return str(_pick(rng, voc.RAW_BPE_VARIANTS[part]))
    return part


@dataclass
class ExamContext:
    """Everything shared by the instances of one exam."""

    exam_index: int
    seed: int
    modality: str
    part: str
    patient: Patient
    accession: str
    study_uid: str
    study_date: str
    study_time: str
    manufacturer: str
    model: str
    institution: str
    address: str
    station: str
    serial: str
    referring: str
    operator: str
    charset: str | None
    descriptions: Descriptions
    contrast: bool
    implicit_vr: bool


def make_exam_context(seed: int, exam_index: int, modality: str, part: str, patient: Patient,
                      rng: np.random.Generator) -> ExamContext:
    """Draw vendor, site, dates, uids and descriptions of one exam."""
    vendor, models = VENDORS[modality][int(rng.integers(0, len(VENDORS[modality])))]
    institution, address = INSTITUTIONS[int(rng.integers(0, len(INSTITUTIONS)))]
    day = np.datetime64("2014-01-01") + np.timedelta64(int(rng.integers(0, 3650)), "D")
    date = str(day).replace("-", "")
    seconds = int(rng.integers(7 * 3600, 20 * 3600))
    time = f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}.{int(rng.integers(0, 999999)):06d}"
    return ExamContext(
        exam_index=exam_index, seed=seed, modality=modality, part=part, patient=patient,
        accession=f"{date[:4]}{exam_index:07d}",
        study_uid=generate_uid(entropy_srcs=["|".join([str(seed), "study", str(exam_index)])]),
        study_date=date, study_time=time, manufacturer=vendor, model=str(_pick(rng, models)),
        institution=institution, address=address,
        station=f"{modality}{int(rng.integers(1, 4)):02d}" if rng.random() < 0.5 else
        str(_pick(rng, ["RTG-SALA2", "CTSCAN1", "MRSKYRA", "ANGIO1", "DL-SOBA", "AWP45123", "OC0"])),
        serial=str(int(rng.integers(10_000, 99_999_999))),
        referring=physician(rng), operator=physician(rng),
        charset=_CHARSETS[int(rng.integers(0, len(_CHARSETS)))],
        descriptions=describe(part, modality, rng),
        contrast=bool(rng.random() < 0.4),
        implicit_vr=bool(rng.random() < 0.12),
    )


def _text(ctx: ExamContext, value: str) -> str:
    return value if ctx.charset else ascii_fold(value)


def base_dataset(ctx: ExamContext, sop_class: str, sop_uid: str, series_uid: str, series_number: int,
                 instance_number: int, modality: str, series_description: str, bpe: str | None) -> Header:
    """Patient, study, series, equipment and SOP common modules of one instance (no pixel module)."""
    ds = Header()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if ctx.implicit_vr else ExplicitVRLittleEndian
    meta.ImplementationVersionName = f"{ctx.manufacturer.split()[0][:10].upper()}_SYN1"
    ds.file_meta = meta
    if ctx.charset:
        ds.SpecificCharacterSet = ctx.charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = ctx.study_date
    ds.StudyTime = ctx.study_time
    ds.SeriesTime = ds.ContentTime = ctx.study_time.split(".")[0]
    ds.AccessionNumber = ctx.accession
    ds.Modality = modality
    ds.Manufacturer = ctx.manufacturer
    ds.InstitutionName = _text(ctx, ctx.institution)
    ds.InstitutionAddress = _text(ctx, ctx.address)
    ds.ReferringPhysicianName = _text(ctx, ctx.referring)
    ds.StationName = ctx.station
    d = ctx.descriptions
    if d.study is not None:
        ds.StudyDescription = _text(ctx, d.study)
    ds.SeriesDescription = _text(ctx, series_description)
    ds.OperatorsName = _text(ctx, ctx.operator)
    ds.ManufacturerModelName = ctx.model
    ds.PatientName = _text(ctx, ctx.patient.name)
    ds.PatientID = ctx.patient.patient_id
    ds.PatientBirthDate = ctx.patient.birth_date
    ds.PatientSex = ctx.patient.sex
    age = max(int(ctx.study_date[:4]) - int(ctx.patient.birth_date[:4]), 0)
    ds.PatientAge = f"{age:03d}Y"
    if bpe is not None:
        ds.BodyPartExamined = bpe
    if d.protocol is not None:
        ds.ProtocolName = _text(ctx, d.protocol)
    ds.DeviceSerialNumber = ctx.serial
    ds.SoftwareVersions = "VB20A" if ctx.manufacturer.startswith("SIEMENS") else "5.1.2"
    ds.StudyInstanceUID = ctx.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ctx.accession[-6:]
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    if d.requested is not None:
        ds.RequestedProcedureDescription = _text(ctx, d.requested)
    return ds


def add_modality_tags(ds: Header, ctx: ExamContext, series: dict, rng: np.random.Generator, z_index: int,
                      rows: int, cols: int) -> None:
    """Acquisition tags of the modality (exposure, sequence, geometry), with realistic gaps."""
    m = ds.Modality
    spacing = series["pixel_spacing"]
    if m in ("CT", "MR", "NM", "US") or rng.random() < 0.6:
        ds.PixelSpacing = [round(spacing, 6), round(spacing, 6)]
    if m == "CT":
        ds.ImageType = series["image_type"]
        ds.KVP = series["kvp"]
        ds.SliceThickness = series["thickness"]
        ds.XRayTubeCurrent = int(series["ma"] * rng.uniform(0.85, 1.15))
        ds.ExposureTime = series["exposure_time"]
        ds.Exposure = int(ds.XRayTubeCurrent * series["exposure_time"] / 1000)
        ds.ConvolutionKernel = series["kernel"]
        ds.PatientPosition = series["position"]
        ds.GantryDetectorTilt = 0
        ds.ReconstructionDiameter = round(spacing * cols, 1)
        ds.SliceLocation = round(series["z0"] - z_index * series["thickness"], 2)
        ds.ImagePositionPatient = [round(-spacing * cols / 2, 3), round(-spacing * rows / 2, 3), ds.SliceLocation]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        if rng.random() < 0.7:
            ds.CTDIvol = round(series["ctdi"], 2)
    elif m == "MR":
        ds.ImageType = series["image_type"]
        ds.ScanningSequence = series["sequence"]
        ds.SequenceVariant = series["variant"]
        ds.MRAcquisitionType = series["acq"]
        ds.SliceThickness = series["thickness"]
        ds.RepetitionTime = series["tr"]
        ds.EchoTime = series["te"]
        ds.MagneticFieldStrength = series["field"]
        ds.ImagingFrequency = round(42.577 * series["field"], 6)
        ds.FlipAngle = series["flip"]
        ds.EchoTrainLength = series["etl"]
        ds.NumberOfAverages = series["nex"]
        ds.PixelBandwidth = series["bandwidth"]
        ds.ReceiveCoilName = series["coil"]
        ds.PatientPosition = series["position"]
        ds.SliceLocation = round(series["z0"] + z_index * series["thickness"] * 1.1, 2)
    elif m in ("CR", "DX"):
        ds.ImageType = series["image_type"]
        ds.KVP = series["kvp"]
        ds.ExposureTime = series["exposure_time"]
        ds.XRayTubeCurrent = series["ma"]
        ds.Exposure = max(int(series["ma"] * series["exposure_time"] / 1000), 1)
        ds.ImagerPixelSpacing = [round(spacing, 6), round(spacing, 6)]
        ds.ViewPosition = series["view"]
        ds.DistanceSourceToDetector = series["sid"]
        if rng.random() < 0.7:
            ds.ExposureIndex = int(rng.integers(150, 900))
        if ctx.manufacturer.startswith("FUJI"):
            ds.Sensitivity = int(rng.integers(100, 600))
        if rng.random() < 0.5:
            ds.PatientOrientation = ["L", "F"] if rng.random() < 0.5 else ["R", "F"]
    elif m in ("XA", "RF"):
        ds.ImageType = series["image_type"]
        ds.KVP = series["kvp"]
        ds.XRayTubeCurrent = series["ma"]
        ds.ExposureTime = series["exposure_time"]
        ds.ImagerPixelSpacing = [round(spacing, 6), round(spacing, 6)]
        ds.DistanceSourceToDetector = series["sid"]
        ds.PositionerPrimaryAngle = series["primary_angle"]
        ds.PositionerSecondaryAngle = series["secondary_angle"]
        ds.RadiationSetting = "GR" if series["frames"] > 1 else "SC"
        if m == "XA":
            ds.IntensifierSize = series["intensifier"]
    elif m == "NM":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
        ds.SliceThickness = 0
    elif m == "US":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
        ds.TransducerData = "C1-5"


def series_params(modality: str, part: str, rng: np.random.Generator, ctx: ExamContext) -> dict:
    """Acquisition parameters shared by a series."""
    p: dict = {}
    if modality == "CT":
        p["image_type"] = ["ORIGINAL", "PRIMARY", "AXIAL"] if rng.random() < 0.8 else ["DERIVED", "SECONDARY",
                                                                                          "REFORMATTED", "AVERAGE"]
        p["kvp"] = float(rng.choice([80, 100, 120, 120, 120, 140]))
        p["thickness"] = float(rng.choice([0.625, 1.0, 1.25, 2.5, 3.0, 5.0]))
        p["ma"] = float(rng.uniform(60, 400))
        p["exposure_time"] = int(rng.choice([500, 750, 1000, 1500]))
        p["kernel"] = str(_pick(rng, ["B30f", "B70f", "STANDARD", "BONE", "FC13", "I30f", "LUNG"]))
        p["position"] = "HFS" if rng.random() < 0.85 else "FFS"
        p["z0"] = float(rng.uniform(-200, 100))
        p["ctdi"] = float(rng.uniform(2, 60))
    elif modality == "MR":
        t2 = rng.random() < 0.5
        p["sequence"] = _pick(rng, ["SE", "GR", "IR", ["SE", "IR"]]) if not t2 else "SE"
        p["variant"] = _pick(rng, ["SK", "NONE", ["SK", "SP"], ["SK", "SP", "OSP"]])
        p["acq"] = "3D" if rng.random() < 0.2 else "2D"
        p["thickness"] = float(rng.choice([1.0, 3.0, 4.0, 5.0]))
        p["tr"] = round(float(rng.uniform(2500, 6000) if t2 else rng.uniform(400, 800)), 2)
        p["te"] = round(float(rng.uniform(80, 120) if t2 else rng.uniform(8, 20)), 2)
        p["field"] = 3.0 if ctx.model in ("Skyra", "DISCOVERY MR750", "Ingenia") else 1.5
        p["flip"] = int(rng.choice([90, 150, 160, 180]))
        p["etl"] = int(rng.choice([1, 4, 12, 16, 25]))
        p["nex"] = float(rng.choice([1, 2, 3]))
        p["bandwidth"] = float(rng.choice([130, 190, 250, 300]))
        p["coil"] = str(_pick(rng, ["HeadNeck_20", "Body_18", "Spine_32", "Knee 15ch", "8HRBRAIN", "SENSE-Head-8"]))
        p["position"] = "HFS" if rng.random() < 0.8 else "FFS"
        p["z0"] = float(rng.uniform(-80, 80))
        p["image_type"] = ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"][: int(rng.integers(3, 6))]
    elif modality in ("CR", "DX", "XA", "RF"):
        p["image_type"] = (["ORIGINAL", "PRIMARY"] if rng.random() < 0.7 else ["DERIVED", "PRIMARY", "POST_PROCESSED"]) \
            if modality == "CR" else ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
        p["kvp"] = float(rng.integers(50, 126))
        p["ma"] = int(rng.integers(50, 800))
        p["exposure_time"] = int(rng.integers(5, 200))
        p["view"] = str(_pick(rng, ["AP", "PA", "LL", "RL", "LAT", ""]))
        p["sid"] = float(rng.choice([1000.0, 1150.0, 1800.0]))
        p["primary_angle"] = float(round(rng.uniform(-45, 45), 1))
        p["secondary_angle"] = float(round(rng.uniform(-30, 30), 1))
        p["intensifier"] = float(rng.choice([230.0, 300.0, 400.0]))
    return p
