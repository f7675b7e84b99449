"""What the local stack needs from template.yaml, so routes and resources have one source of truth."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref, !GetAtt, !Sub, …) as their long forms."""


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass
class Route:
    method: str
    path: str
    function: str
    pattern: re.Pattern = field(repr=False, default=None)

    def __post_init__(self):
        self.pattern = re.compile("^" + re.sub(r"\{([^/]+?)\}", r"(?P<\1>[^/]+)", self.path) + "$")

    @property
    def parameters(self) -> int:
        return self.path.count("{")


@dataclass
class Function:
    logical_id: str
    code_uri: str
    handler: str
    sqs_queue: str = ""  # logical id of the queue it consumes, if any


@dataclass
class Template:
    raw: dict
    functions: dict[str, Function]
    routes: list[Route]

    def route_for(self, method: str, path: str) -> tuple[Route, dict] | None:
        """The route API Gateway would pick, with its path parameters: a static route (`/actions/login`) wins over
        one with parameters (`/actions/{token}`), as the most specific match does there."""
        for route in sorted(self.routes, key=lambda r: r.parameters):
            if route.method == method and (match := route.pattern.match(path)):
                return route, match.groupdict()
        return None

    def resources_of(self, kind: str) -> dict[str, dict]:
        return {k: v for k, v in self.raw["Resources"].items() if v["Type"] == kind}

    def parameter_default(self, name: str) -> str:
        return str(self.raw.get("Parameters", {}).get(name, {}).get("Default", ""))

    def global_environment(self) -> dict:
        return self.raw.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})

    def timeout_seconds(self, logical_id: str) -> int:
        """A function's timeout: its own, else the Globals' (Lambda's default is 3 s)."""
        own = self.raw["Resources"][logical_id]["Properties"].get("Timeout")
        return int(own or self.raw.get("Globals", {}).get("Function", {}).get("Timeout") or 3)

    def function_environment(self, logical_id: str) -> dict:
        """The variables a function gets: the Globals', then its own (which win)."""
        own = (self.raw["Resources"][logical_id]["Properties"].get("Environment") or {}).get("Variables") or {}
        return {**self.global_environment(), **own}


def load(path: str | Path) -> Template:
    raw = yaml.load(Path(path).read_text(), Loader=_CfnLoader)
    functions, routes = {}, []
    for logical_id, resource in raw["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        function = Function(logical_id, props["CodeUri"], props["Handler"])
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                routes.append(Route(event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical_id))
            elif event["Type"] == "SQS":
                function.sqs_queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
        functions[logical_id] = function
    return Template(raw, functions, routes)
