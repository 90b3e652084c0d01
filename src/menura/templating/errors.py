"""Errors of the template language: every problem with a template, or with rendering it, is one of
these, so callers can answer 400 with the line and the reason instead of failing."""

from __future__ import annotations


class TemplateError(Exception):
    """A template that cannot be compiled or rendered. `line` is 1-based when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line else reason)


class RenderLimitError(TemplateError):
    """Rendering exceeded a sandbox limit (loop iterations, output size, value size, time)."""
