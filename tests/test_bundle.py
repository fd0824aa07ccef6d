"""The Databricks Asset Bundle (databricks.yml, resources/*.yml) points at things that exist in the repo."""

from __future__ import annotations

import ast
import glob
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from radnet_spark.cli import build_parser
from radnet_spark.config import PrivacyConfig

REPO = Path(__file__).resolve().parent.parent
VARIABLE = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")
NOTEBOOK_HEADER = "# Databricks notebook source"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return _load(REPO / "databricks.yml")


@pytest.fixture(scope="module")
def resource_files(bundle) -> list[Path]:
    files = sorted({Path(p) for pattern in bundle["include"] for p in glob.glob(str(REPO / pattern))})
    assert files, "the include patterns match no resource file"
    return files


@pytest.fixture(scope="module")
def jobs(resource_files) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every job of the bundle: name → (the file that defines it, its definition)."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in resource_files:
        for name, job in _load(path).get("resources", {}).get("jobs", {}).items():
            found[name] = (path, job)
    return found


def _resolve(value: Any, variables: dict[str, Any]) -> Any:
    """Substitute ``${var.x}`` with the variable's default, the way `databricks bundle` does."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: str(variables[m.group(1)]["default"]), value)
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    return value


# Quartz: seconds minutes hours day-of-month month day-of-week [year]; one of the two days is '?'.
QUARTZ_FIELDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2099)]
MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"


def _quartz_value_ok(token: str, low: int, high: int, names: str) -> bool:
    if names and re.fullmatch(names, token.upper()):
        return True
    return token.isdigit() and low <= int(token) <= high


def is_valid_quartz(expression: str) -> bool:
    fields = expression.split()
    if len(fields) not in (6, 7):
        return False
    if (fields[3] == "?") == (fields[5] == "?"):
        return False
    for index, field in enumerate(fields):
        low, high = QUARTZ_FIELDS[index]
        names = MONTHS if index == 4 else DAYS if index == 5 else ""
        if field in ("*", "?") and (field == "*" or index in (3, 5)):
            continue
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                return False
            bounds = base.split("-") if base != "*" else []
            if len(bounds) > 2 or not all(_quartz_value_ok(b, low, high, names) for b in bounds):
                return False
    return True


@pytest.mark.parametrize("expression", ["0 0 2 * * ?", "0 30 1 ? * MON-FRI", "0 0/15 * * * ?", "0 0 3 1 * ? 2027"])
def test_quartz_check_accepts_valid_expressions(expression):
    assert is_valid_quartz(expression)


@pytest.mark.parametrize("expression", ["0 2 * * *", "0 0 2 * * *", "0 0 25 * * ?", "0 61 1 * * ?", "0 0 2 ? * ?"])
def test_quartz_check_rejects_unix_cron_and_out_of_range_fields(expression):
    assert not is_valid_quartz(expression)


def test_bundle_builds_the_wheel_from_setup_py(bundle):
    artifact = bundle["artifacts"]["default"]
    assert artifact["type"] == "whl"
    assert (REPO / artifact.get("path", ".") / "setup.py").is_file()
    assert "wheel" in artifact["build"] and "dist" in artifact["build"]


def test_every_variable_used_is_declared_with_a_default_and_every_declared_one_is_used(bundle, resource_files):
    declared = bundle["variables"]
    used = set(VARIABLE.findall((REPO / "databricks.yml").read_text(encoding="utf-8")))
    for path in resource_files:
        used |= set(VARIABLE.findall(path.read_text(encoding="utf-8")))
    assert used <= set(declared), f"undeclared: {used - set(declared)}"
    assert set(declared) <= used, f"declared but unused: {set(declared) - used}"
    assert all("default" in spec and spec.get("description") for spec in declared.values())


def test_relabel_job_runs_on_a_valid_quartz_schedule(bundle, jobs):
    _, job = jobs["radnet_relabel"]
    schedule = _resolve(job["schedule"], bundle["variables"])
    assert is_valid_quartz(schedule["quartz_cron_expression"]), schedule["quartz_cron_expression"]
    assert schedule["timezone_id"]
    assert job.get("max_concurrent_runs") == 1


def test_job_clusters_take_runtime_and_node_type_from_variables_and_the_salt_from_a_secret(jobs):
    for name, (_, job) in jobs.items():
        for cluster in job["job_clusters"]:
            spec = cluster["new_cluster"]
            assert VARIABLE.fullmatch(str(spec["spark_version"])), name
            assert VARIABLE.fullmatch(str(spec["node_type_id"])), name
            salt = spec["spark_env_vars"][PrivacyConfig().salt_env]
            assert re.fullmatch(r"\{\{secrets/[^/]+/[^/]+\}\}", salt), salt


def _widgets(notebook: Path) -> set[str]:
    """Names passed to the notebook's ``widget(name, ...)`` helper."""
    tree = ast.parse(notebook.read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "widget"
        and node.args and isinstance(node.args[0], ast.Constant)
    }


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "entry_points":
                    scripts = ast.literal_eval(keyword.value)["console_scripts"]
                    return dict(line.replace(" ", "").split("=", 1) for line in scripts)
    return {}


def check_task(task: dict[str, Any], defined_in: Path, variables: dict[str, Any]) -> None:
    """Fail unless the task runs something this repository has, with parameters it accepts."""
    libraries = [lib.get("whl") for lib in task.get("libraries", [])]
    assert (defined_in.parent / "../dist/*.whl").resolve() in [(defined_in.parent / w).resolve() for w in libraries if w], (
        f"task {task['task_key']} does not install the bundle's wheel"
    )
    if "notebook_task" in task:
        notebook = (defined_in.parent / task["notebook_task"]["notebook_path"]).resolve()
        assert notebook.is_file(), f"{notebook} does not exist"
        assert notebook.read_text(encoding="utf-8").startswith(NOTEBOOK_HEADER)
        unknown = set(task["notebook_task"].get("base_parameters", {})) - _widgets(notebook)
        assert not unknown, f"{notebook.name} has no widgets {unknown}"
    elif "python_wheel_task" in task:
        wheel = task["python_wheel_task"]
        scripts = _console_scripts()
        assert wheel["entry_point"] in scripts, f"setup.py has no console script {wheel['entry_point']}"
        assert scripts[wheel["entry_point"]] == "radnet_spark.cli:main"
        # argparse exits on an unknown subcommand or a missing required option.
        build_parser().parse_args([str(p) for p in _resolve(wheel["parameters"], variables)])
    else:
        raise AssertionError(f"task {task['task_key']} is neither a notebook nor a wheel task; extend this test")


def test_every_job_task_runs_a_notebook_or_entry_point_of_this_repository(bundle, jobs):
    tasks = 0
    for path, job in jobs.values():
        keys = {task["task_key"] for task in job["tasks"]}
        clusters = {cluster["job_cluster_key"] for cluster in job["job_clusters"]}
        for task in job["tasks"]:
            check_task(task, path, bundle["variables"])
            assert task["job_cluster_key"] in clusters
            assert {d["task_key"] for d in task.get("depends_on", [])} <= keys
            tasks += 1
    assert tasks >= 2


def test_relabel_job_labels_with_the_label_notebook_and_a_training_job_exists(jobs):
    path, relabel = jobs["radnet_relabel"]
    notebooks = {Path(t["notebook_task"]["notebook_path"]).name for t in relabel["tasks"] if "notebook_task" in t}
    assert notebooks == {"03_label_new_dump.py"}
    _, train = jobs["radnet_train"]
    assert any("02_train_pipeline" in str(t.get("notebook_task", {}).get("notebook_path")) for t in train["tasks"])


def test_a_wheel_task_running_radnet_label_would_be_accepted(bundle):
    # docs/databricks.md shows the wheel-task form of the nightly job; its parameters must parse.
    task = {
        "task_key": "label",
        "python_wheel_task": {
            "package_name": "radnet_spark", "entry_point": "radnet",
            "parameters": ["label", "--pipeline", "${var.pipeline_path}", "--dicom", "${var.dump_path}",
                           "--out", "${var.warehouse}"],
        },
        "libraries": [{"whl": "../dist/*.whl"}],
    }
    check_task(task, REPO / "resources" / "relabel_job.yml", bundle["variables"])
    task["python_wheel_task"]["parameters"][0] = "relabel"
    with pytest.raises(SystemExit):
        check_task(task, REPO / "resources" / "relabel_job.yml", bundle["variables"])
