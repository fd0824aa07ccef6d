"""Narrative diagnoses, one record at a time: scrub, clean, stem, or say why a diagnosis is unusable.

Per record (:func:`process_diagnosis`, no Spark): identifiers and names are scrubbed from the free
text first, so dates, id numbers and person names never reach the clean text, the stems or any
output; then the text is cleaned, split into words and stemmed. Names come from titles ("dr. …",
"…, dr. med."), the names lexicon, and the exam's own PN values: the DICOM parse step stages only
salted hashes of those (``name_hashes``), which the table builder joins by hashed exam id and
matches against the hash of every word (see :mod:`radnet_spark.dicom.names`). Empty and very short
diagnoses are rejected like the paper did. :mod:`radnet_spark.text.diagnoses_table` applies this to
a DataFrame with ``mapInPandas`` and keeps one diagnosis per exam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from radnet_spark.text.stemming import DEFAULT_LANGUAGE, clean_text, stem_tokens, tokenize

if TYPE_CHECKING:
    from radnet_spark.dicom.names import NameScrubber

# Reason codes, spelled as in radnet_spark.dicom.reasons.RejectReason.
EMPTY_DIAGNOSIS = "empty_diagnosis"
SHORT_DIAGNOSIS = "short_diagnosis"
DUPLICATE_DIAGNOSIS = "duplicate_diagnosis"
MISSING_EXAM_KEY = "missing_exam_key"

DEFAULT_MIN_CHARS = 10

# What radnet_spark.dicom.deid.scrub_free_text puts where it removed something.
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")


@dataclass(frozen=True)
class DiagnosisResult:
    """One processed diagnosis.

    Attributes:
        scrubbed: The text with dates and id-like tokens replaced (``None`` when there was no text).
        clean: Lower-case text without punctuation, words separated by single spaces.
        stems: One stem per word of ``clean``.
        reject_reason: A reason code when the diagnosis is unusable, else ``None``.
        reject_detail: Human-readable explanation of the rejection; never contains the text itself.
    """

    scrubbed: str | None
    clean: str
    stems: list[str]
    reject_reason: str | None = None
    reject_detail: str | None = None


def process_diagnosis(
    raw: str | None,
    *,
    language: str = DEFAULT_LANGUAGE,
    min_chars: int = DEFAULT_MIN_CHARS,
    names: NameScrubber | None = None,
) -> DiagnosisResult:
    """Scrub, clean, tokenize and stem one narrative diagnosis, or say why it is unusable.

    Args:
        raw: The diagnosis as exported from the hospital system; ``None`` when missing.
        language: Stemmer language (see :func:`radnet_spark.text.stemming.get_stemmer`).
        min_chars: Diagnoses whose cleaned text is shorter than this are rejected as short.
        names: The name scrubber (with the exam's hashed name tokens); None uses titles and the
            default names lexicon only.

    Returns:
        The processed diagnosis; ``reject_reason`` is ``empty_diagnosis`` or ``short_diagnosis`` when
        it should not be used.
    """
    # Imported here: the module is light on the driver and executors import it once per worker.
    from radnet_spark.dicom.deid import scrub_free_text

    if raw is None or not raw.strip():
        return DiagnosisResult(None, "", [], EMPTY_DIAGNOSIS, "the diagnosis is empty")
    if names is None:
        names = _default_scrubber()
    scrubbed = names.scrub(scrub_free_text(raw)) or ""
    # The placeholders ([DATE], [ID], …) stay in the stored raw text but are no words of the diagnosis.
    clean = clean_text(_PLACEHOLDER.sub(" ", scrubbed))
    if not clean:
        return DiagnosisResult(
            scrubbed, "", [], EMPTY_DIAGNOSIS, "the diagnosis has no words after removing punctuation"
        )
    if len(clean) < min_chars:
        return DiagnosisResult(
            scrubbed,
            clean,
            [],
            SHORT_DIAGNOSIS,
            f"the cleaned diagnosis has {len(clean)} characters, fewer than the minimum {min_chars}",
        )
    return DiagnosisResult(scrubbed, clean, stem_tokens(tokenize(clean), language))


def _default_scrubber() -> NameScrubber:
    from radnet_spark.dicom.names import NameScrubber, load_lexicon

    return NameScrubber(lexicon=load_lexicon())
