"""Field checks for the shape of what a route accepts: each field opsbot reads, of the type it reads it as.

The parsers of the hooks (`drone/events.py`, `gitlab/events.py`, `chat/inbound/dingtalk.py`) read every field
through these, and the same parser decides at ingress (a 400 naming the field) and reads the job in the worker,
so a body that ingress accepts is one the worker can read. Sizes are capped where a value becomes part of a
DynamoDB key (2,048 bytes at most) or where a long list would cost the worker work; free text is bounded by the
body's own limit (MAX_BODY_BYTES), and is cut where it is shown.
"""

from __future__ import annotations

NAME_CHARS = 200  # repo paths, branches, refs: they become parts of state keys, 4 bytes a character at worst
SHA_CHARS = 64  # a commit id: 40 hex digits (SHA-1) or 64 (SHA-256)
TEXT_CHARS = 2048  # other short strings: names, logins, e-mails, links


class Malformed(ValueError):
    """The body lacks a field opsbot reads, or has it in another type or size; the message names the field."""


def shown(value: object, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: the sender chose it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _name(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def text(container: dict, key: str, where: str = "", *, required: bool = False, max_chars: int = TEXT_CHARS) -> str:
    """A string field; "" when absent or null, unless `required` (then present and not empty)."""
    value = container.get(key)
    if value is None:
        if required:
            raise Malformed(f"{_name(where, key)} is missing")
        return ""
    if required and value == "":
        raise Malformed(f"{_name(where, key)} is empty")
    if not isinstance(value, str):
        raise Malformed(f"{_name(where, key)} must be a string, not {_json_type(value)}")
    if len(value) > max_chars:
        raise Malformed(f"{_name(where, key)} is longer than {max_chars} characters")
    return value


def integer(container: dict, key: str, where: str = "", *, required: bool = False, minimum: int = 0) -> int | None:
    """A whole number field of at least `minimum` (a boolean is not one); None when absent or null."""
    value = container.get(key)
    if value is None:
        if required:
            raise Malformed(f"{_name(where, key)} is missing")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"{_name(where, key)} must be a whole number, not {_json_type(value)}")
    if not minimum <= value < 2**63:
        raise Malformed(f"{_name(where, key)} is out of range")
    return value


def flag(container: dict, key: str, where: str = "") -> bool:
    """A boolean field; False when absent or null."""
    value = container.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Malformed(f"{_name(where, key)} must be true or false, not {_json_type(value)}")
    return value


def obj(container: dict, key: str, where: str = "", *, required: bool = False) -> dict:
    """An object field; {} when absent or null, unless `required`."""
    value = container.get(key)
    if value is None:
        if required:
            raise Malformed(f"{_name(where, key)} is missing")
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{_name(where, key)} must be an object, not {_json_type(value)}")
    return value


def _array(container: dict, key: str, where: str, max_items: int) -> list:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{_name(where, key)} must be an array, not {_json_type(value)}")
    if len(value) > max_items:
        raise Malformed(f"{_name(where, key)} has {len(value)} items, more than the {max_items} opsbot reads")
    return value


def objects(container: dict, key: str, where: str = "", *, max_items: int) -> list[dict]:
    """An array of objects, at most `max_items` long; [] when absent or null."""
    found = _array(container, key, where, max_items)
    for index, item in enumerate(found):
        if not isinstance(item, dict):
            raise Malformed(f"{_name(where, key)}[{index}] must be an object, not {_json_type(item)}")
    return found


def texts(container: dict, key: str, where: str = "", *, max_items: int, max_chars: int = TEXT_CHARS) -> list[str]:
    """An array of strings, at most `max_items` long, each at most `max_chars`; [] when absent or null."""
    found = _array(container, key, where, max_items)
    for index, item in enumerate(found):
        if not isinstance(item, str):
            raise Malformed(f"{_name(where, key)}[{index}] must be a string, not {_json_type(item)}")
        if len(item) > max_chars:
            raise Malformed(f"{_name(where, key)}[{index}] is longer than {max_chars} characters")
    return found
