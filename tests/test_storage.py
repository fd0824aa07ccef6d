import os

import pytest

from radnet_spark.storage import (
    default_parallelism,
    list_files_distributed,
    shallow_split,
    to_local_path,
    to_uri,
    walk_files,
)


def _make_tree(root):
    paths = []
    for i in range(5):
        sub = root / f"PAT{i}" / "STUDY" / f"SER {i}"
        sub.mkdir(parents=True)
        for name in ("IM0001", ".hidden", "_underscore", "x.dcm"):
            (sub / name).write_bytes(b"x" * (i + 1))
            paths.append(str(sub / name))
    (root / "top-level-file").write_bytes(b"abc")
    paths.append(str(root / "top-level-file"))
    return sorted(paths)


def test_uri_round_trip_and_dbfs_paths(tmp_path):
    assert to_local_path(to_uri(tmp_path / "a b")) == str(tmp_path / "a b")
    assert to_local_path("dbfs:/mnt/pacs") == "/dbfs/mnt/pacs"


def test_walk_lists_hidden_and_underscore_files(tmp_path):
    expected = _make_tree(tmp_path)
    assert sorted(p for p, _, _ in walk_files(str(tmp_path))) == expected


def test_shallow_split_bounds_driver_work(tmp_path):
    _make_tree(tmp_path)
    subtrees, files = shallow_split(str(tmp_path), target_dirs=3)
    assert len(subtrees) >= 3
    assert files == [str(tmp_path / "top-level-file")]


@pytest.mark.parametrize("driver_max_files", [0, 4096], ids=["walked by executors", "small tree on the driver"])
def test_distributed_listing_finds_every_file_once(spark, tmp_path, driver_max_files):
    expected = _make_tree(tmp_path)
    (tmp_path / "link-to-file").symlink_to(tmp_path / "top-level-file")
    rows = list_files_distributed(spark, str(tmp_path), driver_max_files=driver_max_files).collect()
    assert sorted(r["path"] for r in rows) == expected
    sizes = {r["path"]: r["size"] for r in rows}
    assert all(sizes[p] == os.path.getsize(p) for p in expected)


@pytest.mark.parametrize("driver_max_files", [0, 4096], ids=["walked by executors", "small tree on the driver"])
def test_listed_modification_times_are_the_files_instants_in_any_session_time_zone(spark, tmp_path, driver_max_files):
    from pyspark.sql import functions as F

    expected = _make_tree(tmp_path)
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Europe/Zagreb")  # UTC+1 or +2: a naive value would shift
    try:
        listing = list_files_distributed(spark, str(tmp_path), driver_max_files=driver_max_files)
        micros = {r["path"]: r["us"] for r in listing.select("path", F.unix_micros("mtime").alias("us")).collect()}
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    assert {path: micros[path] for path in expected} == {
        path: round(os.stat(path).st_mtime * 1_000_000) for path in expected
    }


def test_object_store_uris_are_remote_and_local_spellings_are_not():
    from radnet_spark.storage import is_remote

    assert all(is_remote(u) for u in ("s3://b/dump", "s3a://b/dump", "gs://b/dump", "abfss://c@a.dfs.core.windows.net/d"))
    assert not any(is_remote(u) for u in ("/mnt/pacs", "file:///mnt/pacs", "dbfs:/mnt/pacs", "relative/dump"))


@pytest.mark.parametrize(("uri", "extra", "package"), [
    ("gs://bucket/dump", "gcs", "gcsfs"), ("abfss://pacs@account.dfs.core.windows.net/dump", "azure", "adlfs"),
])
def test_a_store_without_its_package_names_the_extra_to_install(uri, extra, package):
    import importlib.util

    from radnet_spark.errors import InputPathError
    from radnet_spark.storage import require_directory

    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(InputPathError, match=rf"pip install 'radnet-spark\[{extra}\]'"):
        require_directory(uri, "DICOM folder")


class _ConnectConf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)


def _connect_session(values: dict[str, str]):
    """A stand-in for a Spark Connect session: its class lives in pyspark.sql.connect, no sparkContext."""
    session_type = type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})
    session = session_type()
    session.conf = _ConnectConf(values)
    return session


def test_default_parallelism_asks_the_context_on_classic_spark(spark):
    assert default_parallelism(spark) == spark.sparkContext.defaultParallelism


def test_default_parallelism_on_spark_connect_reads_settings_without_a_spark_context():
    assert default_parallelism(_connect_session({"spark.default.parallelism": "6"})) == 6
    assert default_parallelism(_connect_session({"spark.sql.shuffle.partitions": "3"})) == 3
