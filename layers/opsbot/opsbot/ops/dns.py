"""DNS through Route 53, within what a zone's config allows (record types, a TTL range, names that never change),
and checked by real DNS afterwards: dnspython asks the zone's own name servers (or the ones the config names).

A change is an UPSERT of one record set, with a snapshot of the record set before it: the preview shows old → new,
the change refuses to run if the record moved since the preview, and `dns undo` restores the snapshot (an UPSERT of
the old set, or a DELETE, which Route 53 takes only with the exact values opsbot set).
dnspython is imported only by `verify`, which only the worker's DNS follow-up calls.
"""

from __future__ import annotations

import ipaddress
import re

from opsbot.aws import client
from opsbot.config.ops import DnsZone
from opsbot.ops.peers import ROUTE53, Route53Refused, aws_call

COMMENT_CHARS = 256  # ChangeBatch's Comment limit
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$")
_TXT = re.compile(r"^[\x20-\x7e]{1,255}$")


class RecordError(ValueError):
    """A record that the zone's config, or DNS itself, does not allow; the message says why."""


def normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def check_value(kind: str, value: str) -> str:
    """The value as Route 53 wants it, or RecordError."""
    if kind == "A":
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise RecordError(f"'{value[:60]}' is not an IPv4 address") from None
    if kind == "AAAA":
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            raise RecordError(f"'{value[:60]}' is not an IPv6 address") from None
    if kind == "CNAME":
        host = normalise(value)
        if not _HOST.match(host):
            raise RecordError(f"'{value[:60]}' is not a host name")
        return host + "."
    if kind == "TXT":
        if not _TXT.match(value) or '"' in value or "\\" in value:
            raise RecordError("a TXT value is printable ASCII up to 255 characters, without quotes or backslashes")
        return f'"{value}"'
    raise RecordError(f"opsbot does not set {kind} records")


def check(zone: DnsZone, name: str, kind: str, ttl: int | None) -> tuple[str, int]:
    """(the record's full name, its TTL) if the zone allows this change, else RecordError."""
    name = normalise(name)
    if not _HOST.match(name):
        raise RecordError(f"'{name[:80]}' is not a DNS name")
    if name != zone.domain and not name.endswith("." + zone.domain):
        raise RecordError(f"{name} is not in the zone {zone.domain}")
    if zone.protects(name):
        raise RecordError(f"{name} is protected in the zone {zone.name}: it is never changed from chat")
    if kind not in zone.types:
        raise RecordError(f"the zone {zone.name} allows only {', '.join(zone.types)} records")
    ttl = zone.ttl_min if ttl is None else ttl
    if not zone.ttl_min <= ttl <= zone.ttl_max:
        raise RecordError(f"the TTL must be from {zone.ttl_min} to {zone.ttl_max} in the zone {zone.name}")
    return name, ttl


def record_sets(zone: DnsZone, name: str) -> list[dict]:
    """Every record set of exactly this name, as Route 53 lists them."""
    route53 = client("route53")
    name = normalise(name)
    found = aws_call(
        ROUTE53,
        route53.list_resource_record_sets,
        HostedZoneId=zone.zone_id,
        StartRecordName=name + ".",
        MaxItems="20",
    )
    return [_plain(r) for r in found.get("ResourceRecordSets", []) if normalise(_unescape(r["Name"])) == name]


def _unescape(name: str) -> str:
    return name.replace("\\052", "*")


def _plain(record: dict) -> dict:
    """A record set as opsbot keeps it: name, type, TTL and values (alias and routing policies are left as is)."""
    kept = {
        "Name": _unescape(record["Name"]),
        "Type": record["Type"],
        "TTL": int(record.get("TTL") or 0),
        "ResourceRecords": [{"Value": v["Value"]} for v in record.get("ResourceRecords", [])],
    }
    if "AliasTarget" in record or "SetIdentifier" in record:
        kept["Unmanaged"] = True  # an alias or a routed record: opsbot does not change those
    return kept


def current(zone: DnsZone, name: str, kind: str) -> dict | None:
    return next((r for r in record_sets(zone, name) if r["Type"] == kind), None)


def plan_set(zone: DnsZone, name: str, kind: str, value: str, ttl: int | None) -> dict:
    name, ttl = check(zone, name, kind, ttl)
    wanted = check_value(kind, value)
    existing = record_sets(zone, name)
    others = sorted({r["Type"] for r in existing} - {kind})
    if kind == "CNAME" and others:
        raise RecordError(f"{name} already has {', '.join(others)} records; a CNAME cannot stand beside them")
    if kind == "CNAME" and wanted == name + ".":
        raise RecordError(f"a CNAME cannot point at its own name ({name}): nothing would ever resolve")
    if kind != "CNAME" and "CNAME" in others:
        raise RecordError(f"{name} is a CNAME; no other record can stand beside it")
    before = next((r for r in existing if r["Type"] == kind), None)
    if before and before.get("Unmanaged"):
        raise RecordError(f"{name} {kind} is an alias or routed record; change it in Route 53 itself")
    after = {"Name": name + ".", "Type": kind, "TTL": ttl, "ResourceRecords": [{"Value": wanted}]}
    return {"zone": zone.name, "zone_id": zone.zone_id, "name": name, "type": kind, "before": before, "after": after}


def plan_undo(zone: DnsZone, done: dict) -> dict:
    """The plan that puts back what a `dns set` (its plan, as run) replaced."""
    return {
        "zone": zone.name,
        "zone_id": zone.zone_id,
        "name": done["name"],
        "type": done["type"],
        "before": done["after"],
        "after": done["before"],  # None: the record did not exist, so undo deletes it
        "undoes": done.get("request", ""),
    }


def values_of(record: dict | None) -> list[str]:
    return [v["Value"] for v in (record or {}).get("ResourceRecords", [])]


def same(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (a["Type"], int(a["TTL"]), sorted(values_of(a))) == (b["Type"], int(b["TTL"]), sorted(values_of(b)))


def change(zone: DnsZone, plan: dict, note: str) -> str:
    """Make the planned change, if the record is still what the preview showed; Route 53's change id, or "" when
    the record already is as planned."""
    now = current(zone, plan["name"], plan["type"])
    if plan["before"] != plan["after"] and same(now, plan["after"]):
        return ""  # already as planned: an earlier attempt made the change and lost Route 53's answer
    if not same(now, plan["before"]):
        raise Route53Refused(
            409, f"{plan['name']} {plan['type']} changed since the preview ({values_of(now) or 'none'}); ask again"
        )
    if plan["after"] is None:
        action, record = "DELETE", {k: v for k, v in plan["before"].items() if k != "Unmanaged"}
    else:
        action, record = "UPSERT", plan["after"]
    changed = aws_call(
        ROUTE53,
        client("route53").change_resource_record_sets,
        HostedZoneId=zone.zone_id,
        ChangeBatch={"Comment": note[:COMMENT_CHARS], "Changes": [{"Action": action, "ResourceRecordSet": record}]},
    )
    return changed["ChangeInfo"]["Id"]


def change_status(change_id: str) -> str:
    return aws_call(ROUTE53, client("route53").get_change, Id=change_id)["ChangeInfo"]["Status"]


def nameservers(zone: DnsZone) -> list[tuple[str, int]]:
    """(address, port) to ask: the config's, else the zone's delegation set, resolved."""
    if zone.nameservers:
        found = []
        for server in zone.nameservers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            found.append((host or server, int(port) if port else 53))
        return found
    delegation = aws_call(ROUTE53, client("route53").get_hosted_zone, Id=zone.zone_id).get("DelegationSet", {})
    import dns.resolver  # late: the DNS check is the only user of dnspython

    addresses = []
    for host in delegation.get("NameServers", [])[:4]:
        try:
            addresses += [(a.to_text(), 53) for a in dns.resolver.resolve(host, "A", lifetime=3)]
        except Exception:  # one name server that cannot be found does not stop the check at the others
            continue
    return addresses


def verify(zone: DnsZone, name: str, kind: str, expected: list[str], lifetime: float = 3.0) -> list[dict]:
    """Ask each of the zone's name servers for the record; what each said, and whether it matches."""
    import dns.exception
    import dns.nameserver
    import dns.resolver

    answers = []
    for address, port in nameservers(zone):
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]
        try:
            answer = resolver.resolve(name, kind, lifetime=lifetime)
            seen = sorted(r.to_text() for r in answer)
        except dns.resolver.NXDOMAIN:
            seen = ["NXDOMAIN"]
        except dns.resolver.NoAnswer:
            seen = []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            seen = [f"no answer ({type(exc).__name__})"]
        gone = not expected and seen in ([], ["NXDOMAIN"])  # an undo that deleted the record
        answers.append({"server": f"{address}:{port}", "seen": seen, "ok": gone or seen == sorted(expected)})
    return answers
