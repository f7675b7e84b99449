"""Running one command, wherever it runs: what went wrong becomes a Reply the person can act on.

Reads run here from the DingTalk function; acts run here from the worker. Drone or GitLab being unavailable
is the failure that is not turned into a reply in the worker: it is raised, so the queue retries the job.
"""

from __future__ import annotations

from difflib import get_close_matches

from opsbot.authz.core import Denied
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Registry, UsageError
from opsbot.gitops.verbs import RollbackRefused
from opsbot.i18n import t
from opsbot.log import logger
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.ops.requests import OpsRefused
from opsbot.peers import PeerNotConfigured, PeerNotPinned, PeerRefused, PeerUnavailable
from opsbot.release.approvals import ApprovalRefused
from opsbot.release.deploy import ReleaseRefused


def failed(request: ChatRequest, text: str, detail: str = "") -> Reply:
    return Reply(
        title=f"{request.command.name} failed",
        text=text,
        ok=False,
        detail=detail or text[:200],
        project=str(request.arguments.get("project") or ""),
    )


def run(request: ChatRequest) -> Reply:
    command = request.command
    try:
        return command.run(request)
    except UsageError as exc:
        return failed(
            request,
            request.t(
                f"{exc}\n\n用法：`{command.usage()}`，发送 `help {command.name}` 查看例子。",
                f"{exc}\n\nUsage: `{command.usage()}`. Send `help {command.name}` for examples.",
            ),
            detail=f"usage: {exc}",
        )
    except (ReleaseRefused, ApprovalRefused, OpsRefused, RollbackRefused, Denied) as exc:
        return failed(request, f"⛔ {exc}")
    except PeerNotPinned as exc:  # the config names a host the stack does not list: nothing was sent there
        logger.error("a peer's host is not pinned", extra={"command": command.name, "reason": exc.reason})
        return failed(
            request,
            request.t(
                f"⛔ opsbot 不会把 {exc.peer} 的令牌发往配置里的地址：{md(exc.reason)}。请联系平台组。",
                f"⛔ opsbot will not send its {exc.peer} token where the config points: {md(exc.reason)}. "
                "Ask the platform team.",
            ),
            detail=f"{exc.peer} host not pinned",
        )
    except PeerNotConfigured as exc:
        return failed(
            request,
            request.t(
                f"这个 opsbot 还没有连接 {exc.peer}：请在 opsbot.yaml 中配置 `{exc.section}`。",
                f"This opsbot is not connected to {exc.peer}: set `{exc.section}` in opsbot.yaml.",
            ),
            detail=f"{exc.peer} is not configured",
        )
    except PeerRefused as exc:
        return failed(
            request,
            request.t(f"❌ {exc.peer} 拒绝了请求：{md(exc.message)}", f"❌ {exc.peer} refused: {md(exc.message)}"),
            detail=f"{exc.peer} {exc.status}: {exc.message}",
        )
    except PeerUnavailable as exc:
        if request.in_worker:
            raise
        logger.warning(
            "peer unavailable for a read", extra={"command": command.name, "peer": exc.peer, "reason": exc.reason}
        )
        return failed(
            request,
            request.t(
                f"{exc.peer} 暂时没有响应（{exc.reason}），请稍后再试。",
                f"{exc.peer} is not answering right now ({exc.reason}); try again shortly.",
            ),
        )


TYPO_CUTOFF = 0.75  # "deplyo" is 0.83 from "deploy"; "staging" (a question's first word) is 0.62 from "status"


def close_commands(registry: Registry, word: str, cutoff: float = TYPO_CUTOFF) -> list[str]:
    return get_close_matches(word.lower(), registry.names(), n=3, cutoff=cutoff) if word else []


def suggestion(registry: Registry, word: str, language: str, fallback: str) -> str:
    """ "Did you mean …" for a word that is no command, with the help hint; `fallback` (who to ask) when
    nothing comes close."""
    close = close_commands(registry, word, cutoff=0.5)
    word = md(word, 40)
    names = ", ".join(dict.fromkeys(f"`{registry.find(c).name}`" if c.isascii() else f"`{c}`" for c in close))
    head = t(language, f"没有 `{word}` 这个命令。", f"There is no command `{word}`.")
    if names:
        head += t(language, f"你是不是想用 {names}？", f" Did you mean {names}?")
    return (
        head
        + t(language, "\n\n发送 `help` 查看全部命令。", "\n\nSend `help` for the list of commands.")
        + ("" if names else f"\n\n{fallback}")
    )
