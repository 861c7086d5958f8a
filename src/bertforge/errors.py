"""The one exception type for mistakes a user can fix.

Library code raises :class:`BertForgeError` (a ``ValueError``) with a message that names the bad
value and the fix; the CLI prints that message on one line and exits with code 2. Anything else
that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class BertForgeError(ValueError):
    """Bad user input: a wrong path, value, shape or file. The message says how to fix it."""
