"""DICOM tag view: BodyPartExamined imputation, tag selection, imputation and encoding."""
