from radnet_spark.config import SplitConfig
from radnet_spark.drift import MIN_EXAMS_FOR_SHARE_SHIFT, drift_summary, held_out_labels
from radnet_spark.results import LabelResult
from radnet_spark.splits import split_of

LABELS = "sop_instance_uid string, cluster int, distance double"


def _exams_by_split(count: int) -> dict[str, list[str]]:
    exams: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for index in range(count):
        exams[split_of(f"exam-{index}")].append(f"exam-{index}")
    return exams


def _tags(spark, rows):  # noqa: ANN001, ANN202
    return spark.createDataFrame([(uid, uid.split(".")[0]) for uid, _, _ in rows], "sop_instance_uid string, exam_id string")


def test_distances_are_compared_with_held_out_rows_not_with_the_rows_the_centres_were_fitted_on(spark):
    exams = _exams_by_split(60)
    # Training rows lie close to their centres (0.5); held-out rows and new rows alike lie at 1.5.
    training = [(f"{exam}.1", 0, 0.5) for exam in exams["train"]]
    held_out = [(f"{exam}.1", 0, 1.5) for exam in exams["validation"] + exams["test"]]
    labels = spark.createDataFrame(training + held_out, LABELS)
    new = spark.createDataFrame([(f"new-{i}", 0, 1.5) for i in range(60)], LABELS)

    reference = held_out_labels(labels, _tags(spark, training + held_out), SplitConfig())
    assert sorted(r["sop_instance_uid"] for r in reference.collect()) == sorted(uid for uid, _, _ in held_out)
    drift, warnings = drift_summary(new, labels, reference)
    assert warnings == []  # as far as held-out rows: no drift
    assert drift[0]["distance_train"] == 1.5

    # Against every training-run row the same new rows looked drifted.
    _, against_all = drift_summary(new, labels)
    assert any("farther" in warning for warning in against_all)


def test_shares_are_compared_with_the_whole_training_dump(spark):
    exams = _exams_by_split(80)
    # Training split in clusters 0 and 1 alike; held-out rows happen to sit in cluster 1 only.
    training = [(f"{exam}.1", index % 2, 1.0) for index, exam in enumerate(exams["train"])]
    held_out = [(f"{exam}.1", 1, 1.0) for exam in exams["validation"] + exams["test"]]
    labels = spark.createDataFrame(training + held_out, LABELS)
    new = spark.createDataFrame([(f"new-{i}", i % 2, 1.0) for i in range(60)], LABELS)
    reference = held_out_labels(labels, _tags(spark, training + held_out), SplitConfig())

    drift, warnings = drift_summary(new, labels, reference, new_exams=MIN_EXAMS_FOR_SHARE_SHIFT)
    shares = {row["cluster"]: row["share_train"] for row in drift}
    everyone = len(training) + len(held_out)
    assert shares == {0: sum(1 for _, c, _ in training if c == 0) / everyone,
                      1: (sum(1 for _, c, _ in training if c == 1) + len(held_out)) / everyone}
    assert warnings == []  # a 50/50 new dump against a near 50/50 training dump


def test_a_share_shift_warns_only_with_enough_new_exams_to_tell_it_from_chance(spark):
    labels = spark.createDataFrame([(f"t-{i}", i % 2, 1.0) for i in range(200)], LABELS)
    new = spark.createDataFrame([(f"new-{i}", 0, 1.0) for i in range(60)], LABELS)  # all in cluster 0
    _, many = drift_summary(new, labels, new_exams=MIN_EXAMS_FOR_SHARE_SHIFT)
    assert any("differ from the training dump's by 50%" in warning for warning in many)
    _, few = drift_summary(new, labels, new_exams=10)
    assert few == []


def test_a_training_dump_without_held_out_rows_compares_distances_with_all_its_rows(spark):
    exams = _exams_by_split(40)["train"]
    rows = [(f"{exam}.1", 0, 0.5) for exam in exams]
    labels = spark.createDataFrame(rows, LABELS)
    new = spark.createDataFrame([(f"new-{i}", 0, 2.0) for i in range(60)], LABELS)
    drift, warnings = drift_summary(new, labels, held_out_labels(labels, _tags(spark, rows), SplitConfig()))
    assert drift[0]["distance_train"] == 0.5
    assert any("4.0x farther" in warning for warning in warnings)


def test_the_printed_summary_marks_clusters_without_rows():
    result = LabelResult("v1", 3, [{"cluster": 2, "share_new": 0.0, "share_train": 0.25,
                                    "distance_new": None, "distance_train": 1.25}], [])
    line = str(result).splitlines()[-1].split()
    assert line == ["2", "0.000", "0.250", "-", "1.250"]
