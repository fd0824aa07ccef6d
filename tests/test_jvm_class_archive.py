"""The driver JVM's class archive: mapped when present, written once, kept only from a clean exit."""

import os
import subprocess
import sys

from radnet_spark.jvm_class_archive import ArchivePlan, keep_archive, plan_archive, remove_old_archives

NAME = "spark-4.3.0-0123456789abcdef.jsa"


def test_an_existing_archive_is_mapped(tmp_path):
    (tmp_path / NAME).write_bytes(b"archive")
    plan = plan_archive("-Dx=1", tmp_path, NAME, may_write=True)
    assert f"-XX:SharedArchiveFile={tmp_path / NAME}" in plan.options
    assert plan.writes is None


def test_without_an_archive_the_jvm_writes_one_under_a_temporary_name_only_when_asked(tmp_path):
    assert plan_archive("", tmp_path, NAME, may_write=False) == ArchivePlan()
    plan = plan_archive("", tmp_path, NAME, may_write=True)
    assert plan.writes == tmp_path / f"{NAME}.{os.getpid()}.tmp"
    assert plan.archive == tmp_path / NAME
    assert f"-XX:ArchiveClassesAtExit={plan.writes}" in plan.options and "-Xlog:cds*=off" in plan.options


def test_the_users_own_sharing_options_win(tmp_path):
    (tmp_path / NAME).write_bytes(b"archive")
    assert plan_archive("-Xshare:off", tmp_path, NAME, may_write=True) == ArchivePlan()
    assert plan_archive("-XX:SharedArchiveFile=/mine.jsa", tmp_path, NAME, may_write=True) == ArchivePlan()
    assert plan_archive("", tmp_path, None, may_write=True) == ArchivePlan()  # no Java found


def test_a_command_writing_the_archive_now_is_left_alone_and_a_dead_ones_file_removed(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as writer:
        try:
            busy = tmp_path / f"{NAME}.{writer.pid}.tmp"
            busy.write_bytes(b"half")
            assert plan_archive("", tmp_path, NAME, may_write=True) == ArchivePlan()
        finally:
            writer.kill()
    writer.wait()
    plan = plan_archive("", tmp_path, NAME, may_write=True)  # its command is gone: start again
    assert not busy.exists() and plan.writes is not None


def test_the_archive_is_kept_only_when_the_jvm_exited_cleanly(tmp_path):
    plan = plan_archive("", tmp_path, NAME, may_write=True)
    plan.writes.write_bytes(b"complete")
    assert keep_archive(plan, 0) and (tmp_path / NAME).read_bytes() == b"complete"

    (tmp_path / NAME).unlink()
    plan.writes.write_bytes(b"half")
    assert not keep_archive(plan, 137)  # killed while writing: a torn archive crashes the next JVM
    assert not plan.writes.exists() and not (tmp_path / NAME).exists()

    plan.writes.write_bytes(b"still writing")
    assert not keep_archive(plan, None)  # did not exit in time: left for a later run to remove
    assert plan.writes.exists() and not (tmp_path / NAME).exists()


def test_only_the_two_newest_archives_are_kept_when_a_new_one_is_saved(tmp_path):
    for age, digest in enumerate(("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc")):
        old = tmp_path / f"spark-4.3.0-{digest}.jsa"
        old.write_bytes(b"archive")
        os.utime(old, (1_000_000 + age, 1_000_000 + age))  # aaaa oldest
    (tmp_path / "notes.txt").write_text("not an archive")
    plan = plan_archive("", tmp_path, NAME, may_write=True)
    plan.writes.write_bytes(b"new")

    assert keep_archive(plan, 0)

    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([NAME, "notes.txt", "spark-4.3.0-cccccccccccccccc.jsa"])
    assert remove_old_archives(tmp_path) == []
