"""The one registry of release steps, as Kargo's promotion steps (pkg/promotion/runner/builtin/): each step is a
module that registers its kind, the typed config it takes (a dataclass, from which its JSON schema is derived for
the README) and what it does. The runner (runner.py) validates a step's config into that type before it runs, hands
it the release and the outputs of the steps before it, and reads back a StepResult.

A step tells its outcomes apart:
- `succeeded`, with outputs the next steps read (`run.output("git-commit")["commit"]`);
- `running`: not done yet (a rollout, a sync, a verification); the runner asks again after a delay, in a delayed job;
- `failed`, with what to tell people: a terminal error (`StepFailed`, or the peer refusing), which retrying cannot
  change; the release then goes to its `always` steps (auto rollback, report);
- an exception that is a RetryLater (a peer unavailable, a lease held elsewhere): worth retrying, so the job is
  retried through the queue, and the step runs again from the start, which every step may: each one looks before it
  acts (its own trailer in Git, its own annotation on the Deployment, Argo CD's operation, SSM's comment).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

SUCCEEDED, RUNNING, FAILED = "succeeded", "running", "failed"


class StepFailed(Exception):
    """A terminal error of a step: the release fails here; the message is shown to people (already escaped)."""


class StepConfigError(Exception):
    """A step's config does not fit its schema: a bug in the plan, reported like a terminal error."""


@dataclass
class StepResult:
    status: str
    outputs: dict = field(default_factory=dict)
    message: str = ""  # one line for people, in the release's language; "" when there is nothing to say

    def as_dict(self) -> dict:
        return {"status": self.status, "outputs": self.outputs, "message": self.message}

    @classmethod
    def from_dict(cls, stored: dict) -> StepResult:
        return cls(stored["status"], dict(stored.get("outputs") or {}), str(stored.get("message") or ""))


@dataclass(frozen=True)
class StepKind:
    kind: str  # e.g. "git-commit"
    config_type: type  # a dataclass
    run: Callable  # (StepRun, config) -> StepResult
    summary: str  # one line for the README's step reference

    def parse(self, raw: dict):
        """`raw` as the step's typed config, or StepConfigError naming what does not fit."""
        if not isinstance(raw, dict):
            raise StepConfigError(f"{self.kind}: config must be a mapping")
        fields = {f.name: f for f in dataclasses.fields(self.config_type)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise StepConfigError(f"{self.kind}: unknown config {', '.join(unknown)}")
        hints = typing.get_type_hints(self.config_type)
        values = {}
        for name, spec in fields.items():
            if name not in raw:
                if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                    raise StepConfigError(f"{self.kind}: {name} is required")
                continue
            wanted = _plain_type(hints[name])
            value = raw[name]
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise StepConfigError(f"{self.kind}: {name} must be {wanted.__name__}")
            values[name] = value
        return self.config_type(**values)

    def schema(self) -> dict:
        """The JSON schema of the step's config (draft 2020-12's vocabulary, the part this uses)."""
        names = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
        hints = typing.get_type_hints(self.config_type)
        properties, required = {}, []
        for spec in dataclasses.fields(self.config_type):
            properties[spec.name] = {"type": names[_plain_type(hints[spec.name])]}
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                required.append(spec.name)
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _plain_type(hint) -> type:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    return origin or hint


STEPS: dict[str, StepKind] = {}


def step(kind: str, config: type, summary: str):
    """Register the decorated function as the step `kind`, taking `config` (a dataclass)."""

    def register(run: Callable) -> Callable:
        if kind in STEPS:
            raise ValueError(f"release step {kind} is registered twice")
        STEPS[kind] = StepKind(kind, config, run, summary)
        return run

    return register


@dataclass(frozen=True)
class NoConfig:
    """A step that needs nothing beside the release."""
