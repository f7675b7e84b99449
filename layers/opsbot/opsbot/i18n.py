"""The one helper for short texts in two languages. Long texts keep their own tables (notify/render.py)."""

from __future__ import annotations

LANGUAGES = ("zh", "en")


def t(language: str, zh: str, en: str) -> str:
    """`zh` for a Chinese reader, `en` for anyone else."""
    return zh if language == "zh" else en


def both(zh: str, en: str) -> str:
    """Both, for a reader whose language opsbot cannot know (a release link's pages): Chinese, then English, each
    on its own line."""
    return f"{zh}\n{en}"
