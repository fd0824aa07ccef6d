import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from radnet_spark.config import (
    ConfigError,
    RadnetConfig,
    label_config,
    load_config,
    read_settings,
    write_effective_config,
)


def test_defaults_are_the_papers_values():
    config = load_config()
    assert config.tags.min_fill_rate == 0.2
    assert config.tags.max_categories == 50
    assert config.tags.missforest_trees == 256
    assert config.tags.ae_bottleneck == 32
    assert config.tags.pca_components == 50
    assert config.ingest.image_size == 128
    assert config.ingest.min_max_value == 64
    assert config.image.max_epochs == 40
    assert config.image.pca_components == 500
    assert config.text.min_word_frequency == 5
    assert config.cluster.view_k == {"tags": 25, "image": 40, "diagnosis": 20}
    assert (config.split.train, config.split.validation, config.split.test) == (0.8, 0.1, 0.1)


def test_yaml_then_cli_overrides_apply_in_order(tmp_path: Path):
    config_file = tmp_path / "radnet.yaml"
    config_file.write_text(yaml.safe_dump({"ingest": {"image_size": 64, "min_max_value": 32}}))
    config = load_config(config_file, ["ingest.image_size=256", "cluster.views=tags,image"])
    assert config.ingest.image_size == 256
    assert config.ingest.min_max_value == 32
    assert config.cluster.views == ["tags", "image"]


def test_unknown_setting_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="Unknown setting ingest.imagesize"):
        load_config(None, ["ingest.imagesize=3"])


def test_wrong_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="ingest.image_size must be int"):
        load_config(None, ["ingest.image_size=big"])


def test_missing_config_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_effective_config_round_trips(tmp_path: Path):
    config = load_config(None, ["tags.embedder=pca"])
    written = write_effective_config(config, tmp_path, "features")
    again = load_config(written)
    assert again == config


def _enumerated_settings() -> list[tuple[str, tuple[str, ...]]]:
    """Every setting whose type is a Literal (or a list/mapping of one), with its allowed values."""
    found = []
    for section in dataclasses.fields(RadnetConfig):
        hints = typing.get_type_hints(section.default_factory)
        for name, hint in hints.items():
            inner = hint
            while typing.get_origin(inner) in (list, dict):
                inner = typing.get_args(inner)[0]
            if typing.get_origin(inner) is typing.Literal:
                found.append((f"{section.name}.{name}", typing.get_args(inner)))
    return found


ENUMERATED = _enumerated_settings()
MAPPINGS = ("cluster.view_k", "cluster.view_weights")  # settings keyed by an enumerated name


def test_enumerated_settings_cover_every_choice_the_pipeline_makes():
    names = {name for name, _ in ENUMERATED}
    assert {
        "tags.categorical_overflow", "tags.imputer", "tags.embedder", "text.embedder", "cluster.views",
        "cluster.fusion", "cluster.missing_view", "cluster.algorithm", "cluster.distance", "cluster.engine",
        "cluster.view_k",
    } <= names


@pytest.mark.parametrize(("setting", "allowed"), ENUMERATED, ids=[name for name, _ in ENUMERATED])
def test_a_typo_in_an_enumerated_setting_names_the_setting_value_and_choices(setting, allowed):
    typo = f"{allowed[0]}x"
    value = f"{{{typo}: 3}}" if setting in MAPPINGS else typo
    with pytest.raises(ConfigError) as raised:
        load_config(None, [f"{setting}={value}"])
    message = str(raised.value)
    assert setting in message and typo in message
    assert all(choice in message for choice in allowed)


@pytest.mark.parametrize(("setting", "allowed"), ENUMERATED, ids=[name for name, _ in ENUMERATED])
def test_every_allowed_value_of_an_enumerated_setting_loads(setting, allowed):
    for choice in allowed:
        if setting in MAPPINGS:
            config = load_config(None, [f"{setting}={{{choice}: 7}}"])
            assert getattr(config.cluster, setting.split(".")[1])[choice] == 7
        elif setting == "cluster.views":
            assert load_config(None, [f"{setting}={choice}"]).cluster.views == [choice]
        else:
            section, name = setting.split(".")
            assert getattr(getattr(load_config(None, [f"{setting}={choice}"]), section), name) == choice


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("split.test=0.2", "split.train + split.validation + split.test must be 1"),
        ("cluster.k=1", "cluster.k must be at least 2"),
        ("cluster.k_max=1", "cluster.k_max must be at least cluster.k_min"),
        ("ingest.stem_language=klingon", "ingest.stem_language must be one of"),
        ("ingest.image_size=0", "ingest.image_size must be at least 1"),
        ("image.max_epochs=-1", "image.max_epochs must be zero or more"),
        ("ingest.image_size=2.5", "ingest.image_size must be int"),
        ("cluster.views=[]", "cluster.views must be at least one"),
        ("tags.min_fill_rate=1.5", "tags.min_fill_rate must be at most 1"),
        ("privacy.keep_dates=maybe", "privacy.keep_dates must be bool"),
    ],
)
def test_values_outside_their_range_are_rejected_at_load(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("+", r"\+")):
        load_config(None, [override])


def test_a_mapping_override_updates_one_key():
    config = load_config(None, ["cluster.view_k={tags: 7}"])
    assert config.cluster.view_k == {"tags": 7, "image": 40, "diagnosis": 20}


def test_settings_earlier_releases_had_still_load_from_a_saved_config(tmp_path: Path, caplog):
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump({"ingest": {"max_files_per_exam": None, "image_size": 64},
                                     "text": {"lda_topics": 20}}))
    with caplog.at_level("WARNING", logger="radnet_spark.config"):
        assert load_config(saved).ingest.image_size == 64
    assert "text.lda_topics was removed" in caplog.text


def test_label_keeps_the_pipelines_settings_and_applies_runtime_ones():
    trained = load_config(None, ["tags.missforest_trees=32", "cluster.k=12"])
    settings = read_settings(None, ["ingest.file_batch_size=16", "spark.master=local[1]", "tags.missforest_trees=32"])
    config = label_config(trained, settings, "models/x/v1")
    assert config.ingest.file_batch_size == 16
    assert config.spark.master == "local[1]"
    assert config.tags.missforest_trees == 32 and config.cluster.k == 12


def test_label_refuses_to_change_a_setting_fixed_by_the_pipeline():
    trained = load_config(None, ["cluster.k=12"])
    with pytest.raises(ConfigError, match=r"cannot change cluster\.k=20 \(pipeline has 12\).*models/x/v1"):
        label_config(trained, read_settings(None, ["cluster.k=20"]), "models/x/v1")


def test_an_unknown_names_lexicon_locale_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"privacy\.names_lexicon must be Faker locales.*hr_HR.*got 'xx_XX'"):
        load_config(None, ["privacy.names_lexicon=hr_HR,xx_XX"])
    assert load_config(None, ["privacy.names_lexicon=en_US,sl_SI"]).privacy.names_lexicon == "en_US,sl_SI"
    assert load_config(None, ["privacy.names_lexicon="]).privacy.names_lexicon == ""


def test_a_missing_names_lexicon_file_is_refused_at_load(tmp_path: Path):
    missing = tmp_path / "names.txt"
    with pytest.raises(ConfigError, match=r"privacy\.names_lexicon_file must be an existing text file.*names\.txt"):
        load_config(None, [f"privacy.names_lexicon_file={missing}"])
    missing.write_text("Zvonimirka\n", encoding="utf-8")
    assert load_config(None, [f"privacy.names_lexicon_file={missing}"]).privacy.names_lexicon_file == str(missing)
