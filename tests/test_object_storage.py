"""DICOM on object storage: `radnet ingest` and `radnet label` on s3:// paths of a real S3 server.

moto's server mode runs on 127.0.0.1 for this module (started here, stopped after), with IAM checks
on: a reader allowed everything except one prefix, and an outsider allowed nothing. The CLI runs as
a subprocess so its Spark workers get the credentials the way a cluster's do: from the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from radnet_spark.cli import main
from radnet_spark.tables import read_table

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "radnet-pacs"
LOCKED = "dump/locked/not-for-radnet.dcm"
RUN_COLUMNS = ("path", "ingest_run_id", "label_run_id", "labelled_at")


def _clear_filesystem_cache() -> None:
    # fsspec keeps one S3 filesystem per argument set, with the credentials it first found.
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def s3(tracked_pipeline):
    """A moto S3 server holding the tracked pipeline's dump; yields endpoint and both users' keys."""
    import boto3
    import requests

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    admin = {"aws_access_key_id": "admin", "aws_secret_access_key": "admin", "region_name": "us-east-1",
             "endpoint_url": endpoint}
    client = boto3.client("s3", **admin)
    client.create_bucket(Bucket=BUCKET)
    dump = tracked_pipeline["dump"]
    for path in sorted((dump / "dicom").rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"dump/{path.relative_to(dump / 'dicom').as_posix()}")
    client.upload_file(str(dump / "diagnoses.csv"), BUCKET, "diagnoses.csv")
    client.put_object(Bucket=BUCKET, Key=LOCKED, Body=b"any bytes: nobody may read them")

    iam = boto3.client("iam", **admin)
    keys = {}
    policies = {
        "reader": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/dump/locked/*"},
        ]},
        "outsider": None,
    }
    for user, policy in policies.items():
        iam.create_user(UserName=user)
        if policy is not None:
            iam.put_user_policy(UserName=user, PolicyName="pacs", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    # From here on every request is checked against the users' IAM policies.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    yield {"endpoint": endpoint, "keys": keys}
    _clear_filesystem_cache()
    server.stop()


def _env(s3, user: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": s3["endpoint"], "AWS_DEFAULT_REGION": "us-east-1", **s3["keys"][user]}


@pytest.fixture()
def as_user(s3, monkeypatch):
    """Credentials of one user in this process's environment (for the CLI's driver-side checks)."""

    def use(user: str) -> None:
        for name, value in _env(s3, user).items():
            monkeypatch.setenv(name, value)
        _clear_filesystem_cache()

    yield use
    _clear_filesystem_cache()


def _radnet(s3, tracked, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_env(s3, "reader"), "RADNET_SALT": "test-salt-not-secret",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "MLFLOW_TRACKING_URI": tracked["tracking_uri"]}
    return subprocess.run([sys.executable, "-m", "radnet_spark", *args, "--master", "local[2]"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tracked["root"])


@pytest.fixture(scope="module")
def s3_warehouse(s3, tracked_pipeline, tmp_path_factory) -> Path:
    """`radnet ingest`, then `radnet label` with the registered pipeline, both on s3:// inputs."""
    warehouse = tmp_path_factory.mktemp("s3") / "warehouse"
    inputs = ["--dicom", f"s3://{BUCKET}/dump", "--diagnoses", f"s3://{BUCKET}/diagnoses.csv", "--out", str(warehouse)]
    ingested = _radnet(s3, tracked_pipeline, "ingest", *inputs)
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    labelled = _radnet(s3, tracked_pipeline, "label", "--pipeline", "models:/tiny@champion", *inputs)
    assert labelled.returncode == 0, labelled.stderr[-3000:]
    return warehouse


def _relative(path: str, tracked) -> str:
    local_root = os.path.realpath(tracked["dump"] / "dicom") + "/"
    for prefix in (f"s3://{BUCKET}/dump/", local_root):
        if path.startswith(prefix):
            return path[len(prefix):]
    return "outside the dump: " + path.rsplit("/", 1)[-1]  # the diagnoses file's rejects


def _rows(spark, warehouse: Path, table: str, tracked, drop=RUN_COLUMNS) -> Counter:
    """A small table's rows as a multiset, paths made relative to the dump (collected: test data only)."""
    df = read_table(spark, str(warehouse), table)
    columns = sorted(c for c in df.columns if c not in drop)
    with_path = "path" in df.columns
    rows = df.select(*columns, *(["path"] if with_path else [])).collect()
    def value(v):  # noqa: ANN001, ANN202 - arrays (stems) as tuples, to be counted
        return tuple(v) if isinstance(v, list) else v

    return Counter(
        tuple(value(row[c]) for c in columns) + ((_relative(row["path"], tracked),) if with_path else ())
        for row in rows
    )


def test_every_object_is_in_files_once_and_the_denied_one_is_a_reject(spark, s3_warehouse, tracked_pipeline):
    local_files = {p.relative_to(tracked_pipeline["dump"] / "dicom").as_posix()
                   for p in (tracked_pipeline["dump"] / "dicom").rglob("*") if p.is_file()}
    files = read_table(spark, str(s3_warehouse), "files").collect()
    paths = [row["path"] for row in files]
    assert len(paths) == len(set(paths)) == len(local_files) + 1
    assert {_relative(p, tracked_pipeline) for p in paths} == local_files | {LOCKED.removeprefix("dump/")}
    (denied,) = [row for row in files if row["path"].endswith(LOCKED)]
    assert (denied["status"], denied["reason"]) == ("rejected", "access_denied")
    rejects = read_table(spark, str(s3_warehouse), "rejects").where(F.col("path").endswith(LOCKED)).collect()
    assert [(r["stage"], r["reason"]) for r in rejects] == [("read", "access_denied")]


@pytest.mark.parametrize("table", ["tags", "images", "diagnoses"])
def test_object_storage_gives_the_same_rows_as_local_disk(spark, s3_warehouse, tracked_pipeline, table):
    assert _rows(spark, s3_warehouse, table, tracked_pipeline) == _rows(
        spark, tracked_pipeline["warehouse"], table, tracked_pipeline)


def test_rejects_match_local_disk_apart_from_the_denied_object(spark, s3_warehouse, tracked_pipeline):
    remote = _rows(spark, s3_warehouse, "rejects", tracked_pipeline, drop=("path", "ingest_run_id", "detail"))
    local = _rows(spark, tracked_pipeline["warehouse"], "rejects", tracked_pipeline,
                  drop=("path", "ingest_run_id", "detail"))
    assert remote - local == Counter({("access_denied", "read", LOCKED.removeprefix("dump/")): 1})
    assert local - remote == Counter()


def test_labels_from_object_storage_equal_the_training_runs(spark, s3_warehouse, tracked_pipeline):
    def clusters(warehouse: Path) -> dict[str, int]:
        labels = read_table(spark, str(warehouse), "labels")
        return {r["sop_instance_uid"]: r["cluster"] for r in labels.select("sop_instance_uid", "cluster").collect()}

    remote, local = clusters(s3_warehouse), clusters(tracked_pipeline["warehouse"])
    assert remote and remote == local
    tagged = read_table(spark, str(s3_warehouse), "tags").count()
    assert len(remote) == tagged


@pytest.mark.parametrize(("user", "dicom", "diagnoses", "words"), [
    ("reader", "s3://no-such-bucket/dump", None, "there is no bucket or container 'no-such-bucket'"),
    ("reader", f"s3://{BUCKET}/no-such-prefix", None, f"does not exist in bucket or container '{BUCKET}'"),
    ("reader", f"s3://{BUCKET}/dump", f"s3://{BUCKET}/no-such-diagnoses.csv", "Diagnoses file"),
    ("outsider", f"s3://{BUCKET}/dump", None, "access denied for the credentials in use"),
])
def test_unusable_s3_inputs_are_one_sentence_and_exit_2(as_user, tmp_path, capsys, user, dicom, diagnoses, words):
    as_user(user)
    args = ["ingest", "--dicom", dicom, "--out", str(tmp_path / "wh")]
    if diagnoses:
        args += ["--diagnoses", diagnoses]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert words in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "AKIA" not in err and "SecretAccessKey" not in err
    assert not (tmp_path / "wh").exists()
