"""Word-level text normalisation for narrative diagnoses: clean, tokenize, stem.

Croatian (the paper's language) uses the ``croatian-stemmer`` package (Ljubešić–Pandžić rules,
LGPL-3.0); every language Snowball knows (``english``, ``german``, ``serbian``, …) is available by
name through ``snowballstemmer``; ``none`` keeps words as they are.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable

DEFAULT_LANGUAGE = "croatian"
NO_STEMMING = "none"

# Everything that is not a letter or a digit separates words; ``_`` counts as a separator too.
_NON_WORD = re.compile(r"[\W_]+")

# Per-process cache of stemmed words; diagnoses repeat the same few thousand words endlessly.
_WORD_CACHE_SIZE = 200_000


def clean_text(text: str) -> str:
    """Lower-case a text and replace punctuation and special characters by single spaces.

    Letters of any alphabet survive with their diacritics (``čćžšđ``, ``äöüß``), so Croatian words
    keep their spelling for the stemmer; digits survive too (sizes, vertebra numbers).

    Args:
        text: Raw text.

    Returns:
        The cleaned text: lower-case words separated by one space, no leading/trailing space.
    """
    # NFC first so a letter typed as base + combining accent is one character like its precomposed twin.
    composed = unicodedata.normalize("NFC", text).lower()
    return _NON_WORD.sub(" ", composed).strip()


def tokenize(clean: str) -> list[str]:
    """Split cleaned text into words.

    Args:
        clean: Output of :func:`clean_text`.

    Returns:
        The words in order.
    """
    return clean.split()


def available_languages() -> tuple[str, ...]:
    """Names :func:`get_stemmer` accepts: ``croatian``, ``none`` and Snowball's algorithms."""
    import snowballstemmer

    return tuple(sorted({DEFAULT_LANGUAGE, NO_STEMMING, *snowballstemmer.algorithms()}))


@functools.cache
def get_stemmer(language: str = DEFAULT_LANGUAGE) -> Callable[[str], str]:
    """Return a word stemmer for a language, built once per process.

    Args:
        language: ``croatian`` (default), any Snowball algorithm name (``english``, ``german``, …),
            or ``none`` for no stemming. Case and surrounding spaces are ignored.

    Returns:
        A function mapping one lower-case word to its stem.

    Raises:
        ValueError: The language has no stemmer.
    """
    name = language.strip().lower()
    if name == NO_STEMMING:
        return _identity
    if name == DEFAULT_LANGUAGE:
        from croatian_stemmer import stem

        return functools.lru_cache(maxsize=_WORD_CACHE_SIZE)(stem)
    import snowballstemmer

    if name not in snowballstemmer.algorithms():
        raise ValueError(
            f"No stemmer for language {language!r}; choose one of: {', '.join(available_languages())}."
        )
    snowball = snowballstemmer.stemmer(name)
    return functools.lru_cache(maxsize=_WORD_CACHE_SIZE)(snowball.stemWord)


def _identity(word: str) -> str:
    return word


def stem_tokens(tokens: Iterable[str], language: str = DEFAULT_LANGUAGE) -> list[str]:
    """Stem every word of a token list.

    Args:
        tokens: Words from :func:`tokenize`.
        language: See :func:`get_stemmer`.

    Returns:
        One stem per word, in order.
    """
    stem = get_stemmer(language)
    return [stem(token) for token in tokens]
