from radnet_spark.config import SplitConfig
from radnet_spark.drift import drift_summary, held_out_labels
from radnet_spark.splits import split_of


def _exams_by_split(count: int) -> dict[str, list[str]]:
    exams: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for index in range(count):
        exams[split_of(f"exam-{index}")].append(f"exam-{index}")
    return exams


def test_new_rows_are_compared_with_held_out_rows_not_with_the_rows_the_centres_were_fitted_on(spark):
    exams = _exams_by_split(60)
    # Training rows lie close to their centres (0.5); held-out rows and new rows alike lie at 1.5.
    training = [(f"{exam}.1", 0, 0.5) for exam in exams["train"]]
    held_out = [(f"{exam}.1", 0, 1.5) for exam in exams["validation"] + exams["test"]]
    tags = spark.createDataFrame([(uid, uid.split(".")[0]) for uid, _, _ in training + held_out],
                                 "sop_instance_uid string, exam_id string")
    labels = spark.createDataFrame(training + held_out, "sop_instance_uid string, cluster int, distance double")
    new = spark.createDataFrame([(f"new-{i}", 0, 1.5) for i in range(60)],
                                "sop_instance_uid string, cluster int, distance double")

    reference = held_out_labels(labels, tags, SplitConfig())
    assert sorted(r["sop_instance_uid"] for r in reference.collect()) == sorted(uid for uid, _, _ in held_out)
    drift, warnings = drift_summary(new, reference, fallback=labels)
    assert warnings == []  # as far as held-out rows: no drift
    assert drift[0]["distance_train"] == 1.5

    # Against every training-run row (the old reference) the same new rows looked drifted.
    _, against_all = drift_summary(new, labels)
    assert any("farther" in warning for warning in against_all)


def test_a_training_dump_without_held_out_rows_falls_back_to_all_its_rows(spark):
    exams = _exams_by_split(40)["train"]
    labels = spark.createDataFrame([(f"{exam}.1", 0, 0.5) for exam in exams],
                                   "sop_instance_uid string, cluster int, distance double")
    tags = spark.createDataFrame([(f"{exam}.1", exam) for exam in exams], "sop_instance_uid string, exam_id string")
    new = spark.createDataFrame([(f"new-{i}", 0, 2.0) for i in range(60)],
                                "sop_instance_uid string, cluster int, distance double")
    drift, warnings = drift_summary(new, held_out_labels(labels, tags, SplitConfig()), fallback=labels)
    assert drift[0]["distance_train"] == 0.5
    assert any("4.0x farther" in warning for warning in warnings)
