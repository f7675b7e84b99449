"""What a .drone.yml template is: the files that give its language away, and its toolchain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Toolchain:
    image: str  # what the build and test steps run in
    build: tuple[str, ...]
    test: tuple[str, ...]
    test_setup: tuple[str, ...] = ()  # run before the test commands, even when the project replaces them


@dataclass(frozen=True)
class Template:
    language: str
    markers: tuple[str, ...]  # top-level files that mean this language
    toolchain: Callable[[set[str]], Toolchain]  # the repository's top-level file names -> its toolchain
