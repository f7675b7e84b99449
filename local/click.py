"""Follow a release link on the local stack as a person, the way DingTalk's in-app browser would, printing each step.

    python -m local.click <link> [--as alice] [--port 3000]

1. opens the link (`GET /actions/<token>`): the facts and the "sign in with DingTalk" button;
2. follows the button to the fake DingTalk login as that person (`/oauth2/auth?…&as=<their DingTalk user id>`),
   which redirects back with a one-time code;
3. opens that redirect (`GET /actions/login?authCode=…&state=…`): who DingTalk says you are, and either the
   confirmation form or the reason you may not;
4. submits the form (`POST /actions/<token>`) and prints what the group hears in the next seconds.

`--as` takes a person id from the config (their `dingtalk_user_id` signs in), `stranger` (a member of the
organisation that opsbot's config does not list), or a DingTalk user id as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from local.chat import find_person, watch  # noqa: E402
from local.fake_dingtalk_login import OUTSIDER  # noqa: E402
from local.ports import running_or_told  # noqa: E402


class Page(HTMLParser):
    """The parts of an opsbot page (or the fake login's) that a person would read or press."""

    def __init__(self, html: str):
        super().__init__()
        self.buttons: list[str] = []  # hrefs of <a class="button">
        self.form_action: str | None = None
        self.fields: dict[str, str] = {}
        self.lines: list[str] = []
        self._text: list[str] = []
        self._hidden = 0  # inside <style> or <title>
        self.feed(html)
        self._flush()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and "button" in (attributes.get("class") or "").split():
            self.buttons.append(attributes.get("href") or "")
        elif tag == "form":
            self.form_action = attributes.get("action") or ""
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes.get("name") or ""] = attributes.get("value") or ""
        elif tag in ("style", "title"):
            self._hidden += 1
        elif tag in ("h1", "p", "dt", "dd", "li", "br"):
            self._flush()

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._hidden -= 1
        elif tag in ("h1", "p", "dt", "li"):
            self._flush()
        elif tag == "dd":  # "项目 Project: shop-api" on one line
            self._flush()
            if len(self.lines) >= 2:
                self.lines[-2:] = [f"{self.lines[-2]}: {self.lines[-1]}"]

    def handle_data(self, data):
        if not self._hidden:
            self._text.append(data)

    def _flush(self):
        text = re.sub(r"\s+", " ", "".join(self._text)).strip()
        self._text = []
        if text:
            self.lines.append(text)


def show(step: str, response: requests.Response) -> Page:
    print(f"\n── {step}: HTTP {response.status_code}")
    page = Page(response.text) if "html" in response.headers.get("content-type", "") else Page("")
    for line in page.lines:
        print(f"   {unescape(line)}")
    return page


def user_id_for(who: str, config: Path) -> str:
    if who == "stranger":
        return OUTSIDER["userid"]
    person = find_person(config, who)
    return (person or {}).get("dingtalk_user_id") or who


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.click", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("link", help="a release link from a card, http://127.0.0.1:3000/actions/<token>")
    parser.add_argument("--as", dest="who", default="alice", help="a person id from the config, or stranger")
    parser.add_argument("--config", default="", help="the config directory (default: the one the stack loaded)")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    parser.add_argument("--wait", type=float, default=20.0, help="at most this many seconds for what the group hears")
    args = parser.parse_args(argv)

    stack = running_or_told(args.port)
    if stack is None:
        return 2
    sink = stack["urls"]["sink"]
    user_id = user_id_for(args.who, Path(args.config or stack["config"]))
    browser = requests.Session()
    browser.headers["User-Agent"] = "Mozilla/5.0 (local.click) DingTalk/7.6.0"
    seen = len(browser.get(f"{sink}/_control/messages", timeout=5).json()["messages"])
    try:
        page = show(f"1. open the link ({args.link[:60]}…)", browser.get(args.link, timeout=10))
    except requests.ConnectionError:
        print(f"nothing answers at {args.link[:60]}…: is it a link of the stack on port {stack['ports']['api']}?")
        return 2
    if not page.buttons:
        print("\nno sign-in button on the page: nothing to follow")
        return 1
    redirect = browser.get(f"{page.buttons[0]}&as={user_id}", timeout=10, allow_redirects=False)
    print(f"\n── 2. sign in with the fake DingTalk as {args.who} ({user_id}): HTTP {redirect.status_code}")
    location = redirect.headers.get("Location", "")
    if redirect.status_code != 302 or not location:
        print(f"   {Page(redirect.text).lines}")
        return 1
    print(f"   DingTalk redirects to {location.split('?')[0]}?authCode=…&state=…")
    page = show("3. back at opsbot with DingTalk's code", browser.get(location, timeout=15))
    if page.form_action is None:
        print("\nno confirmation form: nothing was released")
        return 1
    show("4. confirm", browser.post(urljoin(location, page.form_action), data=page.fields, timeout=10))
    print("\n── what the group hears")
    if not watch(sink, seen, args.wait):
        print(f"(nothing within {args.wait:g} s: it will show in the `make run` terminal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
