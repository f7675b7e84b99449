"""SES for the local stack: moto's SES, behind a small front that adds what moto leaves out.

The stack points the worker's SES client here (`AWS_ENDPOINT_URL_SES`, `<sink>/ses`). Each SendEmail is handed to
moto's server as it came (moto refuses a sender whose identity is not verified, 400 `MessageRejected`, as SES
does; the stack verifies the configured senders first), and what moto keeps is read back through its API
(`/moto-api/data.json`, `ses` → `Message`). In front, as SES would answer: more than one message a second from the
account in one region (the region of the request's SigV4 credential scope), whichever sender, is 400 `Throttling`
("Maximum sending rate exceeded."), and tests may inject faults (the next sends answer
503 `ServiceUnavailable` or 400 `Throttling`) through `/_control/email/faults` `{"robot": <sender>, …}`.
`/_control/email/messages` and `/_control/email/rejections` list what went through and what did not.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import parse_qs

from local.fake_channel import FakeChannel

PATHS = ("/ses", "/ses/")
LIMITS = ((1, 1.0),)
FORWARDED = ("content-type", "authorization", "x-amz-date", "x-amz-security-token", "user-agent")


def _region(headers) -> str:
    """The region a SigV4 request is signed for: `Credential=<key>/<date>/<region>/ses/aws4_request`."""
    credential = (headers.get("Authorization") or "").partition("Credential=")[2].split(",")[0]
    parts = credential.split("/")
    return parts[2] if len(parts) > 2 else ""


def error_xml(code: str, message: str, sender_fault: bool = True) -> str:
    kind = "Sender" if sender_fault else "Receiver"
    return (
        '<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


class FakeSes(FakeChannel):
    name, title = "email", "E-mail (SES)"

    def __init__(self, moto_endpoint: str, senders: dict[str, tuple[str, str]] | None = None, echo: bool = True):
        super().__init__(senders or {}, echo)  # a robot's sender -> (robot name, "")
        self.moto_endpoint = moto_endpoint.rstrip("/")

    def handle(self, method: str, url, headers, body: bytes) -> tuple | None:
        if not (method == "POST" and url.path in PATHS):
            return None
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        xml = {"Content-Type": "text/xml"}
        if form.get("Action") != "SendEmail":
            return self._forward(headers, body)  # anything else (VerifyEmailIdentity, …) is moto's alone
        sender = form.get("Source", "")
        with self.lock:
            if (status := self.fault(sender)) is not None:
                code, text = (
                    ("Throttling", "Maximum sending rate exceeded.")
                    if status == 400
                    else ("ServiceUnavailable", "Service is unavailable")
                )
                self.rejected.append({"at": time.time(), "robot": sender, "status": status, "reason": code})
                return status, error_xml(code, text, status == 400), xml
            if self.over_limit(f"account#{_region(headers)}", LIMITS, time.time()):
                self.rejected.append({"at": time.time(), "robot": sender, "status": 400, "reason": "Throttling"})
                return 400, error_xml("Throttling", "Maximum sending rate exceeded."), xml
        status, answer, extra = self._forward(headers, body)
        with self.lock:
            if status == 200:
                self.accept(
                    sender,
                    {
                        "from": sender,
                        "to": [v for k, v in form.items() if k.startswith("Destination.ToAddresses.member.")],
                        "cc": [v for k, v in form.items() if k.startswith("Destination.CcAddresses.member.")],
                        "subject": form.get("Message.Subject.Data", ""),
                        "text": form.get("Message.Body.Text.Data", ""),
                        "html": form.get("Message.Body.Html.Data", ""),
                    },
                )
            else:
                reason = answer.split("<Code>", 1)[-1].split("</Code>", 1)[0] if "<Code>" in answer else str(status)
                self.rejected.append({"at": time.time(), "robot": sender, "status": status, "reason": reason})
        return status, answer, extra

    def _forward(self, headers, body: bytes) -> tuple:
        request = urllib.request.Request(self.moto_endpoint + "/", data=body, method="POST")
        for name in FORWARDED:
            if headers.get(name):
                request.add_header(name, headers.get(name))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode(), {"Content-Type": "text/xml"}
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), {"Content-Type": "text/xml"}

    def for_terminal(self, body: dict) -> str:
        return f"From: {body['from']}\nTo: {', '.join(body['to'])}\nSubject: {body['subject']}\n\n{body['text']}"
