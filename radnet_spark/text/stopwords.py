"""Stop-words of the stemming language, as stems: what cluster cards must never show.

The lists come from the ``stopwordsiso`` package (the stopwords-iso collection, MIT licence), which
covers Croatian and every Snowball language the stemmer offers. They are stemmed with the same
stemmer as the diagnoses, so the stop stems match the stems in the ``diagnoses`` table.
"""

from __future__ import annotations

import functools

from radnet_spark.text.stemming import clean_text, get_stemmer

# Stemmer language names → ISO 639-1 codes of stopwords-iso.
ISO_CODES = {
    "arabic": "ar", "armenian": "hy", "basque": "eu", "catalan": "ca", "croatian": "hr", "danish": "da",
    "dutch": "nl", "english": "en", "finnish": "fi", "french": "fr", "german": "de", "greek": "el",
    "hindi": "hi", "hungarian": "hu", "indonesian": "id", "irish": "ga", "italian": "it",
    "lithuanian": "lt", "nepali": "ne", "norwegian": "no", "portuguese": "pt", "romanian": "ro",
    "russian": "ru", "serbian": "sr", "spanish": "es", "swedish": "sv", "tamil": "ta", "turkish": "tr",
    "yiddish": "yi",
}


@functools.lru_cache(maxsize=8)
def stop_stems(language: str) -> frozenset[str]:
    """Stems of the language's stop-words (empty when the collection has no list for it)."""
    import stopwordsiso

    name = language.strip().lower()
    code = ISO_CODES.get(name)
    if code is None or not stopwordsiso.has_lang(code):
        return frozenset()
    stem = get_stemmer(name)
    stems = set()
    for word in stopwordsiso.stopwords(code):
        for token in clean_text(word).split():
            stems.add(stem(token))
            stems.add(token)
    return frozenset(stems)
