"""A stack of moto's in-process AWS (tables, queues, SSM parameters) emptied in place instead of made again.

The unit tests (tests/unit/conftest.py's `aws`) and the crash harness (chaos/, before each run) start every test or
run from an empty stack. Making it through boto3 (three tables, a TTL, two queues, six SSM parameters) took most of
a unit test's set-up and a third of a crash run. Emptying it in moto's own models (the tables' items, the queues'
messages) costs well under a millisecond, and every other service is reset as `BackendDict.reset()` would.

What a test may change besides content is checked first: the stack's tables and queues must have the settings they
were made with (a table may be a copy: moto rolls a failed transaction back by copying the tables), its SSM
parameters must be the very versions written, and no other account or region may have been used; otherwise
`empty()` says why, and the caller makes the stack afresh.

This module knows moto's models (moto 5, as requirements-dev.txt pins it); tests/unit/test_moto_stack.py checks
that it empties what a test leaves behind and notices what it cannot empty.
"""

from __future__ import annotations

import copy

from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict, backend_lock
from moto.core.model_instances import reset_model_data

REGION = "us-east-1"
SERVICES = ("dynamodb", "sqs", "ssm")  # the stack's; every other service starts each test empty
# What reading and writing change: a table's items, a queue's messages. Everything else is a setting.
CONTENT = {
    "dynamodb": {"tables"},
    "sqs": {"queues"},
    "ssm": {"_parameters"},
}
TABLE_CONTENT = {"items"}
QUEUE_CONTENT = {"_messages", "_pending_messages", "deleted_messages", "_messages_lock", "last_purged_at"}


def _backend(service: str):
    return get_backend(service)[DEFAULT_ACCOUNT_ID][REGION]


def _settings(model, content: set[str]) -> dict:
    """A model's fields but its content, copied so that a change made in place shows (a model it refers to, such
    as a queue's dead-letter queue, is kept as itself: its own settings are checked on their own)."""
    found = {}
    for name, value in vars(model).items():
        if name in content:
            continue
        try:
            found[name] = copy.deepcopy(value)
        except TypeError:  # a lock, or a model holding one
            found[name] = value
    return found


def _parameters(ssm) -> dict[str, list]:
    return {name: list(ssm._parameters[name]) for name in list(ssm._parameters.keys())}


class MadeStack:
    """The stack's moto models as made, and what they were made with: make the stack, then this."""

    def __init__(self):
        ddb, sqs, ssm = (_backend(service) for service in SERVICES)
        self.backends = {
            service: (_backend(service), _settings(_backend(service), CONTENT[service])) for service in SERVICES
        }
        self.tables = {name: (table, _settings(table, TABLE_CONTENT)) for name, table in ddb.tables.items()}
        self.queues = {name: (queue, _settings(queue, QUEUE_CONTENT)) for name, queue in sqs.queues.items()}
        self.parameters = _parameters(ssm)

    def intact(self) -> str:
        """Why the stack cannot be emptied in place ('' when it can): something besides its content changed."""
        for service in SERVICES:
            backends = get_backend(service)
            if set(backends) != {DEFAULT_ACCOUNT_ID} or set(backends[DEFAULT_ACCOUNT_ID]) != {REGION}:
                return f"{service} used in another account or region"
            backend, settings = self.backends[service]
            if backends[DEFAULT_ACCOUNT_ID][REGION] is not backend:
                return f"{service} reset"
            if _settings(backend, CONTENT[service]) != settings:
                return f"{service} changed"
        ddb, sqs, ssm = (backend for backend, _ in self.backends.values())
        for kind, made, now, content in (
            ("table", self.tables, ddb.tables, TABLE_CONTENT),
            ("queue", self.queues, sqs.queues, QUEUE_CONTENT),
        ):
            if set(now) != set(made):
                return f"{kind}s added or deleted"
            for name, (_, settings) in made.items():
                if _settings(now[name], content) != settings:
                    return f"{kind} {name} changed"
        if _parameters(ssm) != self.parameters:  # the same parameter objects, none added, none overwritten
            return "SSM parameters changed"
        return ""

    def empty(self) -> str:
        """Empty the stack for the next test and reset every other service; the reason it could not ('' if done)."""
        with backend_lock:
            for backends in list(BackendDict._instances):
                if backends.service_name not in SERVICES:
                    for account_backends in backends.values():
                        account_backends.reset()
                    backends.clear()
                    BackendDict._instances.remove(backends)
        why = self.intact()
        if why:
            return why
        ddb, sqs = self.backends["dynamodb"][0], self.backends["sqs"][0]
        for table in ddb.tables.values():
            table.items.clear()
        for queue in sqs.queues.values():
            with queue._messages_lock:
                queue._messages = []
                queue._pending_messages = set()
                queue.deleted_messages = set()
        reset_model_data()  # moto's record of every model made, for its dashboard: bounded, as mock_aws's stop does
        return ""
