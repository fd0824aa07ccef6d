"""De-identification of tag rows (DICOM PS3.15 Basic Application Confidentiality Profile).

The attribute list is not typed here: it comes from ``dicom-anonymizer`` (BSD-3-Clause, Kitware),
which transcribes PS3.15 Table E.1-1 per release. We only read its table; we never run its
anonymiser (it rewrites files, and we write new rows instead).

What leaves this module:

* ``sop_instance_uid`` in clear (the labels must link back to the PACS) or hashed on request;
* ``exam_id`` / ``study_id`` / ``series_id`` as salted hashes (HMAC-SHA256, first 32 hex chars);
* every attribute the profile does not remove. Dates and times go unless ``keep_dates`` (the
  profile's "Retain Longitudinal Temporal Information with Full Dates" option). The descriptive
  attributes the method needs follow the "Clean Descriptors" option: kept, passed through
  :func:`scrub_free_text`.

Beyond the profile, whatever their tag (the lists are derived from pydicom's data dictionary by
the rules below, not typed):

* every person-name (PN) attribute (:data:`PERSON_NAME_KEYWORDS`);
* every attribute naming a device or a place (:data:`DEVICE_PLACE_KEYWORDS`): all AE titles (they
  name stations), and every text attribute (SH, LO, ST, LT, UT, UC) whose keyword, split into its
  CamelCase words, holds ``Station``, ``Machine``, ``Institution``/``Institutional``, ``Department``,
  ``Address``, ``Facility``, ``Room``, ``Site`` or ``Serial``; or ``Location`` (unless it is an
  ``Anatomic``/``Reference``/``Tissue`` location); or a device word (``Device``, ``Detector``,
  ``Gantry``, ``Plate``, ``Cassette``, ``Lens``) with an identity word (``ID``, ``Identifier``,
  ``Label``, ``Name``, ``Description``), except a manufacturer's model name (``Manufacturer``,
  ``Model``: a product, not an installation). So ``RadiationMachineName``, ``StationName``,
  ``DeviceSerialNumber``, ``InstitutionalDepartmentName`` and ``GantryID`` all go.

Free text is scrubbed: the clean descriptors and every free-text attribute (ST, LT, UT, UC) of
dates, times, id-like numbers, e-mail addresses and phone numbers (:func:`scrub_free_text`); every
kept string attribute (CS, SH, LO, ST, LT, UT, UC) of person names, with a
:class:`radnet_spark.dicom.names.NameScrubber` built from the record's own PN values, title
patterns and a names lexicon (``[NAME]``).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
import pkgutil
import re
import secrets
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from pydicom.datadict import DicomDictionary, RepeatersDictionary, keyword_for_tag

if TYPE_CHECKING:
    from radnet_spark.dicom.names import NameScrubber

# Descriptors the RadiologyNET method reads (BodyPartExamined imputation); PS3.15 "Clean
# Descriptors Option": retained after removing identifying information from the text.
CLEAN_DESCRIPTOR_KEYWORDS: frozenset[str] = frozenset(
    {
        "StudyDescription",
        "SeriesDescription",
        "ProtocolName",
        "RequestedProcedureDescription",
        "BodyPartExamined",
    }
)
# PS3.15 "Retain Patient Characteristics Option" (off by default, as in the Basic Profile).
PATIENT_CHARACTERISTIC_KEYWORDS: frozenset[str] = frozenset(
    {
        "PatientAge",
        "PatientSex",
        "PatientSize",
        "PatientWeight",
        "EthnicGroup",
        "SmokingStatus",
        "PregnancyStatus",
        "PatientSexNeutered",
    }
)
# Ids we replace by salted hashes; never written in clear.
HASHED_ID_KEYWORDS: frozenset[str] = frozenset(
    {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber"}
)
_TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})
# UIDs naming standard things (SOP classes, transfer syntaxes, coding schemes) identify no one.
_PUBLIC_UID_MARKERS = ("ClassUID", "SyntaxUID", "CodingSchemeUID", "MappingResourceUID")
_SPLIT_SUFFIX = re.compile(r"_\d+$")


def _profile_table() -> ModuleType:
    """The newest PS3.15 table dicom-anonymizer ships (modules named ``dicomfields_<release>``)."""
    from dicomanonymizer import dicom_anonymization_databases as databases

    names = sorted(
        m.name for m in pkgutil.iter_modules(databases.__path__) if m.name.startswith("dicomfields_")
    )
    if not names:
        raise ImportError("dicom-anonymizer ships no PS3.15 attribute table; reinstall dicom-anonymizer.")
    return importlib.import_module(f"{databases.__name__}.{names[-1]}")


def _profile_keywords() -> frozenset[str]:
    """Keywords of every attribute PS3.15 Table E.1-1 removes, replaces or cleans."""
    table = _profile_table()
    keywords: set[str] = set()
    for entry in table.ALL_TAGS:
        # Entries are (group, element) or, for repeating groups, (group, element, group_mask, element_mask).
        keyword = keyword_for_tag((entry[0] << 16) | entry[1])
        if keyword:
            keywords.add(keyword)
    return frozenset(keywords)


_PROFILE_KEYWORDS = _profile_keywords()
# keyword -> VR for the standard and the repeating-group (50xx, 60xx) dictionaries.
_KEYWORD_VR = {
    entry[4]: entry[0]
    for table in (DicomDictionary, RepeatersDictionary)
    for entry in table.values()
    if entry[4]
}
_ALL_DICTIONARY_KEYWORDS = frozenset(_KEYWORD_VR)


def _vr(keyword: str) -> str:
    return _KEYWORD_VR.get(keyword, "")


_TEMPORAL_KEYWORDS = frozenset(
    k for k in _ALL_DICTIONARY_KEYWORDS | _PROFILE_KEYWORDS if _vr(k) in _TEMPORAL_VRS
)
# Dates describing the patient rather than the exam (birth, death, last menstruation) identify
# the person and are removed even when exam dates are kept.
_PATIENT_TEMPORAL_KEYWORDS = frozenset(
    k for k in _TEMPORAL_KEYWORDS if k.startswith("Patient") or k == "LastMenstrualDate"
)
DATE_TIME_KEYWORDS: frozenset[str] = _TEMPORAL_KEYWORDS - _PATIENT_TEMPORAL_KEYWORDS
"""Every DA/DT/TM attribute about the exam: dropped unless ``keep_dates=True``."""

_INSTANCE_UIDS = frozenset(
    k for k in _ALL_DICTIONARY_KEYWORDS if _vr(k) == "UI" and not any(m in k for m in _PUBLIC_UID_MARKERS)
)

_CAMEL_WORD = re.compile(r"[A-Z][a-z]+|[A-Z]+(?![a-z])|\d+")
_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC"})
_PLACE_WORDS = frozenset(
    {"Station", "Machine", "Institution", "Institutional", "Department", "Address", "Facility", "Room",
     "Site", "Serial"}
)
_DEVICE_WORDS = frozenset({"Device", "Detector", "Gantry", "Plate", "Cassette", "Lens"})
_IDENTITY_WORDS = frozenset({"ID", "Identifier", "Label", "Name", "Description"})
_PRODUCT_WORDS = frozenset({"Manufacturer", "Model"})
_ANATOMIC_LOCATION_WORDS = frozenset({"Anatomic", "Reference", "Tissue"})


def _names_device_or_place(keyword: str, vr: str) -> bool:
    """The documented rule (module docstring) for attributes that name a device or a place."""
    if vr == "AE":
        return True
    if vr not in _TEXT_VRS:
        return False
    words = set(_CAMEL_WORD.findall(keyword))
    if words & _PLACE_WORDS:
        return True
    if "Location" in words and not words & _ANATOMIC_LOCATION_WORDS:
        return True
    return bool(words & _DEVICE_WORDS and words & _IDENTITY_WORDS and not words & _PRODUCT_WORDS)


DEVICE_PLACE_KEYWORDS: frozenset[str] = frozenset(
    k for k in _ALL_DICTIONARY_KEYWORDS if _names_device_or_place(k, _vr(k))
)
"""Attributes that name a machine, station, device or place, derived from the dictionary (see above)."""
PERSON_NAME_KEYWORDS: frozenset[str] = frozenset(k for k in _ALL_DICTIONARY_KEYWORDS if _vr(k) == "PN")
"""Every person-name attribute of the dictionary."""
_STRING_VRS = _TEXT_VRS | {"CS"}
_FREE_TEXT_VRS = frozenset({"ST", "LT", "UT", "UC"})

IDENTIFYING_KEYWORDS: frozenset[str] = frozenset(
    (_PROFILE_KEYWORDS | _INSTANCE_UIDS | HASHED_ID_KEYWORDS | _PATIENT_TEMPORAL_KEYWORDS
     | DEVICE_PLACE_KEYWORDS | PERSON_NAME_KEYWORDS)
    - DATE_TIME_KEYWORDS
    - CLEAN_DESCRIPTOR_KEYWORDS
)
"""Attributes the Basic Profile removes (names, ids, addresses, institution, staff, devices, UIDs, …),
plus every PN attribute and every attribute naming a device or place (:data:`DEVICE_PLACE_KEYWORDS`).

Includes :data:`PATIENT_CHARACTERISTIC_KEYWORDS` (removed unless ``keep_patient_characteristics``)
and the ids in :data:`HASHED_ID_KEYWORDS`, which only ever appear hashed.
"""


class SaltError(RuntimeError):
    """No salt could be found or created for hashing ids."""


def salted_hash(value: str, salt: str) -> str:
    """Hash an identifier with a secret salt.

    Args:
        value: The identifier in clear.
        salt: The secret salt.

    Returns:
        HMAC-SHA256 of ``value`` keyed with ``salt``, as hex, first 32 characters.
    """
    return hmac.new(salt.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def resolve_salt(env_var: str = "RADNET_SALT", fallback_file: Path | None = None) -> str:
    """Find the salt: the environment variable wins, else a salt file, created on first use.

    Args:
        env_var: Name of the environment variable holding the salt.
        fallback_file: File holding the salt (e.g. ``WAREHOUSE/_private/salt``). Created with a random
            256-bit salt and mode 0600 when it does not exist yet.

    Returns:
        The salt.

    Raises:
        SaltError: When the variable is unset and no file was given, or the file is empty/unreadable.
    """
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return from_env
    if fallback_file is None:
        raise SaltError(
            f"No salt for hashing ids: set the {env_var} environment variable or give a salt file."
        )
    path = Path(fallback_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created earlier (or concurrently by another process): read it below
        else:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        salt = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SaltError(f"The salt file {path} cannot be read or created ({error.strerror}).") from None
    if not salt:
        raise SaltError(f"The salt file {path} is empty; delete it to create a new salt or set {env_var}.")
    return salt


# --- free-text scrubbing ------------------------------------------------------------------------

_MONTHS = (
    r"sije[cč]nj?a|sije[cč]anj|velja[cč][ae]|o[zž]uj[ak]a?|travnj?a|travanj|svib(?:nja|anj)|lip(?:nja|anj)|"
    r"srp(?:nja|anj)|kolovoza?|rujna|rujan|listopada?|studenoga?|prosin(?:ca|ac)|"
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_D = r"(?:0?[1-9]|[12]\d|3[01])"
_M = r"(?:0?[1-9]|1[0-2])"
_Y = r"(?:19\d{2}|20\d{2}|\d{2})"
_NOT_BEFORE = r"(?<![\w.,/-])"
_NOT_AFTER = r"(?![\w/-]|[.,]\d)"
_DATE_PATTERNS = [
    # 2023-01-05, 2023/1/5, 2023.01.05
    rf"{_NOT_BEFORE}(?:19|20)\d{{2}}\s?[-/.]\s?{_M}\s?[-/.]\s?{_D}\.?{_NOT_AFTER}",
    # 05.01.2023., 5.1.23, 05/01/2023, 5-1-2023, "5. 1. 2023."
    rf"{_NOT_BEFORE}{_D}\s?([./-])\s?{_M}\s?\1\s?{_Y}\.?{_NOT_AFTER}",
    # 20230105
    rf"{_NOT_BEFORE}(?:19|20)\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_NOT_AFTER}",
    # 5. siječnja 2023., 5 Jan 2023, 5th January 2023
    rf"{_NOT_BEFORE}{_D}(?:\.|st|nd|rd|th)?\s*(?:{_MONTHS})\.?,?\s*(?:19|20)\d{{2}}\.?{_NOT_AFTER}",
    # January 5, 2023
    rf"{_NOT_BEFORE}(?:{_MONTHS})\.?\s+{_D}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}{_NOT_AFTER}",
]
# Only the day-month-year pattern captures (its separator, for a back-reference), and it stays
# group 1 after joining because the pattern before it captures nothing.
_DATE_RE = re.compile("|".join(f"(?:{p})" for p in _DATE_PATTERNS), re.IGNORECASE)
_TIME_RE = re.compile(
    r"(?<![\w.,:])(?:[01]?\d|2[0-3])(?::[0-5]\d(?::[0-5]\d)?(?:\s?[ap]\.?m\.?)?|\s?h\s?[0-5]\d|[.:][0-5]\d\s?(?:h|sati?)\b)"
    r"(?![\w:]|[.,]\d)",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Starts with +, 00 or 0 (international or Croatian trunk prefix), 7-15 digits with separators.
_PHONE_RE = re.compile(r"(?<![\w.,/+-])(?:\+|00)?\(?\d[\d\s/().-]{5,}\d(?![\w.,/-]\d|\w)")
# Dotted numeric UIDs (1.2.840.113619.2.55) pasted into text are ids too.
_UID_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+){3,}(?![\w]|\.\d)")
_LONG_NUMBER_RE = re.compile(r"(?<![\w.,])\d{5,}(?![\w]|[.,]\d)")
# Letters and digits mixed, 6+ characters with at least 4 digits: MRN-style ids like AB12345.
_MIXED_ID_RE = re.compile(r"\b(?=(?:[^\W\d_]*\d){4})(?=\d*[^\W\d_])[^\W_]{6,}\b")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    has_separator = any(ch in text for ch in " /-()")
    if 7 <= digits <= 15 and has_separator and (text.startswith(("+", "0", "(0"))):
        return "[PHONE]"
    return text


def scrub_free_text(text: str) -> str:
    """Replace dates, times, id-like tokens, e-mail addresses and phone numbers with placeholders.

    Placeholders are ``[DATE]``, ``[TIME]``, ``[ID]``, ``[EMAIL]`` and ``[PHONE]``. Medical shorthand
    survives: ``5 mm``, ``C5-C6``, ``T2``, ``L4/L5``, ``3.5 cm``, ``120/80``. Id-like means five or
    more digits in a row (accession numbers, Croatian OIB with 11 and MBO with 9 digits) or a token
    of six or more letters and digits with at least four digits, or a dotted UID.

    Args:
        text: Free text, e.g. a narrative diagnosis or a StudyDescription.

    Returns:
        The scrubbed text.
    """
    if not text:
        return text
    text = _EMAIL_RE.sub("[EMAIL]", text)
    text = _DATE_RE.sub("[DATE]", text)
    text = _TIME_RE.sub("[TIME]", text)
    text = _UID_RE.sub("[ID]", text)
    text = _PHONE_RE.sub(_phone, text)
    text = _LONG_NUMBER_RE.sub("[ID]", text)
    text = _MIXED_ID_RE.sub("[ID]", text)
    return text


# --- tag rows -----------------------------------------------------------------------------------


def exam_id_for(accession_number: str | None, study_instance_uid: str | None, salt: str) -> str | None:
    """The exam id: hash of the AccessionNumber, else of the StudyInstanceUID.

    The diagnoses export is keyed by accession number, so hashing a diagnosis' accession number with
    this function yields the same ``exam_id`` as its images.

    Args:
        accession_number: AccessionNumber in clear, or None/empty.
        study_instance_uid: StudyInstanceUID in clear, or None/empty.
        salt: The secret salt.

    Returns:
        The salted hash, or None when both are missing.
    """
    for value in (accession_number, study_instance_uid):
        if value is not None and value.strip():
            return salted_hash(value.strip(), salt)
    return None


def _base_keyword(column: str) -> str:
    return _SPLIT_SUFFIX.sub("", column)


def deidentify_tags(
    tags: dict[str, str | None],
    *,
    salt: str,
    keep_dates: bool = False,
    hash_sop_instance_uid: bool = False,
    keep_patient_characteristics: bool = False,
    names: NameScrubber | None = None,
) -> dict[str, str | None]:
    """Turn a raw tag dictionary into a row of the ``tags`` table without identifying data.

    Args:
        tags: Output of :func:`radnet_spark.dicom.header.dataset_to_tags`.
        salt: Secret salt for the id hashes (see :func:`resolve_salt`).
        keep_dates: Keep DA/DT/TM attributes (PS3.15 retain-full-dates option).
        hash_sop_instance_uid: Write ``sop_instance_uid`` as a salted hash instead of in clear.
        keep_patient_characteristics: Keep age, sex, size, weight and the like (PS3.15 option).
        names: Scrubs person names out of every kept string attribute (build it with the record's
            own PN tokens, see :func:`radnet_spark.dicom.names.record_name_tokens`); None scrubs no
            names.

    Returns:
        ``sop_instance_uid``, ``exam_id``, ``study_id``, ``series_id``, then every kept attribute
        (split columns of removed attributes are removed too); clean descriptors and free-text
        attributes are scrubbed of dates and ids, every string attribute of names.

    Raises:
        RecordRejected: ``missing_sop_instance_uid`` when the row has no SOPInstanceUID.
    """
    from radnet_spark.dicom.reasons import RecordRejected, RejectReason

    sop_instance_uid = (tags.get("SOPInstanceUID") or "").strip()
    if not sop_instance_uid:
        raise RecordRejected(RejectReason.MISSING_SOP_INSTANCE_UID, "The dataset has no SOPInstanceUID.")
    study_uid = tags.get("StudyInstanceUID")
    series_uid = tags.get("SeriesInstanceUID")
    row: dict[str, str | None] = {
        "sop_instance_uid": salted_hash(sop_instance_uid, salt)
        if hash_sop_instance_uid
        else sop_instance_uid,
        "exam_id": exam_id_for(tags.get("AccessionNumber"), study_uid, salt),
        "study_id": salted_hash(study_uid.strip(), salt) if study_uid and study_uid.strip() else None,
        "series_id": salted_hash(series_uid.strip(), salt) if series_uid and series_uid.strip() else None,
    }
    for column, value in tags.items():
        keyword = _base_keyword(column)
        kept_characteristic = keep_patient_characteristics and keyword in PATIENT_CHARACTERISTIC_KEYWORDS
        if keyword in IDENTIFYING_KEYWORDS and not kept_characteristic:
            continue
        if keyword in DATE_TIME_KEYWORDS and not keep_dates:
            continue
        if column in row:
            continue  # never let a DICOM keyword shadow an output key
        if value is not None:
            vr = _vr(keyword)
            if keyword in CLEAN_DESCRIPTOR_KEYWORDS or vr in _FREE_TEXT_VRS:
                value = scrub_free_text(value)
            if names is not None and (vr in _STRING_VRS or keyword in CLEAN_DESCRIPTOR_KEYWORDS):
                value = names.scrub(value)
        row[column] = value
    return row
