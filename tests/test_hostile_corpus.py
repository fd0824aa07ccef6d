"""Issue 14's bar: a hostile, PHI-laden dump through `ingest` — every file accounted for with its
reason, no planted name anywhere under the warehouse or in the log, and bounded worker memory.

"The log" is every Python logging record of the driver during the run (the job's step log, root at
INFO, ``radnet_spark`` at DEBUG) plus the run summary; the JVM's own log4j output is not captured.
Worker memory is sampled every 20 ms from every Python process below the test process (the Spark
Python workers); before issue 14 parsing the deflate bomb alone peaked at 2.4 GB
(`bench/hostile_memory.py`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from hostile_corpus import MULTIFRAME_FRAMES, PLANTED, fold_letters, write_hostile_corpus

from radnet_spark.config import load_config
from radnet_spark.ingest.job import ingest
from radnet_spark.tables import read_table

WORKER_PEAK_LIMIT = int(1.5 * 1000**3)
TABLES = ("files", "tags", "images", "diagnoses", "rejects")


class WorkerMemory:
    """Samples the resident memory of every Python process below this one (the Spark workers)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                try:
                    if "python" not in child.name().lower():
                        continue
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                self.peak[child.pid] = max(self.peak.get(child.pid, 0), rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_hostile_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def run(spark, corpus, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("hostile-warehouse")
    handler = _Collect()
    root, ours = logging.getLogger(), logging.getLogger("radnet_spark")
    levels = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # py4j's DEBUG records are the gateway's wire protocol, not ours
    ours.setLevel(logging.DEBUG)
    try:
        with WorkerMemory() as memory:
            summary = ingest(spark, str(corpus.dicom), str(corpus.diagnoses), str(warehouse), load_config())
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])
    log_text = "\n".join(handler.lines) + "\n" + str(summary)
    return {"warehouse": warehouse, "summary": summary, "log": log_text, "memory": memory}


def _files(spark, warehouse) -> dict[str, tuple[str, str | None]]:
    return {r["path"]: (r["status"], r["reason"]) for r in read_table(spark, str(warehouse), "files").collect()}


def test_every_hostile_case_has_its_status_and_reason(spark, corpus, run):
    status = _files(spark, run["warehouse"])
    for relative, case in corpus.cases.items():
        got = status.get(str(corpus.dicom / relative))
        assert got is not None, relative
        assert got[0] == case.status, (relative, got)
        if case.status == "ok":
            assert got[1] is None, (relative, got)
        else:
            assert got[1] in case.reasons, (relative, got)
    # Nothing else was listed: links resolve to their targets, directory links are not followed.
    assert set(status) == {str(corpus.dicom / relative) for relative in corpus.cases}


def test_links_are_one_file_under_the_real_path(spark, corpus, run):
    status = _files(spark, run["warehouse"])
    for link, target in corpus.link_targets.items():
        assert status[target] == ("ok", None)
        assert str(corpus.dicom / link) not in status
    for relative in corpus.not_listed:
        assert str(corpus.dicom / relative) not in status
    rejects = read_table(spark, str(run["warehouse"]), "rejects").collect()
    assert [r["reason"] for r in rejects if r["path"].endswith("dangling.dcm")] == ["broken_link"]


def test_old_and_big_endian_files_reach_images(spark, corpus, run):
    warehouse = str(run["warehouse"])
    tags = read_table(spark, warehouse, "tags").select("path", "sop_instance_uid").collect()
    by_path = {r["path"]: r["sop_instance_uid"] for r in tags}
    images = {r["sop_instance_uid"]: r for r in read_table(spark, warehouse, "images").collect()}
    for relative in ("old/raw-implicit-ct", "old/raw-big-endian-mr", "old/part10-big-endian.dcm"):
        image = images[by_path[str(corpus.dicom / relative)]]
        assert len(image["image"]) == image["image_size"] ** 2
        assert image["original_rows"] > 1


def test_multiframe_exports_its_first_frame_with_content(spark, corpus, run):
    warehouse = str(run["warehouse"])
    path = str(corpus.dicom / "pixels/multiframe-first-frame-blank.dcm")
    (uid,) = [r["sop_instance_uid"] for r in read_table(spark, warehouse, "tags").collect() if r["path"] == path]
    (image,) = [r for r in read_table(spark, warehouse, "images").collect() if r["sop_instance_uid"] == uid]
    assert (image["frames"], image["frame_index"]) == (MULTIFRAME_FRAMES, 1)


def test_no_planted_string_in_any_column_of_any_table(spark, run):
    warehouse = str(run["warehouse"])
    planted = [fold_letters(p) for p in PLANTED]
    checked = 0
    for name in TABLES:
        df = read_table(spark, warehouse, name)
        columns = [f.name for f in df.schema.fields if f.dataType.simpleString() != "binary"]
        for row in df.select(*columns).collect():
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                folded = fold_letters(str(value))
                checked += 1
                for token in planted:
                    assert token not in folded, (name, column, token)
    assert checked > 1000
    tags = read_table(spark, warehouse, "tags")
    for keyword in ("RadiationMachineName", "StationName", "DeviceSerialNumber", "InstitutionName",
                    "InstitutionalDepartmentName", "PatientName", "OtherPatientNames", "OperatorsName"):
        assert keyword not in tags.columns


def test_every_parquet_file_and_file_name_under_the_warehouse_is_clean(run):
    planted = [fold_letters(p) for p in PLANTED]
    parquet_files = 0
    for directory, _dirs, names in os.walk(run["warehouse"]):
        for name in [*names, *_dirs]:
            folded_name = fold_letters(name)
            assert not any(token in folded_name for token in planted), name
        for name in names:
            path = Path(directory) / name
            if name.endswith(".parquet"):
                parquet_files += 1
                table = pq.read_table(path)
                for column in table.column_names:
                    if str(table.schema.field(column).type) == "binary":
                        continue
                    for value in table.column(column).to_pylist():
                        if value is not None:
                            folded = fold_letters(str(value))
                            assert not any(token in folded for token in planted), (path, column)
            else:
                folded = fold_letters(path.read_bytes().decode("utf-8", errors="ignore"))
                assert not any(token in folded for token in planted), path
    assert parquet_files >= len(TABLES)
    # The exam name hashes are staged privately, never as a table.
    assert (Path(run["warehouse"]) / "_private" / "exam_name_hashes").is_dir()


def test_no_planted_string_in_the_log(run):
    folded = fold_letters(run["log"])
    for token in (fold_letters(p) for p in PLANTED):
        assert token not in folded, token
    assert "inflatedtoolarge" in folded


def test_names_are_replaced_and_body_parts_survive(spark, corpus, run):
    warehouse = str(run["warehouse"])
    tags = {r["path"]: r for r in read_table(spark, warehouse, "tags").collect()}
    for relative in ("planted/all-text-tags-0.dcm", "charsets/latin2.dcm", "charsets/iso2022-japanese.dcm"):
        row = tags[str(corpus.dicom / relative)]
        assert "[NAME]" in row["StudyDescription"]
        assert "[NAME]" in row["SeriesDescription"]
    assert tags[str(corpus.dicom / "charsets/latin2.dcm")]["StudyDescription"] == "CT glave - pacijent [NAME]"
    assert tags[str(corpus.dicom / "charsets/iso2022-japanese.dcm")]["StudyDescription"] == "頭部CT [NAME]"
    diagnoses = read_table(spark, warehouse, "diagnoses").collect()
    assert len(diagnoses) == 3
    for row in diagnoses:
        assert "[NAME]" in row["diagnosis_raw"]
        assert row["stems"]
    hr = next(r for r in diagnoses if "glave" in r["diagnosis_clean"] and "krvarenja" in r["diagnosis_clean"])
    assert "ventrikularni sustav" in hr["diagnosis_clean"]
    assert "dr. sc. [NAME]" in hr["diagnosis_raw"] and "[NAME], dr. med." in hr["diagnosis_raw"]


def test_worker_memory_stays_bounded_on_the_deflate_bomb(corpus, run):
    peaks = run["memory"].peak
    assert peaks, "no Python worker was sampled"
    peak = max(peaks.values())
    print(f"peak RSS of a Python process below the test (Spark workers): {peak / 1e6:.0f} MB")
    assert peak < WORKER_PEAK_LIMIT
    assert (corpus.dicom / "bombs/deflate-bomb.dcm").stat().st_size < 5 * 1024**2
