import subprocess
import sys

from radnet_spark.cli import main


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
