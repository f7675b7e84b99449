"""faq / 常见问题, and answers to free questions from the FAQ list in config.

Matching is fuzzy and works for Chinese and English alike: text is cut into English words and Chinese
character pairs, and a question scores by how much of an entry's question or examples it shares, plus a
bonus for each keyword it contains. Below the threshold the bot says it does not know and names who to ask.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, command
from opsbot.config.model import Config, FaqEntry
from opsbot.i18n import t
from opsbot.message import Reply

MATCH_THRESHOLD = 0.45
KEYWORD_BONUS = 0.35
_WORD = re.compile(r"[a-z0-9][a-z0-9._-]*|[\u4e00-\u9fff]+")
# Words that every English question shares ("how do I …"): counted, they make any two questions look alike.
STOP_WORDS = frozenset(
    "a an the i me my we our you your it is are am be can could do does did how what when where who why which "
    "to of in on at for with this that there get got should would will may".split()
)


def tokens(text: str) -> set[str]:
    found: set[str] = set()
    for part in _WORD.findall(text.lower()):
        if "\u4e00" <= part[0] <= "\u9fff":
            found.update(part[i : i + 2] for i in range(max(1, len(part) - 1)))  # Chinese has no spaces: use pairs
        elif part not in STOP_WORDS:
            found.add(part)
    return found


MAX_QUESTION_CHARS = 300  # a question is short; comparing a pasted essay character by character is not


def content(text: str) -> str:
    """The words that carry a question's meaning, lower-cased: its stop words left out."""
    return " ".join(part for part in _WORD.findall(text.lower()) if part not in STOP_WORDS)


def score(question: str, entry: FaqEntry) -> float:
    question = question[:MAX_QUESTION_CHARS]
    asked, lowered, meant = tokens(question), question.lower(), content(question)
    best = 0.0
    for candidate in (entry.question, *entry.examples):
        theirs = tokens(candidate)
        overlap = len(asked & theirs) / max(1, min(len(asked), len(theirs))) if asked and theirs else 0.0
        best = max(best, overlap * 0.8, SequenceMatcher(None, meant, content(candidate)).ratio())
    hits = sum(1 for k in entry.keywords if k.lower() in lowered)
    return best + KEYWORD_BONUS * hits


def best_answer(config: Config, question: str) -> FaqEntry | None:
    if not question.strip() or not config.faq:
        return None
    scored = max(((score(question, e), i, e) for i, e in enumerate(config.faq)), key=lambda s: (s[0], -s[1]))
    return scored[2] if scored[0] >= MATCH_THRESHOLD else None


def who_to_ask(request: ChatRequest) -> str:
    people = [request.config.person(c) for c in request.config.contacts]
    names = t(request.language, "、", ", ").join(p.name for p in people if p)
    return names or request.t("平台组同事", "the platform team")


def answer(request: ChatRequest, question: str) -> Reply | None:
    entry = best_answer(request.config, question)
    if entry is None:
        return None
    return Reply(title=entry.question, text=f"### {entry.question}\n\n{entry.answer}", detail=f"faq {entry.id}")


def not_found(request: ChatRequest) -> str:
    return request.t(
        f"这个问题我还答不上来，请问 {who_to_ask(request)}。",
        f"I don't know that one yet; please ask {who_to_ask(request)}.",
    )


@command(
    "faq",
    area="general",
    aliases=("常见问题", "问"),
    arguments=(Argument("question", required=False),),
    parse=lambda words: {"question": " ".join(words)} if words else {},
    zh="常见问题列表，或回答一个问题",
    en="The FAQ list, or the answer to a question",
    examples=("faq", "faq 怎么申请 VPN", "问 测试环境地址是什么"),
)
def faq(request: ChatRequest) -> Reply:
    question = str(request.arguments.get("question") or "")
    if question:
        return answer(request, question) or Reply(
            title=request.t("常见问题", "FAQ"), ok=False, text=not_found(request), detail="no match"
        )
    if not request.config.faq:
        return Reply(
            title=request.t("常见问题", "FAQ"),
            text=request.t("还没有配置常见问题。", "No FAQ is configured yet.") + " " + not_found(request),
        )
    lines = [request.t("### 常见问题", "### FAQ")] + [f"- {e.question}" for e in request.config.faq]
    lines.append(
        request.t("直接 @opsbot 提问即可，比如：", "Just @opsbot your question, for example: ")
        + f"`{request.config.faq[0].examples[0] if request.config.faq[0].examples else request.config.faq[0].question}`"
    )
    return Reply(title=request.t("常见问题", "FAQ"), text="\n".join(lines))
