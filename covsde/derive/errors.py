"""Exceptions of the derive layer: the input errors of :mod:`covsde.common.errors` and ``NoLimit``."""
from ..common.errors import CovsdeInputError, ResourceLimitError

__all__ = ["CovsdeInputError", "ResourceLimitError", "NoLimit", "NotSupported"]


class NoLimit(Exception):
    """Raised inside the engine when the one-step map has no SDE limit; carries the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotSupported(CovsdeInputError):
    """A block whose limit needs a piece the engine does not derive yet (named in the message)."""
