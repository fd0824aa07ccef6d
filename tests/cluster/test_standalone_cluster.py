"""`radnet run` submitted to a real Spark standalone cluster (a master and two 1-core workers on loopback).

What it proves: the shipped artifact (``dist/radnet_spark-*.zip``, the wheel's files, via ``--py-files``)
is enough for the driver and the executors — no import of the repository — and a cluster run labels
exactly like a ``local[2]`` run of the same command on the same data and settings.

The "environment pre-installed on every node" is a throw-away venv whose only content is a ``.pth``
line pointing at this venv's site-packages: every dependency, but not the editable radnet_spark
(a ``.pth`` inside a directory added by another ``.pth`` is never executed, so the editable finder
stays off). Run with ``make cluster-test``; it holds the Spark lock for its whole duration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from radnet_spark.synth import DefectRates, generate_pacs

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
MASTER = "spark://127.0.0.1:7077"
SUBMIT_TIMEOUT_S = 1200
# With 12 exams the 80/10/10 exam split can leave validation empty, which training refuses; under
# this salt the dump's exams fall 8/2/2 (96/14/18 instances).
SALT = "cluster-test-salt-35"
# The settings of tests/test_pipeline.py: tiny training, the paper's method otherwise.
FAST = [
    "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.ae_max_epochs=3",
    "image.max_epochs=2", "image.cae_filters=[8,8,16,16]", "image.pca_components=16",
    "text.epochs=5", "text.vector_size=16", "text.min_word_frequency=2",
    "cluster.k_min=2", "cluster.k_max=8", "cluster.k_step=1",
]


def _tail(path: Path, lines: int = 40) -> str:
    # Spark's INFO/WARN chatter follows the Python traceback; keep what explains the failure.
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join([line for line in text if " INFO " not in line and " WARN " not in line][-lines:])


@pytest.fixture(scope="module")
def node_python(tmp_path_factory) -> str:
    """A Python with every dependency of radnet-spark but no radnet_spark, like a bare cluster node."""
    env_dir = tmp_path_factory.mktemp("node-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "node-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    return str(python)


@pytest.fixture(scope="module")
def shipped_zip(tmp_path_factory) -> Path:
    """``scripts/build_dist.sh``'s zip for --py-files, built into a temporary dist folder."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [str(REPO / "scripts" / "build_dist.sh"), str(out)], check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A started standalone cluster; always stopped again, also when the test fails."""
    state = tmp_path_factory.mktemp("cluster")
    script = str(REPO / "scripts" / "standalone_cluster.sh")
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        subprocess.run([script, "start", str(state)], check=True, env=env, timeout=180)
        yield state
    finally:
        subprocess.run([script, "stop", str(state)], check=False, env=env, timeout=60)


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pacs")
    generate_pacs(root, exams=12, seed=5, defect_rates=DefectRates.none(), workers=1)
    return root


def _submit(master: str, dump: Path, out: Path, node_python: str, shipped_zip: Path, log_dir: Path) -> None:
    """``spark-submit jobs/run.py`` from an empty working directory, as an operator would."""
    cwd = log_dir / "cwd"
    cwd.mkdir(parents=True)
    command = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", master,
        "--py-files", str(shipped_zip),
        "--properties-file", str(REPO / "spark-defaults.conf"),
        "--conf", f"spark.pyspark.python={node_python}",
        "--conf", f"spark.pyspark.driver.python={node_python}",
        # Small JVMs: this may run next to the test session's own local Spark on a CI runner.
        "--conf", "spark.driver.memory=2g",
        "--conf", "spark.executor.memory=1g",
        "--conf", "spark.ui.showConsoleProgress=false",
        str(REPO / "jobs" / "run.py"),
        "--dicom", (dump / "dicom").as_uri(),
        "--diagnoses", (dump / "diagnoses.csv").as_uri(),
        "--out", (out / "warehouse").as_uri(),
        "--models", (out / "models").as_uri(),
    ]
    for setting in FAST:
        command += ["--set", setting]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_MASTER")}
    env.update(PYSPARK_PYTHON=node_python, PYSPARK_DRIVER_PYTHON=node_python, RADNET_SALT=SALT)
    stdout, stderr = log_dir / "submit.out", log_dir / "submit.err"
    with stdout.open("w") as out_file, stderr.open("w") as err_file:
        finished = subprocess.run(command, cwd=cwd, env=env, stdout=out_file, stderr=err_file,
                                  timeout=SUBMIT_TIMEOUT_S)
    assert finished.returncode == 0, f"spark-submit --master {master} failed:\n{_tail(stderr)}"


def _labels(warehouse: Path) -> pd.DataFrame:
    return pd.read_parquet(warehouse / "labels", columns=["sop_instance_uid", "cluster", "pipeline_version"])


@pytest.fixture(scope="module")
def cluster_run(cluster, dump, node_python, shipped_zip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("on-cluster")
    _submit(MASTER, dump, out, node_python, shipped_zip, out)
    return out


@pytest.fixture(scope="module")
def local_run(cluster_run, dump, node_python, shipped_zip, tmp_path_factory) -> Path:
    # After the cluster run (the fixture depends on it) so the two never share the two cores.
    out = tmp_path_factory.mktemp("local")
    _submit("local[2]", dump, out, node_python, shipped_zip, out)
    return out


def test_node_environment_cannot_import_radnet_spark_without_the_shipped_zip(node_python):
    bare = subprocess.run([node_python, "-c", "import radnet_spark"], capture_output=True, text=True,
                          cwd="/", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert bare.returncode != 0 and "No module named 'radnet_spark'" in bare.stderr
    deps = subprocess.run([node_python, "-c", "import pandas, pyarrow, torch, pydicom, pyspark"], cwd="/")
    assert deps.returncode == 0


def test_both_workers_ran_executors_of_the_application(cluster, cluster_run):
    # Each worker writes app-*/<executor id>/stderr under its work folder for every executor it ran.
    for worker in ("work-1", "work-2"):
        assert list((cluster / worker).glob("app-*/*/stderr")), f"{worker} ran no executor"


def test_cluster_run_labels_every_tagged_instance_once_and_writes_the_report(cluster_run):
    warehouse = cluster_run / "warehouse"
    tags = pd.read_parquet(warehouse / "tags", columns=["sop_instance_uid"])
    labels = _labels(warehouse)
    assert len(tags) > 0
    assert len(labels) == len(tags) == labels["sop_instance_uid"].nunique()
    assert set(labels["sop_instance_uid"]) == set(tags["sop_instance_uid"])
    assert labels["cluster"].nunique() >= 2
    assert "data:image/png;base64" in (warehouse / "report" / "index.html").read_text(encoding="utf-8")
    # --models was a file:// URI: the version lands under it, not in a "file:" folder of the cwd.
    version = labels["pipeline_version"].iloc[0]
    assert (cluster_run / "models" / "default" / version / "manifest.json").is_file()


def test_cluster_and_local_runs_give_every_instance_the_same_cluster(cluster_run, local_run):
    on_cluster = _labels(cluster_run / "warehouse").set_index("sop_instance_uid")["cluster"]
    local = _labels(local_run / "warehouse").set_index("sop_instance_uid")["cluster"]
    assert set(on_cluster.index) == set(local.index)
    both = pd.DataFrame({"cluster": on_cluster, "local": local.reindex(on_cluster.index)})
    contingency = pd.crosstab(both["cluster"], both["local"])
    assert both["cluster"].equals(both["local"]), f"cluster vs local[2] labels differ:\n{contingency}"
