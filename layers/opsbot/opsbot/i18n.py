"""The one helper for short texts in two languages. Long texts keep their own tables (notify/render.py)."""

from __future__ import annotations

LANGUAGES = ("zh", "en")


def t(language: str, zh: str, en: str) -> str:
    """`zh` for a Chinese reader, `en` for anyone else."""
    return zh if language == "zh" else en
