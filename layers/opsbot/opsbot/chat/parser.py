"""From what a person typed to a command word and its arguments.

DingTalk's text starts with a space and may still carry @mentions; people type full-width spaces and
punctuation (`，` `：`) and quote arguments. All of that is tolerated here, once, before any command sees it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_PUNCTUATION = str.maketrans(
    {
        "\u3000": " ",
        "，": " ",
        "：": " ",
        "；": " ",
        "、": " ",
        "。": " ",
        "！": " ",
        "？": " ",
        ",": " ",
        ";": " ",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "（": "(",
        "）": ")",
    }
)
_MENTION = re.compile(r"(^|\s)@\S+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_MAX_WORDS = 20  # no command takes more; a pasted log is not a command


@dataclass(frozen=True)
class Invocation:
    word: str  # the first word, the command's name if it is one
    arguments: list[str]
    text: str  # the cleaned text, for free questions


def has_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def clean(text: str) -> str:
    text = _MENTION.sub(" ", text.translate(_PUNCTUATION))
    # An ASCII colon before a space or after Chinese ("deploy: x", "部署:x") separates; inside a word
    # (a URL, an image tag) it stays.
    text = re.sub(r":(?=\s|$)|(?<=[\u4e00-\u9fff]):", " ", text)
    return " ".join(text.split())


def split_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: take the words as they are
        return text.replace('"', " ").replace("'", " ").split()


def parse(text: str, known_words: list[str]) -> Invocation:
    """Split `text` into a command word and arguments. A Chinese command glued to its first argument
    ("部署shop-api") is pulled apart when the prefix is a known command word."""
    cleaned = clean(text or "")
    words = split_words(cleaned)[:_MAX_WORDS]
    if not words:
        return Invocation("", [], cleaned)
    first = words[0]
    if has_chinese(first) and first.lower() not in known_words:
        for known in sorted(known_words, key=len, reverse=True):
            if has_chinese(known) and first.startswith(known):
                return Invocation(known, [first[len(known) :], *words[1:]], cleaned)
    return Invocation(first, words[1:], cleaned)
