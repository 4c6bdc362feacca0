"""The compiler: nengo's built model -> a static `Program` (imports nengo, never ops)."""

from .program import Program

__all__ = ["Program"]
