"""Retake the READMEs' two pictures from a local stack of their own: docs/card.png (the build card a DingTalk group
gets for a successful build, with its release buttons) and docs/release-page.png (the page such a button opens).

    python -m local.docs_images [--port 3700]     # `make docs-images`

It starts the stack on --port (every other port follows from it), sends the signed build_success sample, reads the
card the fake DingTalk received, draws it as DingTalk shows one (its markdown rendered by the e-mail channel's
converter, opsbot.channels.markdown.html_body), and opens the card's first button in headless chromium
(tests/browser_support.py). The stack is stopped afterwards, whatever happened. Both PNGs stay under 150 KB.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from local.ports import NotRunning, Ports, running  # noqa: E402

DOCS = ROOT / "docs"
CARD, RELEASE_PAGE = DOCS / "card.png", DOCS / "release-page.png"
MAX_BYTES = 150_000
SAMPLE = "events/drone/build_success.json"
# A DingTalk group as a phone shows it: grey background, the robot's name, the card as a white bubble.
CARD_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ margin: 0; padding: 14px; background: #f2f3f5; font: 14px/1.55 -apple-system, "Noto Sans CJK SC",
  "PingFang SC", sans-serif; color: #171a1d; }}
.robot {{ font-size: 12px; color: #747677; margin: 0 0 6px 2px; }}
.card {{ background: #fff; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
.body {{ padding: 4px 16px 8px; }}
.body h2, .body h3 {{ font-size: 16px; margin: 12px 0 8px; }}
.body p {{ margin: 6px 0; overflow-wrap: anywhere; }}
.body a {{ color: #0089ff; text-decoration: none; }}
.buttons {{ display: flex; border-top: 1px solid #eee; }}
.buttons span {{ flex: 1; text-align: center; padding: 11px 4px; color: #0089ff; }}
.buttons span + span {{ border-left: 1px solid #eee; }}
.mention {{ font-size: 12px; color: #747677; margin: 6px 2px 0; }}
</style></head><body>
<p class="robot">🤖 opsbot · {robot}</p>
<div class="card"><div class="body">{body}</div><div class="buttons">{buttons}</div></div>
<p class="mention">{mention}</p>
</body></html>"""


class Stack:
    """A local stack in a subprocess of its own, stopped (its whole process group) on exit."""

    def __init__(self, port: int):
        self.port, self.log = port, tempfile.NamedTemporaryFile(prefix="opsbot-docs-stack-", suffix=".log")
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> dict:
        taken = Ports.derive(self.port).taken()
        if taken:
            raise SystemExit(f"ports in use: {', '.join(taken)}; give another --port (DOCS_PORT=…)")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", "--port", str(self.port)],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the stack stopped: {Path(self.log.name).read_text(errors='replace')[-2000:]}")
            try:
                return running(self.port)
            except NotRunning:
                time.sleep(0.5)
        raise SystemExit("the stack did not answer within 120 s")

    def __exit__(self, *_exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def the_card(urls: dict, port: int) -> dict:
    """The actionCard the fake DingTalk got for the build_success sample (sent signed, as `make send` does)."""
    sent = subprocess.run(
        [sys.executable, "-m", "local.send", SAMPLE, "--port", str(port)], cwd=ROOT, capture_output=True, text=True
    )
    if sent.returncode != 0:
        raise SystemExit(f"make send failed: {sent.stdout}{sent.stderr}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        messages = requests.get(f"{urls['sink']}/_control/messages", timeout=5).json()["messages"]
        cards = [m for m in messages if m["message"].get("msgtype") == "actionCard"]
        if cards:
            return cards[0]
        time.sleep(0.3)
    raise SystemExit("no card reached the fake DingTalk within 60 s")


def card_html(sent: dict) -> str:
    from opsbot.channels.markdown import html_body

    card, at = sent["message"]["actionCard"], sent["message"].get("at") or {}
    buttons = "".join(f"<span>{html.escape(b['title'])}</span>" for b in card.get("btns") or [])
    mentioned = ", ".join(at.get("atUserIds", []))
    return CARD_PAGE.format(
        robot=html.escape(sent["robot"]),
        body=html_body(card["text"]),
        buttons=buttons,
        mention=f"@ {html.escape(mentioned)}" if mentioned else "",
    )


def shoot(browser, path: Path, height: int) -> None:
    """The first `height` CSS pixels of what the browser shows, as a PNG at `path`, refused above MAX_BYTES."""
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": browser.screen.width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
    png = browser.driver.get_screenshot_as_png()
    if len(png) > MAX_BYTES:
        raise SystemExit(f"{path.name} would be {len(png)} bytes, more than {MAX_BYTES}")
    path.write_bytes(png)
    print(f"wrote {path.relative_to(ROOT)} ({len(png) // 1024} KB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.docs_images", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=3700, help="the API port of the stack it starts (default 3700)")
    args = parser.parse_args(argv)

    from browser_support import PHONE, Browser, missing

    if missing():
        print(missing(), file=sys.stderr)
        return 2
    DOCS.mkdir(exist_ok=True)
    with Stack(args.port) as info:
        sent = the_card(info["urls"], args.port)
        with Browser(PHONE) as browser:
            with tempfile.TemporaryDirectory() as scratch:
                page = Path(scratch) / "card.html"
                page.write_text(card_html(sent), encoding="utf-8")
                browser.open(page.as_uri())
                shoot(browser, CARD, 340)
            browser.open(sent["message"]["actionCard"]["btns"][0]["actionURL"])
            shoot(browser, RELEASE_PAGE, 400)
    print(json.dumps({"card": sent["message"]["actionCard"]["title"]}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
