"""Spark's errors as one sentence: root cause, first line, a Python worker's exception line."""

from radnet_spark.spark_errors import python_exception_line, spark_error_sentence


class FakeThrowable:
    """The few methods of a py4j JavaObject for a java.lang.Throwable that the sentence reads."""

    def __init__(self, message, cause=None, name="org.apache.spark.SparkException"):
        self.message, self.cause, self.name = message, cause, name

    def getMessage(self):  # noqa: N802 - Java's name
        return self.message

    def getCause(self):  # noqa: N802
        return self.cause

    def equals(self, other):
        return other is self

    def getClass(self):  # noqa: N802
        return type("Class", (), {"getName": lambda _: self.name})()


class FakePy4JJavaError(Exception):
    def __init__(self, java_exception):
        super().__init__("An error occurred while calling o98.parquet.\n", java_exception)
        self.java_exception = java_exception


WORKER_TRACEBACK = """Traceback (most recent call last):
  File "/x/worker.py", line 1, in main
    process()
KeyError: 'a'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/x/job.py", line 7, in parse
    raise ValueError("pixel data is on fire")
ValueError: pixel data is on fire
"""


def test_the_root_cause_of_a_java_chain_is_the_sentence():
    root = FakeThrowable("file:/w/tags/part-0.parquet is not a Parquet file. Expected magic number\nat tail",
                         name="java.lang.RuntimeException")
    error = FakePy4JJavaError(FakeThrowable("Job aborted due to stage failure: ...", FakeThrowable("[FAILED_READ_FILE]", root)))
    assert spark_error_sentence(error) == "file:/w/tags/part-0.parquet is not a Parquet file. Expected magic number"


def test_a_root_cause_without_a_message_is_named_by_its_class():
    error = FakePy4JJavaError(FakeThrowable("outer", FakeThrowable(None, name="java.lang.NullPointerException")))
    assert spark_error_sentence(error) == "java.lang.NullPointerException"


def test_a_python_workers_traceback_becomes_its_last_exception_line():
    assert python_exception_line(WORKER_TRACEBACK) == "ValueError: pixel data is on fire"
    error = FakePy4JJavaError(FakeThrowable("Job aborted", FakeThrowable(WORKER_TRACEBACK + " SQLSTATE: 38000")))
    assert spark_error_sentence(error) == "ValueError: pixel data is on fire"


def test_sqlstate_is_left_out_and_text_without_a_traceback_is_kept():
    assert python_exception_line("no traceback here") == "no traceback here"
    error = FakePy4JJavaError(FakeThrowable("[PATH_NOT_FOUND] Path does not exist: file:/x. SQLSTATE: 42K03"))
    assert spark_error_sentence(error) == "[PATH_NOT_FOUND] Path does not exist: file:/x."
