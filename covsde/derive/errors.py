"""Exceptions of covsde.  Every user-facing error names the bad value."""


class CovsdeInputError(ValueError):
    """Bad user input (unknown variant or parameter, malformed value, non-PSD matrix ...)."""


class UsageError(CovsdeInputError):
    """Malformed command-line usage (exit code 2)."""


class NoLimit(Exception):
    """Raised inside the engine when the one-step map has no SDE limit; carries the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
