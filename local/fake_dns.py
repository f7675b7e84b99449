"""A small authoritative DNS server on loopback (UDP) that answers from moto's Route 53 zones, so that the check
after a `dns set` is real DNS: dnspython's resolver asks this server, as it would ask a zone's own name servers.

Answers are built with dnspython: the record sets of the queried name and type (AA set), NOERROR with no answer
when the name has other types, NXDOMAIN when the zone has no such name, REFUSED for a name in no zone.
"""

from __future__ import annotations

import socketserver
import threading

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class ZoneReader:
    """Reads moto's hosted zones and records, on each question (they change under the stack's feet)."""

    def __init__(self, moto_url: str):
        import boto3

        self.route53 = boto3.client(
            "route53",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def records(self, name: str) -> tuple[bool, list[dict]]:
        """(whether a zone holds the name, the record sets of exactly that name)."""
        name = name.rstrip(".").lower() + "."
        zones = [z for z in self.route53.list_hosted_zones()["HostedZones"] if name.endswith(z["Name"].lower())]
        if not zones:
            return False, []
        zone = max(zones, key=lambda z: len(z["Name"]))
        found = self.route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        return True, [r for r in found if r["Name"].lower().replace("\\052", "*") == name]


def answer(query: dns.message.Message, reader: ZoneReader) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    in_zone, records = reader.records(question.name.to_text())
    if not in_zone:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    if not records:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    wanted = dns.rdatatype.to_text(question.rdtype)
    for record in records:
        if record["Type"] == wanted and record.get("ResourceRecords"):
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name,
                    int(record.get("TTL") or 300),
                    dns.rdataclass.IN,
                    wanted,
                    [v["Value"] for v in record["ResourceRecords"]],
                )
            )
    return response


def make_server(moto_url: str, host: str, port: int) -> socketserver.UDPServer:
    reader = ZoneReader(moto_url)
    lock = threading.Lock()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            try:
                query = dns.message.from_wire(data)
            except Exception:  # not DNS: say nothing, as a server does
                return
            with lock:
                try:
                    reply = answer(query, reader)
                except Exception:
                    reply = dns.message.make_response(query)
                    reply.set_rcode(dns.rcode.SERVFAIL)
            sock.sendto(reply.to_wire(), self.client_address)

    server = socketserver.ThreadingUDPServer((host, port), Handler)
    server.daemon_threads = True
    return server
