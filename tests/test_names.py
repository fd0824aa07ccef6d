"""Person names out of free text: the record's own names, titles, the lexicon; body parts survive (no Spark)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radnet_spark.dicom.deid import salted_hash
from radnet_spark.dicom.names import (
    NAME_PLACEHOLDER,
    NameScrubber,
    load_lexicon,
    name_token_hashes,
    record_name_tokens,
    split_name,
)


@pytest.fixture(scope="module")
def lexicon() -> frozenset[str]:
    return load_lexicon()


def record(**names: str) -> Dataset:
    ds = Dataset()
    for keyword, value in names.items():
        setattr(ds, keyword, value)
    return ds


def test_pn_components_are_tokens_without_degrees() -> None:
    assert split_name("Prpić-Ščukanec^Berislav^^dr. med.") == {"prpic", "scukanec", "berislav"}
    # Kana are folded like Latin letters (voicing marks are diacritics), in names and in text alike.
    assert split_name("Yamada^Tarou=山田^太郎=やまだ^たろう") == {"yamada", "tarou", "山田", "太郎", "やまた", "たろう"}


def test_record_names_are_collected_from_every_pn_attribute_and_sequence() -> None:
    observer = Dataset()
    observer.VerifyingObserverName = "Brezovečki^Jasenka"
    ds = record(PatientName="Horvat^Ivan", OperatorsName="Kovač^Ana", ReferringPhysicianName="Babić^Marko")
    ds.VerifyingObserverSequence = Sequence([observer])
    assert record_name_tokens(ds) == {"horvat", "ivan", "kovac", "ana", "babic", "marko", "brezovecki", "jasenka"}


@pytest.mark.parametrize(
    "text",
    ["CT glave - pacijent IVAN HORVAT", "CT glave - pacijent Horvat Ivan", "CT glave - pacijent horvat-ivan",
     "CT glave - pacijent Hórvát Iván"],
)
def test_record_names_go_in_any_order_case_diacritics_and_joins(text: str) -> None:
    scrubbed = NameScrubber({"horvat", "ivan"}).scrub(text)
    assert scrubbed == f"CT glave - pacijent {NAME_PLACEHOLDER}"


def test_record_name_inside_a_longer_word_is_no_match() -> None:
    assert NameScrubber({"ana"}).scrub("Analiza abdomena") == "Analiza abdomena"


def test_record_names_in_unspaced_scripts_match_as_substrings() -> None:
    assert NameScrubber({"山田", "太郎"}).scrub("頭部CT 山田太郎") == f"頭部CT {NAME_PLACEHOLDER}"


def test_titles_take_the_capitalised_words_after_them() -> None:
    scrubbed = NameScrubber().scrub("Nalaz napisao prim. dr. sc. Krunoslav Vidaković. Kontrola za mjesec dana.")
    assert scrubbed == f"Nalaz napisao prim. dr. sc. {NAME_PLACEHOLDER}. Kontrola za mjesec dana."
    assert NameScrubber().scrub("Seen by Dr Smith today") == f"Seen by Dr {NAME_PLACEHOLDER} today"


def test_a_signature_before_its_degree_goes_and_the_next_sentence_stays() -> None:
    scrubbed = NameScrubber().scrub("Pregledao: Dalibor Kuštrak, dr. med. Kontrolu dogovoriti.")
    assert scrubbed == f"Pregledao: {NAME_PLACEHOLDER}, dr. med. Kontrolu dogovoriti."


def test_abbreviations_before_a_degree_are_no_names() -> None:
    assert NameScrubber().scrub("Nalaz RTG dr. med.") == "Nalaz RTG dr. med."


def test_lexicon_names_go_without_title_or_record(lexicon: frozenset[str]) -> None:
    assert "horvat" in lexicon and "ivana" in lexicon
    scrubbed = NameScrubber(lexicon=lexicon).scrub("Kontrolu dogovorila Ivana Horvat.")
    assert scrubbed == f"Kontrolu dogovorila {NAME_PLACEHOLDER}."


@pytest.mark.parametrize(
    "text",
    ["CT Glava nativno", "MR Kralježnica LS", "RTG Prsni koš PA", "CT Abdomen i zdjelica", "MR Koljeno desno",
     "Glava Vrat CT", "Hand AP and lateral", "Chest PA", "Knee MRI", "Mala zdjelica"],
)
def test_body_part_words_survive_the_lexicon_and_titles(text: str, lexicon: frozenset[str]) -> None:
    assert NameScrubber(lexicon=lexicon).scrub(text) == text


def test_lower_case_words_are_never_taken_by_the_lexicon(lexicon: frozenset[str]) -> None:
    assert NameScrubber(lexicon=lexicon).scrub("uredan nalaz, bez promjena") == "uredan nalaz, bez promjena"


def test_hashed_record_tokens_scrub_a_diagnosis_without_the_names_in_clear() -> None:
    hashes = name_token_hashes({"horvat", "ivan", "山田"}, "salt")
    assert all("horvat" not in h for h in hashes)
    assert salted_hash("name\x1fhorvat", "salt") in hashes
    scrubbed = NameScrubber(hashed_tokens=hashes, salt="salt").scrub("Pacijent HORVAT Ivan, CT glave uredan. 山田様")
    assert scrubbed == f"Pacijent {NAME_PLACEHOLDER}, CT glave uredan. {NAME_PLACEHOLDER}様"


def test_hashed_tokens_need_their_salt() -> None:
    with pytest.raises(ValueError):
        NameScrubber(hashed_tokens=["x"])
