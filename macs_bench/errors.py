"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class MacsError(Exception):
    """A user-facing error: the message names the file (and line) and the problem."""


class MetadataError(MacsError):
    """Vendored or user-supplied metadata is missing, modified or malformed."""


class RetryLater(MacsError):
    """Not bad input: the run stopped on a condition outside it (the network gone, a bot check, a full disk).
    What was done is kept; rerunning the same command once the condition is fixed continues (exit status 3)."""

    exit_code = 3
