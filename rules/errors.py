"""cidwatch's own error type: library code raises it (or a subclass), the command line prints its
message as one line and exits 2, without a traceback."""

from __future__ import annotations


class CidwatchError(Exception):
    """A condition the user can act on; the message says what and where."""


def yaml_error(path: object, exc: Exception) -> str:
    """One line for a YAML parse error: the file, the line and column, what the parser expected.

    PyYAML's own message spans several lines (the source line and a caret under it); a user needs the
    place and the problem. Lines and columns are counted from 1, as editors show them.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{path}: not valid YAML: {where}{problem}" + (f" ({context})" if context else "")
