"""A burst of 60 finished builds for one robot: every build reaches the group, within DingTalk's limit."""

from __future__ import annotations

import json
import re
import time

TOKEN = "local-burst"


def test_sixty_builds_in_a_minute_fold_into_digests_without_tripping_the_limit(stack):
    numbers = [stack.next_number() for _ in range(60)]
    started = time.monotonic()
    for number in numbers:
        response = stack.post_drone(stack.drone_body("build_failure", number, repo="burst-api"))
        assert response.status_code == 202, response.text
    assert time.monotonic() - started < 60, "the burst itself must fit in one minute"

    def all_delivered():
        text = " ".join(json.dumps(m["message"], ensure_ascii=False) for m in stack.messages(TOKEN))
        return all(re.search(rf"#{n}(?!\d)", text) for n in numbers)

    # The first 20 go out at once; the rest wait for the window to free up (about a minute) as one digest.
    assert stack.wait_for(all_delivered, timeout=150, interval=1.0), "some builds never reached the group"

    rejected = [r for r in stack.rejections() if r["access_token"] == TOKEN]
    assert not [r for r in rejected if r["errcode"] == 130101], "DingTalk's rate limit was tripped"
    times = sorted(m["at"] for m in stack.messages(TOKEN))
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + 60]
        assert len(in_window) <= 20, f"{len(in_window)} messages within one minute"
    assert len(times) < 60, "a burst should be folded, not sent one by one"
