"""The global config's `ops:` section: what ops commands may touch (opsbot.ops). Targets are data, never typed in
chat: a cluster, a VM group, a runbook, a DNS zone and a service are names the config defines, each with its
environment, and the limits on what may be done to it.

Kept apart from model.py, as review.py is; model.py calls `parse()` with its line-aware checker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OPS_KEYS = {"confirm_minutes", "environments", "clusters", "vm_groups", "runbooks", "dns_zones", "services"}
OPS_ENVIRONMENT_KEYS = {"approvals"}
CLUSTER_KEYS = {
    "environment",
    "eks",
    "api_server",
    "ca",
    "token",
    "namespaces",
    "min_replicas",
    "max_replicas",
    "rollout_minutes",
}
EKS_KEYS = {"name", "region"}
VM_GROUP_KEYS = {"environment", "targets", "max_concurrency", "max_errors"}
TARGET_KEYS = {"tag", "resource_group"}
RUNBOOK_KEYS = {"document", "commands", "parameters", "groups", "timeout_seconds", "description"}
PARAMETER_KEYS = {"type", "allowed", "min", "max", "default"}
PARAMETER_TYPES = ("integer", "choice", "version")  # version: a release's image tag (GitOps `apply: runbook`)
ZONE_KEYS = {"zone_id", "name", "environment", "types", "ttl", "protected", "nameservers"}
TTL_KEYS = {"min", "max"}
SERVICE_TARGET_KEYS = {"kubernetes", "runbook", "group"}
WORKLOAD_KEYS = {"cluster", "namespace", "deployment"}
SHELL_DOCUMENT = "AWS-RunShellScript"  # its commands are the config's own, with typed parameters quoted in
RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS")  # what a zone's `types` may name
DEFAULT_RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")
CLUSTERS_AREA = "clusters"  # /opsbot/<stage>/clusters/: API server tokens, which only the worker reads
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_DOCUMENT = re.compile(r"^[A-Za-z0-9_.-]{3,128}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)\s*\}\}")
_RATE = re.compile(r"^(0|[1-9][0-9]{0,4})(%?)$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NAMESERVER = re.compile(r"^[0-9.]+(:[0-9]{1,5})?$|^[0-9a-f:]+$|^[a-z0-9.-]+\.?$")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")  # an image tag, never text a shell would read
_TAG_KEY = re.compile(r"^[\w.:/=+@ -]{1,128}$")


@dataclass(frozen=True)
class Cluster:
    name: str
    environment: str
    eks_name: str = ""  # EKS: the cluster's name and region; endpoint and CA come from eks:DescribeCluster
    eks_region: str = ""
    api_server: str = ""  # otherwise: the API server's URL, its CA (PEM) and a token from SSM
    ca: str = ""
    token: str = ""  # secret, under /opsbot/<stage>/clusters/
    namespaces: tuple[str, ...] = ()
    min_replicas: int = 1
    max_replicas: int = 10
    rollout_minutes: int = 10  # a rollout with no result by then is reported stuck


@dataclass(frozen=True)
class VmGroup:
    name: str
    environment: str
    tags: dict[str, str] = field(default_factory=dict)  # every tag must match
    resource_group: str = ""
    max_concurrency: str = "1"  # a number or a percentage, as SSM's MaxConcurrency
    max_errors: str = "0"  # as SSM's MaxErrors: stop sending after more errors than this


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # integer | choice
    allowed: tuple[str, ...] = ()  # for choice
    minimum: int = 0
    maximum: int = 0
    default: str = ""  # "" means required


@dataclass(frozen=True)
class Runbook:
    name: str
    document: str
    commands: tuple[str, ...] = ()  # AWS-RunShellScript only: the script, with {{parameter}} placeholders
    parameters: dict[str, Parameter] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    timeout_seconds: int = 600
    description: str = ""


@dataclass(frozen=True)
class DnsZone:
    name: str  # the config's name for it
    zone_id: str
    domain: str  # the zone's DNS name, without the final dot
    environment: str
    types: tuple[str, ...] = DEFAULT_RECORD_TYPES
    ttl_min: int = 60
    ttl_max: int = 86400
    protected: tuple[str, ...] = ()  # names that never change; the apex always is
    nameservers: tuple[str, ...] = ()  # where the check asks, host[:port]; () means the zone's own

    def protects(self, name: str) -> bool:
        name = name.rstrip(".").lower()
        return name == self.domain or name in self.protected


@dataclass(frozen=True)
class ServiceTarget:
    """Where one service runs in one environment: a Deployment, or a runbook on a VM group."""

    environment: str
    cluster: str = ""
    namespace: str = ""
    deployment: str = ""
    runbook: str = ""
    group: str = ""

    @property
    def on_kubernetes(self) -> bool:
        return bool(self.cluster)


@dataclass(frozen=True)
class Ops:
    confirm_minutes: int = 10  # a preview must be confirmed within this
    approvals: dict[str, int] = field(default_factory=dict)  # environment -> approvals an ops act there needs
    clusters: dict[str, Cluster] = field(default_factory=dict)
    vm_groups: dict[str, VmGroup] = field(default_factory=dict)
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    dns_zones: dict[str, DnsZone] = field(default_factory=dict)
    services: dict[str, dict[str, ServiceTarget]] = field(default_factory=dict)  # name -> environment -> target

    def zone_for(self, name: str) -> DnsZone | None:
        """The configured zone a record name belongs to (the longest suffix wins)."""
        name = name.rstrip(".").lower()
        found = [z for z in self.dns_zones.values() if name == z.domain or name.endswith("." + z.domain)]
        return max(found, key=lambda z: len(z.domain), default=None)


def parse(checker, root: dict) -> Ops:
    spec = checker.mapping(root.get("ops"), OPS_KEYS, "ops", root, "ops")
    if not spec:
        return Ops()
    approvals = {}
    envs = checker.named_sections(spec, "environments", "environment")
    for env, env_spec in envs.items():
        env_spec = checker.mapping(env_spec, OPS_ENVIRONMENT_KEYS, f"ops.environments.{env}", envs, env)
        approvals[str(env)] = checker.integer(env_spec, "approvals", f"ops.environments.{env}", 0, 0, 5)
    clusters = _sections(checker, spec, "clusters", _cluster)
    groups = _sections(checker, spec, "vm_groups", _vm_group)
    runbooks = _sections(checker, spec, "runbooks", _runbook)
    for runbook_name, runbook in runbooks.items():
        for group in runbook.groups:
            if group not in groups:
                where = spec["runbooks"][runbook_name]
                checker.problem(where, "groups", f"ops.runbooks.{runbook_name}: no vm_group '{group}'")
    zones = _sections(checker, spec, "dns_zones", _zone)
    ops = Ops(
        confirm_minutes=checker.integer(spec, "confirm_minutes", "ops", 10, 1, 60),
        approvals=approvals,
        clusters=clusters,
        vm_groups=groups,
        runbooks=runbooks,
        dns_zones=zones,
    )
    services = _services(checker, spec, ops)
    return Ops(ops.confirm_minutes, approvals, clusters, groups, runbooks, zones, services)


def _sections(checker, spec: dict, key: str, parse_one) -> dict:
    found = {}
    section = checker.named_sections(spec, key, key.rstrip("s").replace("_", " "))
    for name, item in section.items():
        where = f"ops.{key}.{name}"
        if not _NAME.match(str(name)):
            checker.problem(section, name, f"{where}: a name is lowercase letters, digits, . _ -")
        if not isinstance(item, dict):
            checker.problem(section, name, f"{where} must be a mapping")
            continue
        found[str(name)] = parse_one(checker, str(name), item, where)
    return found


def _environment(checker, item: dict, where: str) -> str:
    return checker.string(item, "environment", where, required=True)


def _cluster(checker, name: str, item: dict, where: str) -> Cluster:
    checker.mapping(item, CLUSTER_KEYS, where)
    eks = checker.mapping(item.get("eks"), EKS_KEYS, f"{where}.eks", item, "eks")
    has_eks, has_server = bool(eks), item.get("api_server") is not None
    if has_eks == has_server:
        checker.problem(item, None, f"{where}: give either eks (name, region) or api_server (with ca and token)")
    api_server = ca = token = ""
    if has_server:
        api_server = checker.https_url(item, "api_server", where, "https://k8s.example.com:6443", peer="kubernetes")
        token = checker.secret(item, "token", where, CLUSTERS_AREA)
        ca = checker.string(item, "ca", where, required=not checker.allow_literal_secrets)
        if ca and "-----BEGIN CERTIFICATE-----" not in ca:
            checker.problem(item, "ca", f"{where}.ca is the API server's CA certificate, in PEM")
    namespaces = checker.strings(item, "namespaces", where)
    for namespace in namespaces:
        if not _K8S_NAME.match(namespace):
            checker.problem(item, "namespaces", f"{where}.namespaces: '{namespace}' is not a namespace name")
    if not namespaces:
        checker.problem(item, None, f"{where}: 'namespaces' lists the namespaces opsbot may touch")
    minimum = checker.integer(item, "min_replicas", where, 1, 0, 100)
    maximum = checker.integer(item, "max_replicas", where, 10, 0, 100)
    if maximum < minimum:
        checker.problem(item, "max_replicas", f"{where}.max_replicas is below min_replicas")
    return Cluster(
        name=name,
        environment=_environment(checker, item, where),
        eks_name=checker.string(eks, "name", f"{where}.eks", required=True) if has_eks else "",
        eks_region=checker.string(eks, "region", f"{where}.eks", required=True) if has_eks else "",
        api_server=api_server,
        ca=ca,
        token=token,
        namespaces=namespaces,
        min_replicas=minimum,
        max_replicas=maximum,
        rollout_minutes=checker.integer(item, "rollout_minutes", where, 10, 1, 60),
    )


def _rate(checker, item: dict, key: str, where: str, default: str, minimum: int) -> str:
    value = item.get(key)
    if value is None:
        return default
    text = str(value).strip()
    found = _RATE.match(text) if not isinstance(value, bool) else None
    if found is None or int(found.group(1)) < minimum or (found.group(2) and int(found.group(1)) > 100):
        checker.problem(item, key, f"{where}.{key} must be a number (at least {minimum}) or a percentage, like 25%")
        return default
    return text


def _vm_group(checker, name: str, item: dict, where: str) -> VmGroup:
    checker.mapping(item, VM_GROUP_KEYS, where)
    targets = checker.mapping(item.get("targets"), TARGET_KEYS, f"{where}.targets", item, "targets")
    tags = targets.get("tag") or {}
    if not isinstance(tags, dict):
        checker.problem(targets, "tag", f"{where}.targets.tag is a mapping of tag key to value")
        tags = {}
    tags = {str(k): str(v) for k, v in tags.items()}
    for key in tags:
        if not _TAG_KEY.match(key):
            checker.problem(targets, "tag", f"{where}.targets.tag: '{key}' is not a tag key")
    resource_group = checker.string(targets, "resource_group", f"{where}.targets")
    if bool(tags) == bool(resource_group):
        checker.problem(item, "targets", f"{where}.targets: give either tag (key: value) or resource_group")
    return VmGroup(
        name=name,
        environment=_environment(checker, item, where),
        tags=tags,
        resource_group=resource_group,
        max_concurrency=_rate(checker, item, "max_concurrency", where, "1", 1),
        max_errors=_rate(checker, item, "max_errors", where, "0", 0),
    )


def _parameter(checker, name: str, item, where: str) -> Parameter:
    if not isinstance(item, dict):
        checker.problem(item, None, f"{where} must be a mapping with a type")
        return Parameter(name, "choice")
    checker.mapping(item, PARAMETER_KEYS, where)
    kind = checker.string(item, "type", where, required=True)
    if kind not in PARAMETER_TYPES:
        checker.problem(item, "type", f"{where}.type must be one of {', '.join(PARAMETER_TYPES)} (no free text)")
        kind = "choice"
    allowed = checker.strings(item, "allowed", where)
    if kind == "choice" and not allowed:
        checker.problem(item, None, f"{where}: a choice lists its allowed values")
    for value in allowed:
        if not re.fullmatch(r"[\w.@/:=+-]{1,100}", value):
            checker.problem(item, "allowed", f"{where}.allowed: '{value}' may hold letters, digits and . _ @ / : = + -")
    minimum = checker.integer(item, "min", where, 0, -1_000_000, 1_000_000) if kind == "integer" else 0
    maximum = checker.integer(item, "max", where, 1_000_000, -1_000_000, 1_000_000) if kind == "integer" else 0
    default = item.get("default")
    default_text = "" if default is None else str(default)
    parameter = Parameter(name, kind, allowed, minimum, maximum, default_text)
    if default_text and parameter_problem(parameter, default_text):
        checker.problem(item, "default", f"{where}.default: {parameter_problem(parameter, default_text)}")
    return parameter


def parameter_problem(parameter: Parameter, value: str) -> str:
    """Why `value` does not fit the parameter ("" when it does): the one check for config and chat alike."""
    if parameter.type == "integer":
        if not re.fullmatch(r"-?[0-9]{1,7}", value):
            return f"{parameter.name} must be a whole number"
        if not parameter.minimum <= int(value) <= parameter.maximum:
            return f"{parameter.name} must be from {parameter.minimum} to {parameter.maximum}"
        return ""
    if parameter.type == "version":
        if not _VERSION.fullmatch(value):
            return f"{parameter.name} must be a version: letters, digits and . _ + - (at most 128)"
        return ""
    if value not in parameter.allowed:
        return f"{parameter.name} must be one of {', '.join(parameter.allowed)}"
    return ""


def _runbook(checker, name: str, item: dict, where: str) -> Runbook:
    checker.mapping(item, RUNBOOK_KEYS, where)
    document = checker.string(item, "document", where, default=SHELL_DOCUMENT)
    if not _DOCUMENT.match(document):
        checker.problem(item, "document", f"{where}.document '{document}' is not an SSM document name")
    commands = checker.strings(item, "commands", where)
    section = checker.named_sections(item, "parameters", "parameter")
    parameters = {str(p): _parameter(checker, str(p), spec, f"{where}.parameters.{p}") for p, spec in section.items()}
    for parameter in parameters:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", parameter):
            checker.problem(section, parameter, f"{where}.parameters: '{parameter}' is lowercase letters, digits, _")
    if document == SHELL_DOCUMENT:
        if not commands:
            checker.problem(item, None, f"{where}: an {SHELL_DOCUMENT} runbook lists its commands")
        for command in commands:
            for used in _PLACEHOLDER.findall(command):
                if used not in parameters:
                    checker.problem(item, "commands", f"{where}.commands: {{{{{used}}}}} is not a parameter")
    elif commands:
        checker.problem(item, "commands", f"{where}.commands are for {SHELL_DOCUMENT}; {document} takes parameters")
    groups = checker.strings(item, "groups", where)
    if not groups:
        checker.problem(item, None, f"{where}: 'groups' lists the VM groups it may run on")
    return Runbook(
        name=name,
        document=document,
        commands=commands,
        parameters=parameters,
        groups=groups,
        timeout_seconds=checker.integer(item, "timeout_seconds", where, 600, 30, 172800),
        description=checker.string(item, "description", where),
    )


def placeholders(command: str) -> list[str]:
    return _PLACEHOLDER.findall(command)


def substitute(command: str, values: dict[str, str], quote) -> str:
    """A runbook command with its {{parameters}} replaced by `quote(value)`: values are typed and checked, and
    quoted for the shell besides."""
    return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)]), command)


def _zone(checker, name: str, item: dict, where: str) -> DnsZone:
    checker.mapping(item, ZONE_KEYS, where)
    zone_id = checker.string(item, "zone_id", where, required=True)
    if zone_id and not _ZONE_ID.match(zone_id):
        checker.problem(item, "zone_id", f"{where}.zone_id '{zone_id}' is not a hosted zone id (Z…)")
    domain = checker.string(item, "name", where, required=True).rstrip(".").lower()
    if domain and not _HOSTNAME.match(domain):
        checker.problem(item, "name", f"{where}.name '{domain}' is not a DNS name")
    types = checker.strings(item, "types", where) or DEFAULT_RECORD_TYPES
    for kind in types:
        if kind not in RECORD_TYPES:
            checker.problem(item, "types", f"{where}.types: '{kind}' is not one of {', '.join(RECORD_TYPES)}")
    ttl = checker.mapping(item.get("ttl"), TTL_KEYS, f"{where}.ttl", item, "ttl")
    ttl_min = checker.integer(ttl, "min", f"{where}.ttl", 60, 1, 604800)
    ttl_max = checker.integer(ttl, "max", f"{where}.ttl", 86400, 1, 604800)
    if ttl_max < ttl_min:
        checker.problem(item, "ttl", f"{where}.ttl.max is below ttl.min")
    protected = tuple(p.rstrip(".").lower() for p in checker.strings(item, "protected", where))
    for entry in protected:
        if entry != domain and not entry.endswith("." + domain):
            checker.problem(item, "protected", f"{where}.protected: '{entry}' is not in {domain}")
    nameservers = tuple(
        checker.local_peer(item, "nameservers", where, s) for s in checker.strings(item, "nameservers", where)
    )
    for server in nameservers:
        if not _NAMESERVER.match(server) and not server.startswith("local://"):
            checker.problem(item, "nameservers", f"{where}.nameservers: '{server}' is not host[:port]")
    return DnsZone(
        name=name,
        zone_id=zone_id,
        domain=domain,
        environment=_environment(checker, item, where),
        types=types,
        ttl_min=ttl_min,
        ttl_max=ttl_max,
        protected=protected,
        nameservers=nameservers,
    )


def _services(checker, spec: dict, ops: Ops) -> dict[str, dict[str, ServiceTarget]]:
    services: dict[str, dict[str, ServiceTarget]] = {}
    section = checker.named_sections(spec, "services", "service")
    for name, by_env in section.items():
        where = f"ops.services.{name}"
        if not _NAME.match(str(name)) or not isinstance(by_env, dict) or not by_env:
            checker.problem(section, name, f"{where}: a service name maps each environment to where it runs")
            continue
        services[str(name)] = {}
        for env, item in by_env.items():
            here = f"{where}.{env}"
            item = checker.mapping(item, SERVICE_TARGET_KEYS, here, by_env, env)
            services[str(name)][str(env)] = _service_target(checker, item, str(env), here, ops)
    return services


def _service_target(checker, item: dict, env: str, where: str, ops: Ops) -> ServiceTarget:
    workload = checker.mapping(item.get("kubernetes"), WORKLOAD_KEYS, f"{where}.kubernetes", item, "kubernetes")
    runbook = checker.string(item, "runbook", where)
    if bool(workload) == bool(runbook):
        checker.problem(item, None, f"{where}: give either kubernetes (cluster, namespace, deployment) or runbook")
        return ServiceTarget(env)
    if workload:
        cluster = checker.string(workload, "cluster", f"{where}.kubernetes", required=True)
        namespace = checker.string(workload, "namespace", f"{where}.kubernetes", required=True)
        deployment = checker.string(workload, "deployment", f"{where}.kubernetes", required=True)
        found = ops.clusters.get(cluster)
        if found is None:
            checker.problem(workload, "cluster", f"{where}.kubernetes: no cluster '{cluster}'")
        elif found.environment != env:
            checker.problem(workload, "cluster", f"{where}: cluster {cluster} is {found.environment}, not {env}")
        elif namespace not in found.namespaces:
            checker.problem(workload, "namespace", f"{where}: {cluster} does not list namespace '{namespace}'")
        if deployment and not _K8S_NAME.match(deployment):
            checker.problem(workload, "deployment", f"{where}: '{deployment}' is not a Deployment name")
        return ServiceTarget(env, cluster=cluster, namespace=namespace, deployment=deployment)
    group = checker.string(item, "group", where, required=True)
    found_runbook, found_group = ops.runbooks.get(runbook), ops.vm_groups.get(group)
    if found_runbook is None:
        checker.problem(item, "runbook", f"{where}: no runbook '{runbook}'")
    elif group not in found_runbook.groups:
        checker.problem(item, "group", f"{where}: runbook {runbook} may not run on '{group}'")
    elif any(not p.default for p in found_runbook.parameters.values()):
        checker.problem(item, "runbook", f"{where}: runbook {runbook} needs parameters without defaults")
    if found_group is not None and found_group.environment != env:
        checker.problem(item, "group", f"{where}: vm_group {group} is {found_group.environment}, not {env}")
    return ServiceTarget(env, runbook=runbook, group=group)
