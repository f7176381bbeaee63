"""Regular expressions that users write, compiled for RE2.

Patterns from whitelist conditions and aggregation rules are matched against
alert fields an attacker can choose. RE2 matches in time linear in the input,
so no pattern can stall the pipeline; in exchange it refuses what only a
backtracking engine can do (look-around, back-references), and the message
says so.
"""

import re2

MAX_PATTERN_LENGTH = 1_000
# Memory RE2 may use for one compiled pattern; a pattern that needs more is refused.
MAX_PROGRAM_MEMORY = 8 << 20


def _options(*, ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_MEMORY
    # A bad pattern is the author's mistake, reported in the form or the API, not a
    # server log line.
    options.log_errors = False
    # Case-insensitive matching by the engine rather than by lower-casing the
    # pattern, which would turn \S, \D or \W into their opposites.
    options.case_sensitive = not ignore_case
    return options


_OPTIONS = {False: _options(ignore_case=False), True: _options(ignore_case=True)}
# The type of a compiled pattern, which re2 does not name publicly.
LinearTimePattern = type(re2.compile(""))


class RegexError(ValueError):
    """A pattern RE2 cannot run; the message names the problem."""


def compile_linear_time(pattern: str, *, ignore_case: bool = False) -> LinearTimePattern:
    """The RE2 pattern for ``pattern``, or RegexError saying why there is none."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(f"The regular expression is longer than {MAX_PATTERN_LENGTH} characters.")
    try:
        return re2.compile(pattern, _OPTIONS[ignore_case])
    except re2.error as exc:
        # RE2 gives its reason as bytes.
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(
            f"Invalid regular expression: {reason}. Look-around and back-references are not "
            "supported (matching must stay linear in time)."
        ) from None
