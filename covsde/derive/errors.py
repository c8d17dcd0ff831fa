"""Exceptions of the derive layer: the input errors of :mod:`covsde.common.errors` and ``NoLimit``."""
from ..common.errors import CovsdeInputError, ResourceLimitError

__all__ = ["CovsdeInputError", "ResourceLimitError", "NoLimit", "NotSupported", "NeedsEntries"]


class NoLimit(Exception):
    """Raised inside the engine when the one-step map has no SDE limit; carries the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotSupported(CovsdeInputError):
    """A block whose limit needs a piece the engine does not derive yet (named in the message)."""


class NeedsEntries(NotSupported):
    """A piece the matrix-level engine cannot express for every m at once (a token mask: its rows differ);
    :func:`covsde.derive.engine.derive` then derives per entry, for the m asked."""
