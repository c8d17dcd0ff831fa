"""Exceptions of covsde.  Every user-facing error names the bad value."""


class CovsdeInputError(ValueError):
    """Bad user input (unknown variant or parameter, malformed value, non-PSD matrix, ...)."""


class ResourceLimitError(CovsdeInputError):
    """A request that would exceed a resource limit (memory, steps, width, m, heads); the message
    names the limit, the estimate and how to raise the limit."""
