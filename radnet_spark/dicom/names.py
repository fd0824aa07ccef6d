"""Person names out of free text: what the record knows, titles, and a names lexicon → ``[NAME]``.

Three sources of names, applied together by :class:`NameScrubber` (pure, no Spark):

1. **The record's own names.** Every PN-valued element of the instance, at any sequence depth and in
   any component group (alphabetic, ideographic, phonetic), split into tokens at ``^``, ``=``, spaces,
   hyphens, commas and dots (:func:`record_name_tokens`). A token matches case- and
   diacritic-insensitively as a whole word, so the components match in any order and joined by
   spaces or hyphens ("Horvat Ivan", "IVAN HORVAT", "Horvat-Ivan", "horvat"). Tokens in scripts
   written without spaces (kanji, kana, hangul) match as substrings. Academic suffixes that DICOM
   PN values carry ("dr. med.", "bacc. rad. techn.") are no name tokens.
2. **Titles.** A title or honorific (``dr.``, ``prof.``, ``doc.``, ``prim.``, ``mr.``/``mrs.``/``ms.``,
   ``dr. med.``, ``dr. sc.``; without the dot only in title case: ``Dr Horvat``) followed by up to
   three capitalised words (initials included): the words go, whatever they are. Croatian
   signatures put the degree after the name ("Ana Babić, dr. med."): up to three capitalised words
   right before ``dr. med.``, ``dr. sc.``, ``mag.``, ``bacc.`` or ``univ.`` go as well, unless they are
   protected words (below) or all-capital abbreviations of up to three letters (``CT``, ``RTG``).
   After a comma (``…, dr. med.``) the degree always closes a signature: the capitalised word that
   follows it starts the next sentence and stays.
3. **A names lexicon**: given names and surnames of the locales in ``privacy.names_lexicon`` from
   the `Faker <https://pypi.org/project/Faker/>`_ package (MIT licence, maintained, data shipped in
   the wheel: nothing downloads). A capitalised word of three or more letters whose folded form is
   in the lexicon goes.

What survives: a lexicon match or a word before a degree never removes a word that the BodyPartExamined rules
(``radnet_spark/tags/bpe_rules.yaml``) recognise as a body part or alias ("Glava" is a Croatian
surname and the word for head; "Kralj" a surname and the stem of "kralježnica"), nor a word listed
in :data:`COMMON_WORDS` (words of the descriptions and reports that the lexicon happens to hold).
The record's own names are removed even then: what the record says is a name is a name.

Exam names for diagnoses: a diagnosis is joined to its exam only after the DICOM parse has left the
worker, and nothing in clear may be staged. So the parse step carries, per instance, salted HMACs of
its name tokens (:func:`name_token_hashes`, the same salt as the id hashes, domain-separated), and the
diagnosis step builds a scrubber from the exam's hashes (``NameScrubber(hashed_tokens=…, salt=…)``),
hashing every word of the diagnosis and replacing those whose hash is the exam's.
"""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

NAME_PLACEHOLDER = "[NAME]"
DEFAULT_LEXICON_LOCALES = "hr_HR,sl_SI,hu_HU,it_IT,de_DE,de_AT,cs_CZ,sk_SK,pl_PL,en_US,en_GB"
"""Faker locales of the default lexicon: the region of the paper's hospital, its neighbours, English."""

_FOLD_TABLE = str.maketrans({"ß": "ss", "ẞ": "ss", "đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ø": "o",
                             "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ı": "i", "þ": "th"})
# Degrees and honorifics that PN values carry as prefix/suffix components: never name tokens.
_TITLE_TOKENS = frozenset(
    {"dr", "med", "prof", "doc", "prim", "mr", "mrs", "ms", "miss", "sc", "mag", "bacc", "rad", "techn",
     "univ", "spec", "ing", "dipl", "phd", "md", "jr", "sr", "ii", "iii", "dent", "pharm", "mba", "msc",
     "bsc", "dott", "mudr", "rndr", "mgr", "herr", "frau", "sir"}
)
# Words of descriptions and narrative reports that the Faker lexicon also holds (checked against the
# default locales); they are never removed by the lexicon, only by the record's own names.
COMMON_WORDS: frozenset[str] = frozenset(
    {"nalaz", "uredan", "uredno", "stanje", "nema", "bez", "lijevo", "desno", "mala", "malo", "veliki",
     "nova", "novo", "stara", "staro", "dan", "nada", "vera", "mira", "zora", "roza", "slava", "rana",
     "sloboda", "vida", "zlata", "jasna", "bistra", "mila", "draga", "cvijeta", "ruza", "lada", "neda",
     "normal", "will", "may", "mark", "grant", "bill", "rose", "april", "june", "august", "page",
     "long", "short", "white", "black", "brown", "green", "young", "hall", "wall", "head", "hand",
     "foot", "back", "bone", "body", "side", "chest", "rib", "hip", "knee", "neck", "arm", "leg",
     "nativ", "native", "kontrast", "contrast", "routine", "standard", "default", "user", "axial",
     "sagittal", "coronal", "scout", "topogram", "lokalizator", "serie", "series", "study", "studie",
     "thorax", "abdomen", "pelvis", "becken", "kopf", "hals", "knie", "fuss", "bein",
     "primary", "original", "derived", "secondary", "other", "none", "test", "phantom", "left",
     "right", "links", "rechts", "pacijent", "patient", "bolesnik", "dijagnoza", "kontrola", "control",
     "doktor", "doctor", "dr", "med", "prof", "lijecnik", "klinika", "bolnica", "odjel", "zavod",
     "mali", "bela", "bijela", "crna", "crni", "plava", "sivo", "siva", "kos", "kralj", "doppler",
     "lower", "upper", "small", "large", "major", "minor", "ray", "stone", "ria", "leber", "colon"}
)
_CJK_PREFIXES = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "HALFWIDTH KATAKANA")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_FOLDED_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_TOKEN_SPLIT = re.compile(r"[\s^=,.;:/\\()\[\]\-_]+")
_RUNS = re.compile(r"\[NAME\](?:[\s,^\-]*\[NAME\])+")
_PRE_TITLE = re.compile(
    r"(?<![^\W_])(?:(?:prof|doc|dr|prim|mr|mrs|ms|sc|med|univ|mag|spec|dipl|ing)\.|(?-i:Prof|Dr|Mr|Mrs|Ms)(?=\s))",
    re.IGNORECASE,
)
_POST_TITLE = re.compile(
    r"(?<![^\W_])(?:dr\.\s?med\.|dr\.\s?sc\.|dr\.\s?med\.\s?dent\.|mag\.|bacc\.|univ\.)",
    re.IGNORECASE,
)
_TITLE_CHAIN = re.compile(
    r"(?:\s*(?:(?:prof|doc|dr|prim|mr|mrs|ms|sc|med|univ|mag|spec|dipl|ing|dent)\.|(?-i:Prof|Dr|Mr|Mrs|Ms)(?=\s)))*",
    re.IGNORECASE,
)
_MAX_NAME_WORDS = 3
_SIGNATURE_COMMA = re.compile(r"[^\W\d_],\s*$")
_CJK_SUBSTRING_MAX = 8


def fold_char(char: str) -> str:
    """One character without case and diacritics (may be empty for a combining mark, or longer)."""
    out = unicodedata.normalize("NFKD", char.translate(_FOLD_TABLE))
    return "".join(c for c in out if not unicodedata.combining(c)).casefold()


def fold(text: str) -> str:
    """Text without case and diacritics (``Đurđica`` → ``durdica``, ``MÜLLER`` → ``muller``)."""
    if text.isascii():
        return text.lower()
    return "".join(fold_char(c) for c in text)


def _fold_with_map(text: str) -> tuple[str, list[int] | None]:
    """The folded text and, for non-ASCII text, the original index of every folded character."""
    if text.isascii():
        return text.lower(), None
    chars: list[str] = []
    index: list[int] = []
    for position, char in enumerate(text):
        for folded in fold_char(char):
            chars.append(folded)
            index.append(position)
    return "".join(chars), index


def _is_unspaced_script(token: str) -> bool:
    """True for tokens in scripts written without spaces between words (CJK, kana, hangul)."""
    for char in token:
        try:
            name = unicodedata.name(char)
        except ValueError:
            continue
        if name.startswith(_CJK_PREFIXES):
            return True
    return False


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


# --- where names come from ----------------------------------------------------------------------


def _person_name_values(ds: Any, depth: int) -> Iterator[str]:
    from pydicom.multival import MultiValue

    for tag in list(ds.keys()):
        try:
            elem = ds.get_item(tag, keep_deferred=True)
            vr = elem.VR
        except Exception:  # noqa: BLE001 - an unreadable element holds no usable name
            continue
        if vr == "SQ":
            if depth <= 0:
                continue
            try:
                items = ds[tag].value or []
            except Exception:  # noqa: BLE001
                continue
            for item in items:
                yield from _person_name_values(item, depth - 1)
        elif vr == "PN":
            try:
                value = ds[tag].value
            except Exception:  # noqa: BLE001
                continue
            values = value if isinstance(value, MultiValue | list | tuple) else [value]
            for item in values:
                if item is None:
                    continue
                try:
                    yield str(item)
                except Exception:  # noqa: BLE001 - undecodable bytes
                    continue


def split_name(value: str) -> set[str]:
    """Folded tokens of one PN value (all component groups), without degrees and initials."""
    tokens: set[str] = set()
    for raw in _TOKEN_SPLIT.split(value):
        token = fold(raw).strip("'’\"`")
        if not token or token in _TITLE_TOKENS:
            continue
        if _is_unspaced_script(token) or (len(token) >= 2 and any(c.isalpha() for c in token)):
            tokens.add(token)
    return tokens


def record_name_tokens(ds: Any, max_depth: int = 16) -> set[str]:
    """Folded name tokens of every PN element of a dataset, nested sequences included.

    Args:
        ds: A pydicom dataset (header read; deferred values are fine).
        max_depth: Sequence levels to descend (the reader already rejects deeper nesting).

    Returns:
        The tokens, e.g. ``{"horvat", "ivan", "山田", "太郎"}``.
    """
    from radnet_spark.dicom.header import quiet_pydicom

    tokens: set[str] = set()
    with quiet_pydicom():
        for value in _person_name_values(ds, max_depth):
            tokens |= split_name(value)
    return tokens


def name_token_hashes(tokens: Iterable[str], salt: str) -> list[str]:
    """Salted HMACs of folded name tokens, sorted: what the parse step stages instead of names."""
    from radnet_spark.dicom.deid import salted_hash

    return sorted({salted_hash("name\x1f" + token, salt) for token in tokens})


@functools.lru_cache(maxsize=8)
def load_lexicon(locales: str = DEFAULT_LEXICON_LOCALES, extra_file: str | None = None) -> frozenset[str]:
    """Folded given names and surnames of the Faker locales (comma-separated), plus an optional file.

    Args:
        locales: Faker locale codes, e.g. ``"hr_HR,en_US"``; empty for no lexicon.
        extra_file: A UTF-8 text file with one name per line, added to the lexicon.

    Returns:
        The folded names (tokens in unspaced scripts and words under three letters left out).

    Raises:
        ValueError: A locale Faker does not ship person names for.
    """
    names: set[str] = set()
    for locale in (part.strip() for part in locales.split(",")):
        if not locale:
            continue
        try:
            module = importlib.import_module(f"faker.providers.person.{locale}")
        except ImportError:
            raise ValueError(
                f"privacy.names_lexicon names locale {locale!r}, for which Faker ships no person names."
            ) from None
        provider = module.Provider
        for attribute in dir(provider):
            if not attribute.startswith(("first_name", "last_name")):
                continue
            value = getattr(provider, attribute)
            if isinstance(value, dict | tuple | list | set | frozenset):
                names.update(item for item in value if isinstance(item, str))
    if extra_file:
        with open(extra_file, encoding="utf-8") as handle:
            names.update(line.strip() for line in handle if line.strip())
    folded: set[str] = set()
    for name in names:
        for token in _TOKEN_SPLIT.split(name):
            token = fold(token)
            if len(token) >= 3 and not _is_unspaced_script(token) and token.isalpha():
                folded.add(token)
    return frozenset(folded)


@functools.lru_cache(maxsize=1)
def _bpe_rules() -> Any:
    from radnet_spark.tags.bpe import load_bpe_rules

    return load_bpe_rules()


@functools.lru_cache(maxsize=65536)
def is_anatomical_word(word: str) -> bool:
    """True when the BodyPartExamined rules read this single word as a body part (or its alias)."""
    rules = _bpe_rules()
    return rules.first_match(word) is not None or rules.from_dicom(word) is not None


def _protected(folded_word: str, word: str) -> bool:
    return folded_word in COMMON_WORDS or folded_word in _TITLE_TOKENS or is_anatomical_word(word)


# --- scrubbing ----------------------------------------------------------------------------------


class NameScrubber:
    """Replaces person names in free text with ``[NAME]``; see the module docstring for the rules.

    Args:
        record_tokens: Folded name tokens of the record in clear (from :func:`record_name_tokens`).
        hashed_tokens: Salted hashes of name tokens (from :func:`name_token_hashes`), for text that is
            matched without the names in clear (the diagnoses).
        salt: The salt of ``hashed_tokens``.
        lexicon: Folded lexicon names (from :func:`load_lexicon`); empty for none.
        titles: Apply the title patterns.
    """

    def __init__(
        self,
        record_tokens: Iterable[str] = (),
        *,
        hashed_tokens: Iterable[str] = (),
        salt: str | None = None,
        lexicon: frozenset[str] = frozenset(),
        titles: bool = True,
    ) -> None:
        tokens = {t for t in record_tokens if t}
        self._unspaced = sorted((t for t in tokens if _is_unspaced_script(t)), key=len, reverse=True)
        spaced = sorted((t for t in tokens if not _is_unspaced_script(t)), key=len, reverse=True)
        self._spaced = (
            re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(t) for t in spaced) + r")(?![^\W_])")
            if spaced else None
        )
        self._hashed = frozenset(hashed_tokens)
        if self._hashed and not salt:
            raise ValueError("Hashed name tokens need their salt.")
        self._salt = salt
        self._lexicon = lexicon
        self._titles = titles

    def __call__(self, text: str | None) -> str | None:
        return self.scrub(text)

    def scrub(self, text: str | None) -> str | None:
        """The text with every name found replaced by ``[NAME]`` (runs of names become one)."""
        if not text:
            return text
        spans = list(self._record_spans(text))
        if self._titles:
            spans += self._title_spans(text)
        if self._lexicon:
            spans += self._lexicon_spans(text)
        if not spans:
            return text
        return _replace(text, spans)

    def _record_spans(self, text: str) -> Iterator[tuple[int, int]]:
        if self._spaced is None and not self._unspaced and not self._hashed:
            return
        folded, index = _fold_with_map(text)

        def original(start: int, end: int) -> tuple[int, int]:
            if index is None:
                return start, end
            return index[start], index[end - 1] + 1

        if self._spaced is not None:
            for match in self._spaced.finditer(folded):
                yield original(match.start(), match.end())
        for token in self._unspaced:
            start = folded.find(token)
            while start >= 0:
                yield original(start, start + len(token))
                start = folded.find(token, start + len(token))
        if self._hashed:
            yield from (original(s, e) for s, e in self._hashed_spans(folded))

    def _hashed_spans(self, folded: str) -> Iterator[tuple[int, int]]:
        from radnet_spark.dicom.deid import salted_hash

        salt = self._salt or ""
        for match in _FOLDED_WORD.finditer(folded):
            word = match.group(0)
            if _is_unspaced_script(word):
                # No spaces between words: every substring up to a name's usual length is a candidate.
                for start in range(len(word)):
                    for end in range(start + 1, min(len(word), start + _CJK_SUBSTRING_MAX) + 1):
                        if salted_hash("name\x1f" + word[start:end], salt) in self._hashed:
                            yield match.start() + start, match.start() + end
            elif salted_hash("name\x1f" + word, salt) in self._hashed:
                yield match.span()

    def _title_spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        signatures: list[tuple[int, int]] = []  # ", dr. med." after a name: no title of what follows
        for match in _POST_TITLE.finditer(text):
            chain = _TITLE_CHAIN.match(text, match.end())
            chain_end = chain.end() if chain else match.end()
            if _SIGNATURE_COMMA.search(text, max(0, match.start() - 8), match.start()):
                # "Ana Babić, dr. med." (the Croatian signature): the name is before the comma, and a
                # capitalised word after the degree starts the next sentence.
                signatures.append((match.start(), chain_end))
            elif _capitalised_words_after(text, chain_end):
                continue  # "dr. med. Ivan Horvat": the degree stands before the name
            spans += _capitalised_words_before(text, match.start())
        for match in _PRE_TITLE.finditer(text):
            if any(start <= match.start() < end for start, end in signatures):
                continue
            chain = _TITLE_CHAIN.match(text, match.end())
            position = chain.end() if chain else match.end()
            spans += _capitalised_words_after(text, position)
        return spans

    def _lexicon_spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in _WORD.finditer(text):
            word = match.group(0)
            if len(word) < 3 or not _is_capitalised(word):
                continue
            folded = fold(word)
            if folded in self._lexicon and not _protected(folded, word):
                yield match.span()


def _name_word(word: str, protect: bool) -> bool:
    """A capitalised word or an initial that is no title (nor, with ``protect``, a body part or common word)."""
    if not _is_capitalised(word):
        return False
    folded = fold(word.rstrip("."))
    if not folded or folded in _TITLE_TOKENS:
        return False
    return not protect or not _protected(folded, word.rstrip("."))


_NAME_WORD_AFTER = re.compile(r"\s*([^\W\d_]+(?:['’\-][^\W\d_]+)*\.?)")
_NAME_WORD_BEFORE = re.compile(r"([^\W\d_]+(?:['’\-][^\W\d_]+)*)[\s,]*$")


def _capitalised_words_after(text: str, position: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for _ in range(_MAX_NAME_WORDS):
        match = _NAME_WORD_AFTER.match(text, position)
        if match is None or not _name_word(match.group(1), protect=False):
            break
        word_start, word_end = match.span(1)
        word = match.group(1)
        # An initial keeps its dot; a full word's trailing dot ends the sentence, not the name.
        if word.endswith(".") and len(word) > 2:
            word_end -= 1
        spans.append((word_start, word_end))
        position = word_end
    return spans


def _capitalised_words_before(text: str, position: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    end = position
    for _ in range(_MAX_NAME_WORDS):
        match = _NAME_WORD_BEFORE.search(text, max(0, end - 80), end)
        if match is None:
            break
        word = match.group(1)
        # Short all-capitals words before a degree are abbreviations (CT, MR, RTG), not names.
        if not _name_word(word, protect=True) or (word.isupper() and len(word) <= 3):
            break
        spans.append(match.span(1))
        end = match.start(1)
    return spans


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if start >= end:
            continue
        # Extend to whole words: a name token matched inside a longer word (CJK aside) takes the word.
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    last = 0
    for start, end in merged:
        out.append(text[last:start])
        out.append(NAME_PLACEHOLDER)
        last = end
    out.append(text[last:])
    return _RUNS.sub(NAME_PLACEHOLDER, "".join(out))
