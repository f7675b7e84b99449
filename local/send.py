"""Send a sample event from events/ to the running local stack, signed afresh as its real sender would.

    python -m local.send events/drone/build_failure.json [--raw] [--port 3000]

Samples named bad_* or stale_* are sent exactly as stored (their point is a failing check), as is any
sample with --raw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from local.signing import event_body, kept_as_stored, signed_afresh  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("event", help="an API Gateway v2 event file under events/")
    parser.add_argument("--raw", action="store_true", help="send the stored headers unchanged")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)))
    args = parser.parse_args(argv)

    event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    raw = args.raw or kept_as_stored(args.event)
    if not raw:
        event = signed_afresh(event)
    body, path, headers = event_body(event), event["rawPath"], dict(event["headers"])
    headers.pop("content-length", None)
    headers.pop("host", None)
    url = f"http://127.0.0.1:{args.port}{path}"
    try:
        method = event["requestContext"]["http"]["method"]
        response = requests.request(method, url, data=body or None, headers=headers, timeout=10)
    except requests.ConnectionError:
        print(f"nothing is listening on {url}: start the local stack first with `make run`", file=sys.stderr)
        return 2
    content_type = response.headers.get("content-type", "")
    shown = response.text if "json" in content_type else f"{len(response.content)} bytes of {content_type}"
    print(f"{method} {path[:60]} ({'as stored' if raw else 'signed now'}) -> {response.status_code} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
