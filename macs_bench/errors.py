"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class MacsError(Exception):
    """A user-facing error: the message names the file (and line) and the problem."""


class MetadataError(MacsError):
    """Vendored or user-supplied metadata is missing, modified or malformed."""
