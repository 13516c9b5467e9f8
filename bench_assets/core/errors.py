"""The one base class of every expected failure.

An expected failure is one a user can fix: a broken card, a bad prompt file,
a wrong setting, a model that does not load, a bucket that refuses a key. Its
message already names the file or setting and what is wrong, so the CLI
prints it as one line (``--verbose``: the traceback) and a partition fails
with it as its reason. Anything that is not a ``BenchError`` is a bug and
keeps its traceback.

Each subclass also keeps the builtin type it always had (``ValueError``,
``RuntimeError``), so code that caught those still does.
"""

from __future__ import annotations


class BenchError(Exception):
    """A failure whose message says what is wrong and where; shown in one line."""
