"""Posting a message: back into the conversation it answers (while that is still open), otherwise to the project's
robots, or the ops robot when no project is involved; `post_once` for news that must be told once however often
its job runs. Every send runs inside a run-once effect (state.effects) and commits it just before the send: no
channel can be asked afterwards whether a message arrived, so a send cut off there is in doubt, never repeated.

Each robot is delivered on its own, in delivery/robot.py's one pass, and once per key: a project with a
DingTalk and a Feishu robot whose Feishu send fails hears the DingTalk message once, and the retry only sends to
Feishu. The effect key of a project's first robot is the key itself, as it was when a project had one robot; the
others' add `#<robot>`. When every robot that failed failed for good, the job is parked with their reasons (each
names its robot); when any can be retried, it is retried, and those that succeeded are not sent again.
"""

from __future__ import annotations

from collections.abc import Callable

from opsbot.channels import adapters
from opsbot.config.model import Config
from opsbot.delivery import robot as budgeted
from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.message import Conversation, Message, Reply
from opsbot.state import effects, keys


def _robot_effect(effect_key: str, robot: str, first: bool) -> str:
    return effect_key if first else f"{effect_key}#{robot}"


def to_robots(
    config: Config, build: Callable[[], Message], robots: tuple[str, ...], key: str, effect_key: str
) -> dict[str, str]:
    """Deliver the message `build` makes (once, and only if some robot still needs it) to each robot, exactly once
    per robot under `effect_key` (at least once without one); what happened at each robot ("sent", "folded").
    `key` folds it once into a robot's digest."""
    built: list[Message] = []

    def message() -> Message:
        if not built:
            built.append(build())
        return built[0]

    told: dict[str, str] = {}
    retry, refused, doubts = [], [], []
    for index, name in enumerate(robots):
        robot = config.robots.get(name)
        if robot is None:
            refused.append(f"robot {name} is not configured")
            continue

        once = _robot_effect(effect_key, name, index == 0) if effect_key else ""
        try:
            told[name] = budgeted.deliver_once(config, robot, message, key, once)
        except RetryLater as exc:
            retry.append(exc)
        except effects.EffectInDoubt as exc:
            doubts.append(exc)
            refused.append(exc.reason)
        except PermanentFailure as exc:
            refused.append(exc.reason)
    if retry:
        delays = [exc.delay for exc in retry if exc.delay is not None]
        raise RetryLater("; ".join([exc.reason for exc in retry] + refused), delay=max(delays) if delays else None)
    if doubts:  # parked so that a redrive retakes just those robots' effects
        raise effects.EffectInDoubt(doubts[0].key, "; ".join(refused), tuple(exc.key for exc in doubts[1:]))
    if refused:
        raise PermanentFailure("; ".join(refused))
    return told


def _robots_of(config: Config, reply: Reply) -> tuple[str, ...]:
    project = config.projects.get(reply.project)
    if project is not None:
        return project.robots
    if not config.ops_robot:
        raise PermanentFailure(f"no robot to post the result to (project {reply.project or '-'}, ops_robot unset)")
    return (config.ops_robot,)


def _language(config: Config, reply: Reply) -> str:
    project = config.projects.get(reply.project)
    return project.language if project else config.language


def _into_conversation(config: Config, message: Message, conversation: Conversation, url: str) -> dict:
    adapter = adapters.ADAPTERS[conversation.channel]
    body = adapter.render(message, config.person)
    # A channel whose answer replaces the message a button was pressed on (Slack's) tells a refusal or a failure
    # to the presser alone: the message keeps its buttons for someone who may press them.
    send = getattr(adapter, "send_failure_by_session", None) if message.severity == "failure" else None
    effects.commit()  # the conversation cannot be asked afterwards whether the reply arrived
    (send or adapter.send_by_session)(url, body)
    return {"where": "conversation"}


def post(config: Config, reply: Reply, conversation: Conversation | None, key: str) -> str:
    """Post `reply` (into `conversation` when it is still open, else to its robots), once per `key`: a job retried
    because posting failed posts it; the same news delivered again (new delivery ids, same key), or a job
    redelivered after it posted, does not. Returns where it went; a burst folds it into a digest under `key`."""
    message = reply.as_message(_language(config, reply))
    url = conversation.open_reply_url() if conversation is not None else ""
    if url:
        # The same effect key as the first robot's: a reply told in the conversation is not told to a robot again.
        return effects.once(keys.TOLD + key, lambda: _into_conversation(config, message, conversation, url))["where"]
    told = to_robots(config, lambda: message, _robots_of(config, reply), key, keys.TOLD + key)
    return "; ".join(f"robot {name}: {outcome}" for name, outcome in told.items())


def post_once(config: Config, reply: Reply, key: str, conversation: Conversation | None = None) -> str:
    """`post` under a key that names the news itself (a sync's commit, a merge request's reviewers), not a job."""
    return post(config, reply, conversation, key)
