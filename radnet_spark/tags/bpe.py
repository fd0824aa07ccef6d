"""BodyPartExamined (BPE) imputation from an ordered rule set kept as data (``bpe_rules.yaml``).

The paper evaluates clusters against BPE, which is empty in many instances; like its authors we
infer it from the free-text descriptions with ordered, case-insensitive regular expressions. The
order of work for one instance (details in the YAML header):

1. the instance's own BodyPartExamined, if it is one of :data:`BPE_LABELS` or a known alias of one
   (``THORAX`` → ``CHEST``, ``C_SPNE`` → ``CSPINE``) → source ``dicom``;
2. else the fields StudyDescription, ProtocolName, RequestedProcedureDescription, SeriesDescription
   and finally the unrecognised BodyPartExamined value, each tried against the rules in order; the
   first field with a matching rule decides, and within it the first matching rule → ``rule:<id>``.
   A field naming several regions ("pelvis and hips", "CT toraks i abdomen") is also cut at the
   rule set's separators; the whole text and each part get their first matching rule and the label
   ranked highest in the rule set's ``priority`` wins. Rules marked ``weak`` (procedure words,
   generic terms) get their turn only when no other rule matched in any field;
3. per-modality overrides last (CR/DX: NECK → CSPINE, HEAD → SKULL; skull words imputed on CT/MR:
   SKULL → HEAD); nothing found → ``unknown``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as st

from radnet_spark.errors import UserError

BPE_LABELS: tuple[str, ...] = (
    "WRIST", "FINGER", "ARM", "HAND", "ELBOW", "SKULL", "HEAD", "GITRACT", "HEEL", "ANKLE", "KNEE",
    "FOOT", "LEG", "URINARYTRACT", "CAROTID", "CSPINE", "LSPINE", "TSPINE", "SHOULDER", "CLAVICLE",
    "BREAST", "CHEST", "HIP", "PELVIS", "NECK", "ABDOMEN", "WHOLEBODY", "TEST", "EXTREMITY",
)  # fmt: skip

# DICOM keywords a rule set may list under `fields`, i.e. the inputs of impute_bpe.
RULE_FIELDS: tuple[str, ...] = (
    "StudyDescription",
    "ProtocolName",
    "RequestedProcedureDescription",
    "SeriesDescription",
    "BodyPartExamined",
)
INPUT_COLUMNS: tuple[str, ...] = (*RULE_FIELDS, "Modality")

SOURCE_DICOM = "dicom"
SOURCE_UNKNOWN = "unknown"
RULE_SOURCE_PREFIX = "rule:"

# A Traversable, not a Path: imported from a zip shipped with --py-files the file has no filesystem path.
DEFAULT_RULES_PATH = files(__package__).joinpath("bpe_rules.yaml")

_TOP_LEVEL_KEYS = {"version", "fields", "definitions", "aliases", "rules", "multi_region", "overrides"}
_RULE_KEYS = {"id", "label", "patterns", "pattern", "weak"}
_MULTI_REGION_KEYS = {"split_at", "priority"}
_OVERRIDE_KEYS = {"modalities", "map", "imputed_only"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
# Letters that carry no combining mark in Unicode, so NFKD alone does not fold them.
_FOLD_TABLE = str.maketrans({"ß": "ss", "ẞ": "SS", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM_LOWER = re.compile(r"[^a-z0-9]+")
_NON_ALNUM_UPPER = re.compile(r"[^A-Z0-9]+")


class BpeRulesError(UserError):
    """The BPE rules file is missing, not valid YAML, or breaks the rule-set schema."""


def _strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_TABLE))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def fold_text(text: str) -> str:
    """Reduce a description to what the rule patterns are written against.

    Diacritics are removed (``Pluća`` → ``pluca``, ``Fuß`` → ``fuss``), the text is lower-cased and
    every run of characters other than ASCII letters and digits becomes one space. A camelCase text
    (``CTThorax``, ``KneeLeft``) is followed by its split form, so words glued by a modality's
    naming scheme still match.

    Args:
        text: A DICOM description value.

    Returns:
        The folded text.
    """
    ascii_text = _strip_diacritics(text)
    folded = _NON_ALNUM_LOWER.sub(" ", ascii_text.lower()).strip()
    split = _NON_ALNUM_LOWER.sub(" ", _CAMEL_BOUNDARY.sub(" ", ascii_text).lower()).strip()
    return folded if split == folded else f"{folded} {split}"


def alias_key(value: str) -> str:
    """Reduce a raw BodyPartExamined value to upper-case ASCII letters and digits (``C-Spine`` → ``CSPINE``)."""
    return _NON_ALNUM_UPPER.sub("", _strip_diacritics(value).upper())


@dataclass(frozen=True)
class BpeRule:
    """One rule: if ``pattern`` matches a folded field text, the instance shows ``label``.

    A ``weak`` rule (a procedure word like "pasaža", a generic "extremity") is only tried after no
    ordinary rule matched in any field, so a named organ in a later field beats it.
    """

    id: str
    label: str
    pattern: re.Pattern[str]
    weak: bool = False


@dataclass(frozen=True)
class BpeMultiRegion:
    """How a field that names several regions is resolved.

    Attributes:
        separator: Where a raw field text is cut into parts (``and``, ``i``, ``+``, ``/``, …).
        ranks: Label → rank in the priority list (0 is highest); unlisted labels rank last.
    """

    separator: re.Pattern[str]
    ranks: dict[str, int]

    def rank(self, label: str) -> int:
        """The label's place in the priority list; labels not listed come after all listed ones."""
        return self.ranks.get(label, len(self.ranks))


@dataclass(frozen=True)
class BpeOverride:
    """Label replacements applied last for instances of the given modalities.

    ``imputed_only`` overrides leave a label read from the instance's own BodyPartExamined alone.
    """

    modalities: frozenset[str]
    mapping: dict[str, str]
    imputed_only: bool = False


@dataclass(frozen=True)
class BpeRules:
    """A validated BPE rule set (see :func:`load_bpe_rules`).

    Attributes:
        version: Version string of the rule set, recorded with every pipeline that used it.
        fields: DICOM keywords tried in order.
        aliases: Raw BodyPartExamined value (reduced by :func:`alias_key`) → label; labels map to themselves.
        rules: Ordered rules; the first match in a field wins.
        overrides: Per-modality label replacements.
        source: Where the rule set was read from.
        multi_region: Separators and priority for fields naming several regions; ``None`` keeps
            the first matching rule of the whole field.
    """

    version: str
    fields: tuple[str, ...]
    aliases: dict[str, str]
    rules: tuple[BpeRule, ...]
    overrides: tuple[BpeOverride, ...] = ()
    source: str = ""
    multi_region: BpeMultiRegion | None = None

    def first_match(self, text: str | None, weak: bool | None = None) -> BpeRule | None:
        """The first rule whose pattern matches the folded text, or ``None``.

        Args:
            text: A description.
            weak: ``False``/``True`` tries only ordinary/weak rules; ``None`` tries all in file order.
        """
        if not text or not text.strip():
            return None
        folded = fold_text(text)
        for rule in self.rules:
            if (weak is None or rule.weak == weak) and rule.pattern.search(folded):
                return rule
        return None

    def field_match(self, text: str | None, weak: bool | None = None) -> BpeRule | None:
        """The rule that decides a field's label, resolving descriptions that name several regions.

        The whole text's first matching rule competes with the first matching rule of each part of
        the text cut at the multi-region separators; the rule whose label ranks highest in the
        priority wins, the whole text's rule on a tie. A word that only qualifies another within
        one part ("prst desne šake", finger of the right hand) is left to the rule order.

        Args:
            text: A description.
            weak: As for :meth:`first_match`.

        Returns:
            The deciding rule, or ``None`` when no rule matches.
        """
        whole = self.first_match(text, weak)
        if whole is None or self.multi_region is None or text is None:
            return whole
        multi = self.multi_region
        best = whole
        for part in multi.separator.split(text):
            if part is None or not part.strip():
                continue
            rule = self.first_match(part, weak)
            if rule is not None and multi.rank(rule.label) < multi.rank(best.label):
                best = rule
        return best

    def from_dicom(self, body_part_examined: str | None) -> str | None:
        """The label a raw BodyPartExamined value stands for, or ``None`` when it is empty or unknown."""
        if not body_part_examined:
            return None
        return self.aliases.get(alias_key(body_part_examined))

    def override(self, label: str, modality: str | None, imputed: bool = True) -> str:
        """Apply the per-modality overrides to a found label.

        Args:
            label: The label found.
            modality: The instance's Modality.
            imputed: Whether the label came from the rules (``imputed_only`` overrides need it).

        Returns:
            The label after the overrides.
        """
        key = (modality or "").strip().upper()
        for override in self.overrides:
            if key in override.modalities and (imputed or not override.imputed_only):
                label = override.mapping.get(label, label)
        return label

    def impute(self, values: Mapping[str, str | None], modality: str | None) -> tuple[str | None, str]:
        """Find the label of one instance from its attribute values (missing keys count as empty).

        Args:
            values: DICOM keyword → value for the keywords in :data:`RULE_FIELDS`.
            modality: The instance's Modality.

        Returns:
            ``(label, source)``; ``(None, "unknown")`` when nothing matched.
        """
        label = self.from_dicom(values.get("BodyPartExamined"))
        source = SOURCE_DICOM
        # Every field with the ordinary rules first, then every field again with the weak ones.
        for weak in (False, True):
            if label is not None:
                break
            for field_name in self.fields:
                rule = self.field_match(values.get(field_name), weak=weak)
                if rule is not None:
                    label, source = rule.label, RULE_SOURCE_PREFIX + rule.id
                    break
        if label is None:
            return None, SOURCE_UNKNOWN
        return self.override(label, modality, imputed=source != SOURCE_DICOM), source


def impute_bpe(
    *,
    body_part_examined: str | None,
    study_description: str | None,
    protocol_name: str | None,
    requested_procedure_description: str | None,
    series_description: str | None = None,
    modality: str | None,
    rules: BpeRules,
) -> tuple[str | None, str]:
    """Impute BodyPartExamined for one instance.

    Args:
        body_part_examined: The instance's BodyPartExamined, possibly empty or non-standard.
        study_description: StudyDescription.
        protocol_name: ProtocolName.
        requested_procedure_description: RequestedProcedureDescription.
        series_description: SeriesDescription (tried after the other descriptions).
        modality: Modality, for the per-modality overrides.
        rules: The rule set from :func:`load_bpe_rules`.

    Returns:
        ``(label, source)`` with a label from :data:`BPE_LABELS` and source ``dicom``, ``rule:<id>``,
        or ``(None, "unknown")``.
    """
    values = {
        "BodyPartExamined": body_part_examined,
        "StudyDescription": study_description,
        "ProtocolName": protocol_name,
        "RequestedProcedureDescription": requested_procedure_description,
        "SeriesDescription": series_description,
    }
    return rules.impute(values, modality)


# --- loading and validation ---------------------------------------------------------------------


def _expect(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise BpeRulesError(f"BPE rules file {where}: {message}.")


def _expand(pattern: str, definitions: dict[str, str], where: str, rule_id: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        _expect(name in definitions, where, f"rule {rule_id!r} uses {{{name}}}, which `definitions` lacks")
        return definitions[name]

    return _PLACEHOLDER.sub(substitute, pattern)


def _compile(pattern: str, where: str, rule_id: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise BpeRulesError(
            f"BPE rules file {where}: rule {rule_id!r} has an invalid pattern {pattern!r} ({error})."
        ) from None


def _parse_aliases(raw: Any, where: str) -> dict[str, str]:
    aliases = {label: label for label in BPE_LABELS}
    if raw is None:
        return aliases
    _expect(isinstance(raw, dict), where, "`aliases` must map labels to lists of raw values")
    for label, values in raw.items():
        _expect(label in BPE_LABELS, where, f"`aliases` names {label!r}, which is not a BPE label")
        _expect(isinstance(values, list), where, f"`aliases.{label}` must be a list")
        for value in values:
            key = alias_key(str(value))
            _expect(bool(key), where, f"`aliases.{label}` has an empty value")
            _expect(
                aliases.get(key, label) == label,
                where,
                f"alias {value!r} is given for both {aliases.get(key)} and {label}",
            )
            aliases[key] = label
    return aliases


def _parse_rules(raw: Any, definitions: dict[str, str], where: str) -> tuple[BpeRule, ...]:
    _expect(isinstance(raw, list) and len(raw) > 0, where, "`rules` must be a non-empty list")
    rules: list[BpeRule] = []
    seen: set[str] = set()
    for position, entry in enumerate(raw, start=1):
        _expect(isinstance(entry, dict), where, f"rule #{position} must be a mapping")
        unknown = set(entry) - _RULE_KEYS
        _expect(not unknown, where, f"rule #{position} has unknown keys {sorted(unknown)}")
        rule_id = entry.get("id")
        _expect(isinstance(rule_id, str) and rule_id.strip() != "", where, f"rule #{position} needs an `id`")
        _expect(rule_id not in seen, where, f"rule id {rule_id!r} appears twice")
        seen.add(rule_id)
        label = entry.get("label")
        _expect(label in BPE_LABELS, where, f"rule {rule_id!r} has label {label!r}, not one of the BPE labels")
        patterns = entry.get("patterns", [])
        if "pattern" in entry:
            patterns = [entry["pattern"], *patterns]
        _expect(
            isinstance(patterns, list) and len(patterns) > 0 and all(isinstance(p, str) and p for p in patterns),
            where,
            f"rule {rule_id!r} needs `patterns`, a non-empty list of strings",
        )
        expanded = [_strip_diacritics(_expand(p, definitions, where, rule_id)) for p in patterns]
        for pattern in expanded:
            _compile(pattern, where, rule_id)  # one by one, so the error names the bad pattern
        combined = _compile("|".join(f"(?:{p})" for p in expanded), where, rule_id)
        weak = entry.get("weak", False)
        _expect(isinstance(weak, bool), where, f"rule {rule_id!r} has `weak` {weak!r}; use true or false")
        rules.append(BpeRule(id=rule_id, label=label, pattern=combined, weak=weak))
    return tuple(rules)


def _parse_overrides(raw: Any, where: str) -> tuple[BpeOverride, ...]:
    if raw is None:
        return ()
    _expect(isinstance(raw, list), where, "`overrides` must be a list")
    overrides = []
    for position, entry in enumerate(raw, start=1):
        _expect(isinstance(entry, dict), where, f"override #{position} must be a mapping")
        unknown = set(entry) - _OVERRIDE_KEYS
        _expect(not unknown, where, f"override #{position} has unknown keys {sorted(unknown)}")
        modalities = entry.get("modalities")
        mapping = entry.get("map")
        _expect(
            isinstance(modalities, list) and all(isinstance(m, str) for m in modalities),
            where,
            f"override #{position} needs `modalities`, a list of modality codes",
        )
        _expect(isinstance(mapping, dict), where, f"override #{position} needs `map`, label → label")
        imputed_only = entry.get("imputed_only", False)
        _expect(
            isinstance(imputed_only, bool),
            where,
            f"override #{position} has `imputed_only` {imputed_only!r}; use true or false",
        )
        for source, target in mapping.items():
            _expect(
                source in BPE_LABELS and target in BPE_LABELS,
                where,
                f"override #{position} maps {source!r} to {target!r}; both must be BPE labels",
            )
        overrides.append(
            BpeOverride(
                frozenset(m.strip().upper() for m in modalities),
                {str(k): str(v) for k, v in mapping.items()},
                imputed_only,
            )
        )
    return tuple(overrides)


def _parse_multi_region(raw: Any, where: str) -> BpeMultiRegion | None:
    if raw is None:
        return None
    _expect(isinstance(raw, dict), where, "`multi_region` must be a mapping with `split_at` and `priority`")
    unknown = set(raw) - _MULTI_REGION_KEYS
    _expect(not unknown, where, f"`multi_region` has unknown keys {sorted(unknown)}")
    split_at = raw.get("split_at")
    _expect(
        isinstance(split_at, list) and len(split_at) > 0 and all(isinstance(p, str) and p for p in split_at),
        where,
        "`multi_region.split_at` must be a non-empty list of patterns",
    )
    for pattern in split_at:
        _compile(pattern, where, "multi_region.split_at")
    priority = raw.get("priority")
    _expect(
        isinstance(priority, list) and len(priority) > 0,
        where,
        "`multi_region.priority` must be a non-empty list of labels",
    )
    for label in priority:
        _expect(label in BPE_LABELS, where, f"`multi_region.priority` names {label!r}, which is not a BPE label")
    _expect(len(set(priority)) == len(priority), where, "`multi_region.priority` lists a label twice")
    separator = _compile("|".join(f"(?:{p})" for p in split_at), where, "multi_region.split_at")
    return BpeMultiRegion(separator=separator, ranks={label: rank for rank, label in enumerate(priority)})


def parse_bpe_rules(document: Any, where: str = "<memory>") -> BpeRules:
    """Validate a parsed rules document (the YAML's content) and compile it.

    Args:
        document: The mapping read from a rules YAML file.
        where: Where it came from, for error messages.

    Returns:
        The compiled rule set.

    Raises:
        BpeRulesError: The document breaks the schema or holds an invalid regular expression.
    """
    _expect(isinstance(document, dict), where, "the top level must be a mapping")
    unknown = set(document) - _TOP_LEVEL_KEYS
    _expect(not unknown, where, f"unknown top-level keys {sorted(unknown)}")
    version = document.get("version")
    _expect(isinstance(version, str | int | float) and str(version).strip() != "", where, "`version` is required")
    fields = document.get("fields", list(RULE_FIELDS))
    _expect(
        isinstance(fields, list) and len(fields) > 0 and all(f in RULE_FIELDS for f in fields),
        where,
        f"`fields` must be a non-empty list drawn from {', '.join(RULE_FIELDS)}",
    )
    _expect(len(set(fields)) == len(fields), where, "`fields` lists a field twice")
    definitions = document.get("definitions") or {}
    _expect(
        isinstance(definitions, dict) and all(isinstance(v, str) for v in definitions.values()),
        where,
        "`definitions` must map names to pattern strings",
    )
    rules = _parse_rules(document.get("rules"), definitions, where)
    return BpeRules(
        version=str(version),
        fields=tuple(fields),
        aliases=_parse_aliases(document.get("aliases"), where),
        rules=rules,
        overrides=_parse_overrides(document.get("overrides"), where),
        source=where,
        multi_region=_parse_multi_region(document.get("multi_region"), where),
    )


def load_bpe_rules(path: str | None = None) -> BpeRules:
    """Load and validate a BPE rules file.

    Args:
        path: The YAML file; ``None`` loads the rules shipped with radnet-spark.

    Returns:
        The compiled rule set.

    Raises:
        BpeRulesError: The file is missing, not valid YAML, or breaks the schema.
    """
    rules_path = DEFAULT_RULES_PATH if path is None else Path(path)
    if not rules_path.is_file():
        raise BpeRulesError(f"BPE rules file {rules_path} does not exist.")
    try:
        document = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise BpeRulesError(f"BPE rules file {rules_path} is not valid YAML: {error}.") from None
    return parse_bpe_rules(document, str(rules_path))


# --- Spark --------------------------------------------------------------------------------------

_BPE_STRUCT = st.StructType(
    [st.StructField("bpe", st.StringType()), st.StructField("bpe_source", st.StringType())]
)


def add_bpe_columns(df: DataFrame, rules: BpeRules) -> DataFrame:
    """Add the imputed ``bpe`` and its ``bpe_source`` to a tags DataFrame.

    Input columns are the DICOM keywords of :data:`INPUT_COLUMNS`, matched case-insensitively; a
    missing column counts as empty for every row.

    Args:
        df: One row per instance with (some of) the input columns.
        rules: The rule set from :func:`load_bpe_rules`.

    Returns:
        ``df`` with ``bpe`` (a label or null) and ``bpe_source`` (``dicom``, ``rule:<id>``, ``unknown``).
    """
    by_lower = {name.lower(): name for name in df.columns}
    inputs = [
        sf.col(by_lower[name.lower()]).cast("string")
        if name.lower() in by_lower
        else sf.lit(None).cast("string")
        for name in INPUT_COLUMNS
    ]
    the_rules = rules  # shipped to the executors by value; a BpeRules pickles with its compiled patterns
    names = INPUT_COLUMNS

    @sf.pandas_udf(_BPE_STRUCT)
    def impute(*columns: pd.Series) -> pd.DataFrame:
        # Series of one study repeat the same descriptions for hundreds of instances.
        cache: dict[tuple[str | None, ...], tuple[str | None, str]] = {}
        labels, sources = [], []
        for row in zip(*columns, strict=True):
            key = tuple(None if value is None or value != value else value for value in row)
            if key not in cache:
                values = dict(zip(names[:-1], key[:-1], strict=True))
                cache[key] = the_rules.impute(values, key[-1])
            label, source = cache[key]
            labels.append(label)
            sources.append(source)
        return pd.DataFrame({"bpe": labels, "bpe_source": sources})

    return (
        df.withColumn("_bpe_imputed", impute(*inputs))
        .withColumn("bpe", sf.col("_bpe_imputed.bpe"))
        .withColumn("bpe_source", sf.col("_bpe_imputed.bpe_source"))
        .drop("_bpe_imputed")
    )


def bpe_fill_rates(df: DataFrame, raw_column: str = "BodyPartExamined") -> dict[str, float]:
    """BodyPartExamined fill rates before and after imputation, in one aggregation.

    Args:
        df: Output of :func:`add_bpe_columns`.
        raw_column: The raw BodyPartExamined column (absent counts as empty).

    Returns:
        ``rows`` (count), ``raw_filled`` (share with any raw value), ``before`` (share whose raw value is
        a label or a known alias, i.e. source ``dicom``), ``after`` (share with a label after
        imputation), ``by_rule`` (share labelled by a rule).

    Raises:
        UserError: ``df`` lacks the ``bpe``/``bpe_source`` columns.
    """
    lower = {name.lower(): name for name in df.columns}
    if "bpe" not in lower or "bpe_source" not in lower:
        raise UserError("Fill rates need the bpe and bpe_source columns; apply add_bpe_columns first.")
    raw = (
        sf.col(lower[raw_column.lower()]).cast("string")
        if raw_column.lower() in lower
        else sf.lit(None).cast("string")
    )

    def share(condition: Any, name: str) -> Any:
        return sf.sum(sf.when(condition, 1).otherwise(0)).alias(name)

    row = df.agg(
        sf.count(sf.lit(1)).alias("rows"),
        share(raw.isNotNull() & (sf.trim(raw) != ""), "raw_filled"),
        share(sf.col("bpe_source") == SOURCE_DICOM, "before"),
        share(sf.col("bpe").isNotNull(), "after"),
        share(sf.col("bpe_source").startswith(RULE_SOURCE_PREFIX), "by_rule"),
    ).first()
    rows = int(row["rows"])
    rates: dict[str, float] = {"rows": rows}
    for name in ("raw_filled", "before", "after", "by_rule"):
        rates[name] = (int(row[name] or 0) / rows) if rows else 0.0
    return rates
