"""cidwatch's own error type: library code raises it (or a subclass), the command line prints its
message as one line and exits 2, without a traceback."""

from __future__ import annotations


class CidwatchError(Exception):
    """A condition the user can act on; the message says what and where."""
