import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from radnet_spark.cli import main

# Spark's own log lines (log4j's "yy/MM/dd HH:mm:ss LEVEL Logger: message") and the JVM's start-up notes.
SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN) \w+", re.MULTILINE)
JVM_NOTES = ("WARNING: Using incubator modules", "Setting default log level to")


def test_missing_dicom_folder_exits_2_with_one_sentence(tmp_path, capsys):
    code = main(["ingest", "--dicom", str(tmp_path / "absent"), "--out", str(tmp_path / "wh")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "absent is not a directory" in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_bad_override_exits_2(tmp_path, capsys):
    (tmp_path / "dump").mkdir()
    code = main(["ingest", "--dicom", str(tmp_path / "dump"), "--out", str(tmp_path / "wh"),
                 "--set", "ingest.image_size=huge"])
    assert code == 2
    assert "ingest.image_size must be int" in capsys.readouterr().err


def test_module_entry_point_shows_subcommands():
    result = subprocess.run([sys.executable, "-m", "radnet_spark", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("synth", "ingest"):
        assert command in result.stdout


def test_unknown_subcommand_exits_2():
    result = subprocess.run([sys.executable, "-m", "radnet_spark", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_a_typo_in_a_setting_stops_every_spark_command_before_any_work(tmp_path):
    (tmp_path / "dump").mkdir()
    warehouse = tmp_path / "wh"
    for command in ("ingest", "run", "features", "cluster"):
        result = subprocess.run(
            [sys.executable, "-m", "radnet_spark", command, "--dicom", str(tmp_path / "dump"), "--out", str(warehouse),
             "--set", "cluster.fusion=embedding"],
            capture_output=True, text=True,
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "cluster.fusion" in lines[0] and "embedding" in lines[0] and "clusterprobs" in lines[0]
        assert not warehouse.exists()


def test_label_with_a_missing_pipeline_is_one_sentence(tmp_path, capsys):
    (tmp_path / "dump").mkdir()
    code = main(["label", "--pipeline", str(tmp_path / "models" / "x" / "v1"), "--dicom", str(tmp_path / "dump"),
                 "--out", str(tmp_path / "wh")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a pipeline version" in err


def _radnet(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RADNET_SALT": "test-salt-not-secret"}
    return subprocess.run([sys.executable, "-m", "radnet_spark", *args], capture_output=True, text=True,
                          env=environment, timeout=900)


def _one_file_dump(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(get_testdata_file(name, download=False), folder / name)
    return folder


def _tiny(command: str, dump: Path, warehouse: Path, *flags: str) -> subprocess.CompletedProcess:
    return _radnet(command, "--dicom", str(dump), "--out", str(warehouse), "--master", "local[2]", *flags)


@pytest.fixture(scope="module")
def quiet_ingest(tmp_path_factory):
    """A one-file `radnet ingest` with the default (quiet) logs: its result and warehouse."""
    root = tmp_path_factory.mktemp("quiet")
    warehouse = root / "warehouse"
    result = _tiny("ingest", _one_file_dump(root / "ct", "CT_small.dcm"), warehouse)
    return result, warehouse, root


def test_spark_log_lines_stay_off_the_terminal_by_default(quiet_ingest):
    result, _, _ = quiet_ingest
    assert result.returncode == 0, result.stderr
    assert "1 new files" in result.stdout
    assert not SPARK_LOG_LINE.search(result.stderr), result.stderr
    assert not any(note in result.stderr for note in JVM_NOTES), result.stderr
    assert "INFO radnet_spark.ingest.job: ingest" in result.stderr  # radnet's own progress lines stay


def test_verbose_brings_spark_log_lines_back(tmp_path):
    result = _tiny("ingest", _one_file_dump(tmp_path / "mr", "MR_small.dcm"), tmp_path / "warehouse", "--verbose")
    assert result.returncode == 0, result.stderr
    assert SPARK_LOG_LINE.search(result.stderr), result.stderr


def test_a_spark_failure_is_one_sentence_with_its_root_cause_and_exit_1(quiet_ingest):
    _, warehouse, root = quiet_ingest
    corrupt = root / "corrupt-warehouse"
    shutil.copytree(warehouse, corrupt)
    (tags_file,) = (corrupt / "tags").rglob("*.parquet")
    tags_file.write_bytes(tags_file.read_bytes()[:100])  # a torn write: the footer is gone
    new_dump = _one_file_dump(root / "mr", "MR_small.dcm")

    result = _tiny("ingest", new_dump, corrupt)  # reads the committed tags for its duplicate check
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("radnet ingest: error: Spark failed: ") and tags_file.name in last, result.stderr
    assert "Traceback" not in result.stderr and "\tat " not in result.stderr, result.stderr
    assert "Py4JJavaError" not in result.stderr and not SPARK_LOG_LINE.search(result.stderr), result.stderr

    verbose = _tiny("ingest", new_dump, corrupt, "--verbose")  # the traceback, and still the sentence last
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == last


@pytest.mark.parametrize(("setting", "named"), [
    ("privacy.names_lexicon=hr_HR,xx_XX", "privacy.names_lexicon"),
    ("privacy.names_lexicon_file=/nonexistent/names.txt", "privacy.names_lexicon_file"),
])
def test_a_names_lexicon_that_cannot_load_stops_ingest_before_spark(tmp_path, setting, named):
    (tmp_path / "dump").mkdir()
    result = _radnet("ingest", "--dicom", str(tmp_path / "dump"), "--out", str(tmp_path / "wh"), "--set", setting)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert named in line and setting.split("=", 1)[1].split(",")[-1] in line
    assert not (tmp_path / "wh").exists()


def test_small_work_counts_the_dump_and_the_warehouses_committed_files(tmp_path, monkeypatch):
    from radnet_spark import cli
    from radnet_spark.tables import commit_run

    dump = tmp_path / "dump" / "a" / "b"
    dump.mkdir(parents=True)
    for name in ("1.dcm", "2.dcm", "3.dcm"):
        (dump / name).write_bytes(b"x")
    warehouse = tmp_path / "warehouse"
    monkeypatch.setattr(cli, "SMALL_WORK_FILES", 4)
    assert cli._small_work(str(tmp_path / "dump"), str(warehouse))  # a new warehouse: 3 files
    commit_run(str(warehouse), "r1", "ingest", {"files": "ingest_run_id=r1"}, {"files": 2})
    assert not cli._small_work(str(tmp_path / "dump"), str(warehouse))  # 3 new + 2 committed
    assert not cli._small_work(None, str(warehouse))  # `run` on the warehouse alone: any size
    assert not cli._small_work("s3://bucket/dump", str(tmp_path / "new"))  # not counted: large


def test_ingest_asks_for_the_quick_jit_at_any_size_run_only_for_small_work(tmp_path, monkeypatch):
    from radnet_spark import cli, pipeline
    from radnet_spark.ingest import job

    asked: dict[str, bool] = {}

    def session(config, *modules, quick_jit=False):  # noqa: ANN001, ANN202 - stands in for Spark
        asked[modules[0]] = quick_jit
        return "session"

    monkeypatch.setattr(cli, "_spark", session)
    monkeypatch.setattr(cli, "SMALL_WORK_FILES", 0)  # every dump counts as large
    monkeypatch.setattr(job, "ingest", lambda *args, **kwargs: "ingested")
    monkeypatch.setattr(pipeline, "run", lambda *args, **kwargs: "ran")
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "1.dcm").write_bytes(b"x")
    assert main(["ingest", "--dicom", str(tmp_path / "dump"), "--out", str(tmp_path / "wh")]) == 0
    assert main(["run", "--dicom", str(tmp_path / "dump"), "--out", str(tmp_path / "wh2")]) == 0
    assert asked == {"radnet_spark.ingest.job": True, "radnet_spark.pipeline": False}
