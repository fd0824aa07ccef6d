"""Spark's own errors as one readable sentence: the root cause's message, first line, no Java stack.

A failed Spark call reaches the driver as a py4j ``Py4JJavaError`` (a JVM exception pyspark leaves
as it is), as a pyspark ``CapturedException`` (``AnalysisException``, ``PythonException`` and the
other converted JVM exceptions, whose Java throwable is kept) or as pyspark's own
``PySparkException`` (the JVM did not start, ...). The root of the Java cause chain says what
actually went wrong ("… is not a Parquet file", "Checksum error: file:/…"); a Python worker's
exception arrives as a whole traceback, of which the last exception line is the sentence.
"""

from __future__ import annotations

import re
import sys
from typing import Any

MAX_CAUSES = 64  # a cause chain is never this deep; guards against a cycle
_SQLSTATE = re.compile(r"\s*SQLSTATE: [0-9A-Z]{5}\.?\s*$")
_TRACEBACK = "Traceback (most recent call last):"


def is_spark_error(error: BaseException) -> bool:
    """True for an error raised by Spark or pyspark (py4j errors included).

    Args:
        error: Any exception.

    Returns:
        Whether ``error`` is a py4j error or a pyspark exception; False while pyspark is not imported.
    """
    if "pyspark" not in sys.modules:  # commands that never start Spark (synth, models) stay light
        return False
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return isinstance(error, Py4JError | PySparkException)


def python_exception_line(traceback_text: str) -> str:
    """The exception line (``ValueError: …``) of a Python traceback, or the text unchanged.

    Args:
        traceback_text: Text that may hold a formatted Python traceback, as a Python worker sends it.

    Returns:
        The line after the last frame of the last traceback; ``traceback_text`` when there is none.
    """
    start = traceback_text.rfind(_TRACEBACK)
    if start < 0:
        return traceback_text
    lines = traceback_text[start:].splitlines()[1:]
    for line in lines:
        if line.strip() and not line.startswith((" ", "\t")):
            return line
    return traceback_text


def _java_root(throwable: Any) -> Any:
    """The last throwable of a Java cause chain."""
    root = throwable
    for _ in range(MAX_CAUSES):
        cause = root.getCause()
        if cause is None or cause.equals(root):
            break
        root = cause
    return root


def _java_message(throwable: Any) -> str:
    message = throwable.getMessage()
    return str(message) if message else str(throwable.getClass().getName())


def root_cause_message(error: BaseException) -> str:
    """The whole message of the root cause of a Spark error (several lines possibly).

    Args:
        error: An error for which :func:`is_spark_error` holds.

    Returns:
        The root Java throwable's message (its class name when it has none), or the deepest pyspark
        cause's description, or ``str(error)``.
    """
    java = getattr(error, "java_exception", None)  # Py4JJavaError
    if java is not None:
        return _java_message(_java_root(java))
    deepest = error
    for _ in range(MAX_CAUSES):  # CapturedException: converted Java causes, outermost first
        cause = getattr(deepest, "_cause", None)
        if cause is None:
            break
        deepest = cause
    origin = getattr(deepest, "_origin", None)
    if origin is not None:
        return _java_message(_java_root(origin))
    description = getattr(deepest, "_desc", None)
    return str(description) if description else str(error)


def spark_error_sentence(error: BaseException) -> str:
    """One line saying what failed in Spark, for the CLI.

    Args:
        error: An error for which :func:`is_spark_error` holds.

    Returns:
        The root cause's message (a Python worker's exception line), first line, without SQLSTATE.
    """
    from py4j.protocol import Py4JError

    try:
        message = python_exception_line(root_cause_message(error)).strip()
    except Py4JError:  # the JVM is gone: its throwables cannot be asked any more
        message = str(getattr(error, "_desc", None) or (error.args[0] if error.args else ""))
    first = next((line.strip() for line in message.splitlines() if line.strip()), type(error).__name__)
    return _SQLSTATE.sub("", first) or type(error).__name__
