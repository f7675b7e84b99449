"""Reading words people type: the one place that says what a number is."""

from __future__ import annotations


def is_number(word: str) -> bool:
    """ASCII digits only (a leading # allowed, as in `#128`): str.isdigit() also takes "²", which int() refuses."""
    text = word.lstrip("#")
    return text.isascii() and text.isdigit() and len(text) <= 9
