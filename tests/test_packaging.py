"""Every requirement is a name and version the package registry serves: no paths, no URLs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][0-9A-Za-z.!]*$")
REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9,_-]+\])?\s*([<>=!~]=?[^,;@\s]+\s*,?\s*)*(;.*)?$")


def _setup_requirements() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("INSTALL_REQUIRES", "EXTRAS_REQUIRE"):
            value = ast.literal_eval(node.value)
            found += value if isinstance(value, list) else [r for group in value.values() for r in group]
    return found


def _constraint_lines() -> list[str]:
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_constraint_is_an_exact_registry_pin():
    lines = _constraint_lines()
    assert lines
    not_pins = [line for line in lines if not PIN.match(line)]
    assert not_pins == [], f"constraints.txt lines that are not name==version (path, URL or local label): {not_pins}"


def test_no_requirement_or_extra_names_a_path_or_url():
    requirements = _setup_requirements()
    assert len(requirements) > 10
    bad = [r for r in requirements if not REQUIREMENT.match(r) or "://" in r or "@" in r or "/" in r]
    assert bad == [], f"setup.py requirements that are not registry names with versions: {bad}"


def test_every_requirement_is_pinned_in_the_constraints():
    pinned = {_name(line) for line in _constraint_lines()}
    # Opt-in extras with a licence or size the default install avoids are pinned when a user adds them;
    # so are the GCS and Azure filesystems, which no test here exercises (no emulator is installed).
    optional = {"pylibjpeg-libjpeg", "gcsfs", "adlfs"}
    unpinned = sorted({_name(r) for r in _setup_requirements()} - pinned - optional)
    assert unpinned == [], f"requirements without a pin in constraints.txt: {unpinned}"


def test_install_commands_take_packages_from_the_registry_only():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines() if "$(PIP) install" in line or "pip install" in line]
    assert installs
    for line in installs:
        assert "file:" not in line and "://" not in line and ".whl" not in line, line
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "PIP_NO_CACHE_DIR=1" in ci and "make test" in ci


def test_the_pipeline_fingerprints_its_packaged_bpe_rules_when_run_from_the_shipped_zip(tmp_path):
    """``spark-submit --py-files radnet_spark.zip``: package resources are ``zipfile.Path``, not files."""
    import hashlib
    import subprocess
    import sys
    import zipfile

    shipped = tmp_path / "radnet_spark.zip"
    with zipfile.ZipFile(shipped, "w") as archive:
        for source in (ROOT / "radnet_spark").rglob("*"):
            if source.is_file() and "__pycache__" not in source.parts:
                archive.write(source, source.relative_to(ROOT).as_posix())
    probe = (
        "import radnet_spark.tags.bpe as bpe, radnet_spark.stages as stages;"
        "assert '.zip' in bpe.__file__, bpe.__file__;"
        "print(stages.file_fingerprint(bpe.DEFAULT_RULES_PATH))"
    )
    printed = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(shipped)}, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.strip()
    rules = (ROOT / "radnet_spark" / "tags" / "bpe_rules.yaml").read_bytes()
    assert printed == hashlib.sha256(rules).hexdigest()[:16]
