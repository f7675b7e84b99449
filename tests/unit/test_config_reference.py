"""The READMEs' config-keys reference is made from the config model's key sets (opsbot.config.reference): every
set the validator checks a mapping against has its row, so a section a branch adds cannot be left out of it."""

from __future__ import annotations

import pytest

from opsbot.config import model, ops, reference, review

NOT_SECTIONS = {"IDENTITY_KEYS"}  # the person keys that identify someone: PERSON_KEYS' row holds them


@pytest.fixture
def aws(_moto):
    yield None  # nothing here reaches AWS


def key_sets() -> dict[str, object]:
    """Every `*_KEYS` constant of the config modules, by module and name (ROBOT_KEYS: each kind's set)."""
    found = {}
    for module in (model, ops, review):
        for name, value in vars(module).items():
            if not name.endswith("_KEYS") or name.startswith("_") or name in NOT_SECTIONS:
                continue
            if isinstance(value, dict):
                found.update({f"{module.__name__}.{name}[{kind}]": keys for kind, keys in value.items()})
            else:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_key_set_of_the_model_has_its_row():
    covered = {id(section.keys) for section in reference.SECTIONS}
    missing = sorted(name for name, keys in key_sets().items() if id(keys) not in covered)
    assert missing == [], f"add a Section for each to opsbot/config/reference.py, then `make references`: {missing}"


def test_each_row_lists_the_keys_the_validator_accepts():
    for language in ("en", "zh"):
        table = reference.markdown(language)
        for section in reference.SECTIONS:
            keys = ", ".join(f"`{key}`" for key in sorted(section.keys))
            assert f"| `{section.file}` | `{section.path}` | {keys} |" in table
    assert "`review`" in reference.markdown("en") and "`notify`" in reference.markdown("zh")
