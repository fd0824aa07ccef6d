"""BodyPartExamined imputation: the shipped rule set, its loader, and the Spark transform."""

from __future__ import annotations

import pandas as pd
import pytest

from radnet_spark.tags.bpe import (
    BPE_LABELS,
    BpeRulesError,
    add_bpe_columns,
    bpe_fill_rates,
    fold_text,
    impute_bpe,
    load_bpe_rules,
    parse_bpe_rules,
)


@pytest.fixture(scope="module")
def rules():
    return load_bpe_rules()


def _from_study(rules, text, modality="CT"):
    return impute_bpe(
        body_part_examined=None,
        study_description=text,
        protocol_name=None,
        requested_procedure_description=None,
        modality=modality,
        rules=rules,
    )


# One description per label, so every label is shown reachable by the shipped rules (CT unless
# EXAMPLE_MODALITY says otherwise: skull words are SKULL on radiographs only).
EXAMPLE_MODALITY = {"SKULL": "CR"}
EXAMPLE_PER_LABEL = {
    "WRIST": "RTG ručnog zgloba lijevo",
    "FINGER": "RTG prsta desne šake",
    "ARM": "RTG podlaktice",
    "HAND": "RTG obje šake",
    "ELBOW": "RTG lakta AP/LL",
    "SKULL": "RTG lubanje",
    "HEAD": "CT mozga nativno",
    "GITRACT": "Pasaža jednjaka i želuca",
    "HEEL": "RTG petne kosti",
    "ANKLE": "RTG gležnja",
    "KNEE": "MR desnog koljena",
    "FOOT": "RTG stopala",
    "LEG": "RTG potkoljenice",
    "URINARYTRACT": "IV urografija",
    "CAROTID": "CTA karotida",
    "CSPINE": "MR vratne kralježnice",
    "LSPINE": "RTG LS kralježnice",
    "TSPINE": "MR torakalne kralježnice",
    "SHOULDER": "MR ramena",
    "CLAVICLE": "RTG ključne kosti",
    "BREAST": "Mamografija obostrano",
    "CHEST": "RTG pluća PA",
    "HIP": "RTG kuka",
    "PELVIS": "MR zdjelice",
    "NECK": "CT vrata",
    "ABDOMEN": "MSCT abdomena",
    "WHOLEBODY": "CT cijelog tijela",
    "TEST": "Phantom QA",
    "EXTREMITY": "RTG ekstremiteta",
}


def test_shipped_rules_load_with_a_version(rules):
    assert rules.version and isinstance(rules.version, str)
    assert rules.fields[:3] == ("StudyDescription", "ProtocolName", "RequestedProcedureDescription")


def test_labels_are_the_29_of_the_paper():
    assert len(BPE_LABELS) == 29 == len(set(BPE_LABELS))


def test_every_label_has_a_rule(rules):
    assert {rule.label for rule in rules.rules} == set(BPE_LABELS)


@pytest.mark.parametrize(("label", "text"), sorted(EXAMPLE_PER_LABEL.items()))
def test_every_label_is_reachable_from_a_croatian_description(rules, label, text):
    assert _from_study(rules, text, modality=EXAMPLE_MODALITY.get(label, "CT"))[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("RTG pluća", "CHEST"),
        ("RTG plucima", "CHEST"),  # missing diacritics, other case
        ("CT prsnog koša", "CHEST"),
        ("CT toraksa", "CHEST"),
        ("MR glave", "HEAD"),
        ("MR vratne kralj.", "CSPINE"),
        ("RTG vratne kraljeznice", "CSPINE"),
        ("MR kralježnice, lumbalni dio", "LSPINE"),
        ("RTG torakalne kralješnice", "TSPINE"),
        ("Rtg desnog koljena", "KNEE"),
        ("RTG koljena", "KNEE"),
        ("MR lijevog ramena", "SHOULDER"),
        ("RTG lakta", "ELBOW"),
        ("RTG lijeve šake", "HAND"),
        ("RTG lijeve sake", "HAND"),
        ("RTG ručnog zgloba", "WRIST"),
        ("RTG skočnog zgloba", "ANKLE"),
        ("RTG stopala", "FOOT"),
        ("RTG petne kosti", "HEEL"),
        ("RTG zdjelice i kukova", "PELVIS"),  # two regions: the trunk wins (multi_region.priority)
        ("Nativna snimka trbuha", "ABDOMEN"),
        ("MR dojki", "BREAST"),
        ("Doppler karotida", "CAROTID"),
        ("Mikcijska cistouretrografija", "URINARYTRACT"),
        ("Irigografija", "GITRACT"),
        ("Pasaža tankog crijeva", "GITRACT"),
    ],
)
def test_croatian_descriptions_in_inflected_forms_and_without_diacritics(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("thorax", "CHEST"),
        ("caput", "HEAD"),
        ("genu dex.", "KNEE"),
        ("manus l. sin.", "HAND"),
        ("carpus", "WRIST"),
        ("calcaneus", "HEEL"),
        ("pelvis", "PELVIS"),
        ("columna cervicalis", "CSPINE"),
        ("columna vertebralis thoracalis", "TSPINE"),
        ("columna lumbalis", "LSPINE"),
        ("articulatio cubiti", "ELBOW"),
        ("articulatio coxae", "HIP"),
        ("collum femoris", "HIP"),
        ("clavicula", "CLAVICLE"),
    ],
)
def test_latin_descriptions(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Chest PA", "CHEST"),
        ("Brain MRI", "HEAD"),
        ("Heel bone", "HEEL"),
        ("Left thumb", "FINGER"),
        ("Barium swallow", "GITRACT"),
        ("Cervical spine", "CSPINE"),
        ("Lumbar spine", "LSPINE"),
        ("Whole body", "WHOLEBODY"),
        ("Upper abdomen", "ABDOMEN"),
        ("Kidneys ureters bladder", "URINARYTRACT"),
    ],
)
def test_english_descriptions(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("cCT Schädel-Hirn", "HEAD"),
        ("Knie rechts", "KNEE"),
        ("Schulter links", "SHOULDER"),
        ("Becken", "PELVIS"),
        ("Hand", "HAND"),
        ("Handgelenk", "WRIST"),
        ("Fuß", "FOOT"),
        ("Fersenbein", "HEEL"),
        ("Halswirbelsäule", "CSPINE"),
        ("Brustwirbelsäule", "TSPINE"),
        ("Lendenwirbelsäule", "LSPINE"),
        ("Rö-Thorax", "CHEST"),
        ("Ganzkörper", "WHOLEBODY"),
    ],
)
def test_german_descriptions(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [("torax", "CHEST"), ("thorx", "CHEST"), ("RTG kolena", "KNEE"), ("CT vrattna kraljeznica", "CSPINE")],
)
def test_common_typos(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("c-spine", "CSPINE"),
        ("cspine", "CSPINE"),
        ("c_spine", "CSPINE"),
        ("C spine", "CSPINE"),
        ("RTG CS", "CSPINE"),
        ("HWS", "CSPINE"),
        ("RTG LS", "LSPINE"),
        ("L-SPINE", "LSPINE"),
        ("RTG TS", "TSPINE"),
        ("Th kralj.", "TSPINE"),
        ("BWS", "TSPINE"),
        ("LWS", "LSPINE"),
        ("RTG pc", "CHEST"),
        ("IVU", "URINARYTRACT"),
        ("OSG", "ANKLE"),
        ("abd.", "ABDOMEN"),
    ],
)
def test_abbreviations(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label", "rule_id"),
    [
        ("RTG prsta šake", "FINGER", "finger"),  # finger before hand
        ("RTG palca stopala", "FOOT", "foot-toes"),  # toes before fingers
        ("RTG ručnog zgloba", "WRIST", "wrist"),  # wrist ("ruč…") before arm ("ruka")
        ("MR vratne kralježnice", "CSPINE", "cspine"),  # c-spine before neck ("vrat")
        ("CTA vratnih arterija", "CAROTID", "carotid"),  # carotids before neck
        ("Petna kost stopala", "HEEL", "heel"),  # heel before foot
        ("Vrat bedrene kosti", "HIP", "hip-femoral-neck"),  # femoral neck is no neck
        ("Torakalna kralježnica", "TSPINE", "tspine"),  # spine before chest ("torak…")
        ("Pasaža male zdjelice", "PELVIS", "pelvis"),  # a named part beats a procedure word
    ],
)
def test_the_first_matching_rule_wins(rules, text, label, rule_id):
    assert _from_study(rules, text) == (label, f"rule:{rule_id}")


def test_study_description_wins_over_protocol_name_and_request(rules):
    result = impute_bpe(
        body_part_examined=None,
        study_description="RTG koljena",
        protocol_name="Thorax_routine",
        requested_procedure_description="RTG šake",
        modality="CR",
        rules=rules,
    )
    assert result == ("KNEE", "rule:knee")


def test_later_fields_are_tried_when_earlier_ones_name_no_part(rules):
    result = impute_bpe(
        body_part_examined=None,
        study_description="Kontrolni pregled",
        protocol_name="Routine",
        requested_procedure_description="MR lijevog ramena",
        series_description="Thorax 1.0 B70f",
        modality="MR",
        rules=rules,
    )
    assert result == ("SHOULDER", "rule:shoulder")


def test_series_description_is_the_last_description_tried(rules):
    result = impute_bpe(
        body_part_examined=None,
        study_description="CT",
        protocol_name=None,
        requested_procedure_description=None,
        series_description="Abdomen 5.0 B30f",
        modality="CT",
        rules=rules,
    )
    assert result == ("ABDOMEN", "rule:abdomen")


def test_a_procedure_word_yields_to_a_part_named_in_a_later_field(rules):
    common = {"body_part_examined": None, "requested_procedure_description": None, "modality": "RF"}
    assert impute_bpe(**common, study_description="Pasaža", protocol_name="Nieren", rules=rules) == (
        "URINARYTRACT",
        "rule:urinarytract",
    )
    assert impute_bpe(**common, study_description="Pasaža", protocol_name=None, rules=rules) == (
        "GITRACT",
        "rule:gitract-procedure",
    )


def test_a_generic_extremity_yields_to_a_specific_limb_part(rules):
    common = {"body_part_examined": None, "requested_procedure_description": None, "modality": "XA"}
    assert impute_bpe(**common, study_description="Angio ekstremiteta", protocol_name="crus", rules=rules) == (
        "LEG",
        "rule:leg",
    )
    assert impute_bpe(**common, study_description="Angio ekstremiteta", protocol_name=None, rules=rules) == (
        "EXTREMITY",
        "rule:extremity",
    )


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("CHEST", "CHEST"),
        ("THORAX", "CHEST"),
        ("C_SPNE", "CSPINE"),
        ("C-SPINE", "CSPINE"),
        ("Schulter", "SHOULDER"),
        ("EXTREM", "EXTREMITY"),
        ("L-SPINE", "LSPINE"),
        ("ABD", "ABDOMEN"),
        ("SCHAEDEL", "SKULL"),
        ("Schädel", "SKULL"),
        ("HEAD_NECK", "HEAD"),
        ("  knee ", "KNEE"),
    ],
)
def test_raw_body_part_values_are_normalised_and_win_over_descriptions(rules, raw, label):
    result = impute_bpe(
        body_part_examined=raw,
        study_description="RTG pluća",
        protocol_name=None,
        requested_procedure_description=None,
        modality="CT",
        rules=rules,
    )
    assert result == (label, "dicom")


def test_unrecognised_raw_value_falls_back_to_descriptions_then_to_its_own_words(rules):
    from_description = impute_bpe(
        body_part_examined="SEE NOTES",
        study_description="RTG pluća",
        protocol_name=None,
        requested_procedure_description=None,
        modality="CR",
        rules=rules,
    )
    assert from_description == ("CHEST", "rule:chest")
    from_raw_words = impute_bpe(
        body_part_examined="LEFT KNEE JOINT",
        study_description="Kontrola",
        protocol_name=None,
        requested_procedure_description=None,
        modality="CR",
        rules=rules,
    )
    assert from_raw_words == ("KNEE", "rule:knee")


def test_cr_maps_neck_to_cspine_and_head_to_skull(rules):
    assert _from_study(rules, "RTG vrata", modality="CR") == ("CSPINE", "rule:neck")
    assert _from_study(rules, "RTG glave", modality="CR") == ("SKULL", "rule:head")
    assert impute_bpe(
        body_part_examined="HEAD",
        study_description=None,
        protocol_name=None,
        requested_procedure_description=None,
        modality="CR",
        rules=rules,
    ) == ("SKULL", "dicom")


def test_other_modalities_keep_neck_and_head(rules):
    assert _from_study(rules, "CT vrata", modality="CT") == ("NECK", "rule:neck")
    assert _from_study(rules, "MR glave", modality="MR") == ("HEAD", "rule:head")


def test_dx_radiographs_are_treated_like_cr(rules):
    assert _from_study(rules, "Head", modality="DX") == ("SKULL", "rule:head")
    assert _from_study(rules, "RTG vrata", modality="DX") == ("CSPINE", "rule:neck")


@pytest.mark.parametrize(
    "text", ["RTG lubanje", "Schädel 2 Ebenen", "Schaedel", "cranium", "OPG", "paranazalni sinusi", "NNH"]
)
def test_skull_words_are_skull_on_radiographs_and_head_on_sectional_imaging(rules, text):
    assert _from_study(rules, text, modality="CR") == ("SKULL", "rule:skull")
    for modality in ("CT", "MR", "XA"):
        assert _from_study(rules, text, modality=modality) == ("HEAD", "rule:skull")


def test_a_body_part_written_by_the_modality_is_not_turned_from_skull_into_head(rules):
    result = impute_bpe(
        body_part_examined="SKULL",
        study_description="CT lubanje",
        protocol_name=None,
        requested_procedure_description=None,
        modality="CT",
        rules=rules,
    )
    assert result == ("SKULL", "dicom")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("pelvis and hips", "PELVIS"),  # trunk before limb
        ("Becken und Hüfte links", "PELVIS"),
        ("CT toraks i abdomen", "ABDOMEN"),  # chest + abdomen -> ABDOMEN
        ("CT Thorax/Abdomen", "ABDOMEN"),
        ("TDM thoraco-abdomino-pelvienne", "ABDOMEN"),  # hyphenated words are parts too
        ("CT chest abdomen pelvis", "ABDOMEN"),  # no separator: the chest-abdomen rule
        ("CT vrata i prsnog koša", "CHEST"),  # neck + chest -> CHEST
        ("MR glave i vrata", "NECK"),  # head + neck -> NECK
        ("CT glave i vratne kralježnice", "CSPINE"),  # a spine segment before head
        ("MR vratne i lumbalne kralježnice", "LSPINE"),  # the most caudal segment
        ("hand and wrist", "HAND"),  # the containing region
        ("ankle + foot", "FOOT"),
        ("RTG koljena i potkoljenice", "LEG"),
        ("Doppler karotida i vrata", "CAROTID"),
        ("RTG ekstremiteta i šake", "HAND"),  # EXTREMITY last
    ],
)
def test_descriptions_naming_several_regions_follow_the_priority(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("RTG prsta desne šake", "FINGER"),  # "of the right hand" qualifies the finger
        ("Handgelenk rechts", "WRIST"),
        ("C/Spine", "CSPINE"),  # a cut that splits one name keeps the whole text's match
        ("RTG srca i pluća", "CHEST"),
        ("RTG pulmo et cor", "CHEST"),
        ("Angio-CT der Halsgefäße", "CAROTID"),
    ],
)
def test_qualifiers_and_one_region_texts_are_not_split_into_regions(rules, text, label):
    assert _from_study(rules, text, modality="CR" if text.startswith("RTG") else "CT")[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("TC addome completo", "ABDOMEN"),
        ("RM ginocchio dx", "KNEE"),
        ("RX rachide lombo-sacrale", "LSPINE"),
        ("IRM rachis cervical", "CSPINE"),
        ("Radiographie cheville", "ANKLE"),
        ("Rx bassin de face", "PELVIS"),
        ("RTG kolka", "HIP"),
        ("MR ledvene hrbtenice", "LSPINE"),
        ("RTG prsne hrbtenice", "TSPINE"),
        ("CT trebuha", "ABDOMEN"),
    ],
)
def test_italian_french_and_slovenian_descriptions(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("RX de rodilla derecha", "KNEE"),  # Spanish
        ("RM de columna lumbosacra", "LSPINE"),
        ("Ecografía de vejiga y riñones", "URINARYTRACT"),
        ("RX de hombro izquierdo", "SHOULDER"),
        ("RX de joelho esquerdo", "KNEE"),  # Portuguese
        ("RM de quadril", "HIP"),
        ("RTG nadgarstka lewego", "WRIST"),  # Polish
        ("TK kręgosłupa lędźwiowego", "LSPINE"),
        ("RTG kolenního kloubu vlevo", "KNEE"),  # Czech
        ("CT hrudníku", "CHEST"),
        ("Bal térd rtg", "KNEE"),  # Hungarian
        ("Ágyéki gerinc rtg", "LSPINE"),
        ("MRI schouder links", "SHOULDER"),  # Dutch
        ("X-pols rechts", "WRIST"),
        ("RM colonna cervicale", "CSPINE"),  # Italian colonna is the spine, not the colon
    ],
)
def test_spanish_portuguese_polish_czech_hungarian_and_dutch_descriptions(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("RTG kolana oraz podudzia", "LEG"),  # Polish oraz
        ("Unterarm mit Handgelenk", "ARM"),  # German mit
        ("XR PELVIS W BOTH HIPS", "PELVIS"),  # w = with
        ("Kéz és ujjak rtg", "HAND"),  # Hungarian és
        ("RX cadera y pelvis", "PELVIS"),  # Spanish y
        ("CT břicha a hrudníku", "ABDOMEN"),  # Czech a
        ("MRI sacro-iliac joints", "PELVIS"),  # a joint named with a hyphen is one part
        ("CT thoracolumbar spine", "LSPINE"),  # the more caudal segment
        ("RM colonna cervico-dorsale", "TSPINE"),
    ],
)
def test_more_languages_separators_and_joint_names_follow_the_priority(rules, text, label):
    assert _from_study(rules, text)[0] == label


@pytest.mark.parametrize(
    ("text", "modality", "label"),
    [
        ("CXR ?CAP", "CR", "CHEST"),  # CAP after a radiograph is a pneumonia, not chest-abdomen-pelvis
        ("CT CAP with contrast", "CT", "ABDOMEN"),
        ("LWS im Stehen", "CR", "LSPINE"),  # German stehen (standing) is not the Czech thigh
        ("Cardiac MR (CMR)", "MR", "CHEST"),  # CMR is cardiac, not the German cranial cMRT
        ("cMRT nativ", "MR", "HEAD"),
    ],
)
def test_short_words_of_one_language_do_not_mislead_in_another(rules, text, modality, label):
    assert _from_study(rules, text, modality=modality)[0] == label


@pytest.mark.parametrize("text", [None, "", "Kontrolni pregled", "Routine", "T1 T2 FLAIR", "UZV testisa"])
def test_descriptions_naming_no_part_give_unknown(rules, text):
    assert _from_study(rules, text) == (None, "unknown")


def test_fold_text_drops_diacritics_separators_and_splits_camel_case():
    assert fold_text("Pluća_PA^Fuß") == "pluca pa fuss"
    assert fold_text("CTThorax") == "ctthorax ct thorax"


# --- loading errors -------------------------------------------------------------------------------


def _write(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_missing_rules_file_is_a_clear_error(tmp_path):
    with pytest.raises(BpeRulesError, match="does not exist"):
        load_bpe_rules(str(tmp_path / "nope.yaml"))


def test_invalid_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(BpeRulesError, match="not valid YAML"):
        load_bpe_rules(_write(tmp_path, "version: [1\nrules: {"))


def test_invalid_regex_names_the_rule(tmp_path):
    text = 'version: "1"\nrules:\n  - id: broken\n    label: KNEE\n    patterns: ["(knee"]\n'
    with pytest.raises(BpeRulesError, match="'broken' has an invalid pattern"):
        load_bpe_rules(_write(tmp_path, text))


def test_unknown_label_is_rejected(tmp_path):
    text = 'version: "1"\nrules:\n  - id: toe\n    label: TOE\n    patterns: ["toe"]\n'
    with pytest.raises(BpeRulesError, match="'TOE'"):
        load_bpe_rules(_write(tmp_path, text))


def test_duplicate_rule_ids_and_undefined_placeholders_are_rejected(tmp_path):
    twice = 'version: "1"\nrules:\n  - {id: a, label: KNEE, patterns: [knee]}\n  - {id: a, label: HIP, patterns: [hip]}\n'
    with pytest.raises(BpeRulesError, match="appears twice"):
        load_bpe_rules(_write(tmp_path, twice))
    undefined = 'version: "1"\nrules:\n  - {id: a, label: KNEE, patterns: ["{nothing} knee"]}\n'
    with pytest.raises(BpeRulesError, match="nothing"):
        load_bpe_rules(_write(tmp_path, undefined))


def test_weak_flag_must_be_a_boolean(tmp_path):
    text = 'version: "1"\nrules:\n  - {id: a, label: KNEE, weak: maybe, patterns: [knee]}\n'
    with pytest.raises(BpeRulesError, match="weak"):
        load_bpe_rules(_write(tmp_path, text))


def test_multi_region_priority_must_name_labels_once(tmp_path):
    base = 'version: "1"\nrules:\n  - {id: a, label: KNEE, patterns: [knee]}\nmulti_region:\n  split_at: [" and "]\n'
    with pytest.raises(BpeRulesError, match="'TOE'"):
        load_bpe_rules(_write(tmp_path, base + "  priority: [KNEE, TOE]\n"))
    with pytest.raises(BpeRulesError, match="twice"):
        load_bpe_rules(_write(tmp_path, base + "  priority: [KNEE, HIP, KNEE]\n"))
    with pytest.raises(BpeRulesError, match="split_at"):
        load_bpe_rules(_write(tmp_path, base.replace('[" and "]', "[]") + "  priority: [KNEE]\n"))


def test_imputed_only_must_be_a_boolean(tmp_path):
    text = 'version: "1"\nrules:\n  - {id: a, label: KNEE, patterns: [knee]}\noverrides:\n  - {modalities: [CT], imputed_only: yes please, map: {KNEE: LEG}}\n'
    with pytest.raises(BpeRulesError, match="imputed_only"):
        load_bpe_rules(_write(tmp_path, text))


def test_without_multi_region_the_first_matching_rule_of_the_whole_field_decides(tmp_path):
    rules_text = "rules:\n  - {id: hip, label: HIP, patterns: [hip]}\n  - {id: pelvis, label: PELVIS, patterns: [pelvis]}\n"
    plain = load_bpe_rules(_write(tmp_path, 'version: "1"\n' + rules_text))
    with_priority = parse_bpe_rules(
        {
            "version": "1",
            "rules": [
                {"id": "hip", "label": "HIP", "patterns": ["hip"]},
                {"id": "pelvis", "label": "PELVIS", "patterns": ["pelvis"]},
            ],
            "multi_region": {"split_at": [r"\band\b"], "priority": ["PELVIS", "HIP"]},
        }
    )
    assert _from_study(plain, "pelvis and hips") == ("HIP", "rule:hip")
    assert _from_study(with_priority, "pelvis and hips") == ("PELVIS", "rule:pelvis")
    assert _from_study(with_priority, "hips") == ("HIP", "rule:hip")


def test_a_minimal_custom_rule_set_works(tmp_path):
    text = (
        'version: "local-1"\nfields: [ProtocolName]\n'
        "rules:\n  - {id: knee-local, label: KNEE, patterns: ['\\bkoljeno\\b']}\n"
        "overrides:\n  - {modalities: [DX], map: {KNEE: LEG}}\n"
    )
    custom = load_bpe_rules(_write(tmp_path, text))
    assert custom.version == "local-1"
    common = {"body_part_examined": None, "study_description": "koljeno", "requested_procedure_description": None}
    assert impute_bpe(**common, protocol_name=None, modality="CR", rules=custom) == (None, "unknown")
    assert impute_bpe(**common, protocol_name="Koljeno", modality="DX", rules=custom) == ("LEG", "rule:knee-local")


# --- Spark ----------------------------------------------------------------------------------------


def _tags(spark):
    rows = pd.DataFrame(
        {
            "sop_instance_uid": ["1", "2", "3", "4", "5"],
            "Modality": ["CT", "CR", "CR", "MR", "CT"],
            "BodyPartExamined": ["THORAX", None, "", None, None],
            "StudyDescription": ["CT toraksa", "RTG vrata", None, "Kontrola", "Routine"],
            "ProtocolName": [None, None, "Knie_Routine", "MR koljena", None],
        }
    )
    return spark.createDataFrame(rows)


def test_add_bpe_columns_imputes_each_row_and_tolerates_missing_columns(spark, rules):
    out = add_bpe_columns(_tags(spark), rules)
    assert out.columns[-2:] == ["bpe", "bpe_source"]
    result = {row["sop_instance_uid"]: (row["bpe"], row["bpe_source"]) for row in out.collect()}
    assert result == {
        "1": ("CHEST", "dicom"),
        "2": ("CSPINE", "rule:neck"),
        "3": ("KNEE", "rule:knee"),
        "4": ("KNEE", "rule:knee"),
        "5": (None, "unknown"),
    }


def test_bpe_fill_rates_before_and_after_imputation(spark, rules):
    rates = bpe_fill_rates(add_bpe_columns(_tags(spark), rules))
    assert rates["rows"] == 5
    assert rates["raw_filled"] == pytest.approx(1 / 5)
    assert rates["before"] == pytest.approx(1 / 5)
    assert rates["after"] == pytest.approx(4 / 5)
    assert rates["by_rule"] == pytest.approx(3 / 5)
