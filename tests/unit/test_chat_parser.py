"""From what a person types to a command and its arguments: the parser's tolerance for DingTalk's text and for
how people type, the registry's argument binding, and the registry as the one list that help is built from."""

from __future__ import annotations

import pytest
from unit_support import EXAMPLE_CONFIG

from opsbot.chat.commands import all_commands, command_names
from opsbot.chat.context import ChatRequest
from opsbot.chat.parser import Invocation, clean, has_chinese, parse
from opsbot.chat.registry import Argument, Command, Registry, UsageError
from opsbot.config.model import validate
from opsbot.config.yaml_source import read_directory

REGISTRY = all_commands()
KNOWN = REGISTRY.names()
EXPECTED_COMMANDS = {
    "help",
    "whoami",
    "status",
    "builds",
    "deploy",
    "rollback",
    "releases",
    "lock",
    "unlock",
    "freeze",
    "override",
    "report",
    "restart",
    "approve",
    "reject",
    "config",
    "history",
    "faq",
    "config history",
    "config rollback",
    "drone",
    "drone init",
    "drone sync",
    "restart service",
    "k8s",
    "k8s pods",
    "k8s logs",
    "k8s restart",
    "k8s scale",
    "vm",
    "vm run",
    "dns",
    "dns show",
    "dns set",
    "dns undo",
    "confirm",
}


def words(text: str) -> tuple[str, list[str]]:
    invocation = parse(text, KNOWN)
    return invocation.word, invocation.arguments


def bind(text: str) -> tuple[str, dict]:
    """The command a text resolves to and its bound arguments, as chat.ingress does it."""
    invocation = parse(text, KNOWN)
    found, words = REGISTRY.resolve(invocation.word, invocation.arguments)
    assert found is not None, text
    return found.name, found.bind(words)


@pytest.fixture
def aws(_moto):
    """Nothing here reaches AWS: no fresh moto stack per test (moto stays patched in, so a stray call cannot leave
    the machine)."""
    yield None


# --- the parser ------------------------------------------------------------------------------------------------


def test_dingtalks_leading_space_is_dropped():
    assert parse(" status shop-api", KNOWN) == Invocation("status", ["shop-api"], "status shop-api")


@pytest.mark.parametrize(
    "text",
    [
        "@opsbot status shop-api",
        "@opsbot  @alice status shop-api",
        "status @opsbot shop-api",
        " @opsbot\tstatus shop-api @opsbot",
    ],
)
def test_mentions_are_dropped_wherever_they_are(text):
    assert words(text) == ("status", ["shop-api"])


def test_full_width_space_and_punctuation_separate_words():
    assert words("\u3000部署\u3000shop-api，128\u3000到\u3000staging") == ("部署", ["shop-api", "128", "到", "staging"])
    assert words("状态：shop-api") == ("状态", ["shop-api"])
    assert words("deploy shop-api,128;staging") == ("deploy", ["shop-api", "128", "staging"])
    assert words("历史；shop-api。") == ("历史", ["shop-api"])


def test_an_ascii_colon_separates_after_a_word_or_chinese_but_not_inside_a_word():
    assert words("deploy: shop-api 128") == ("deploy", ["shop-api", "128"])
    assert words("部署:shop-api 128") == ("部署", ["shop-api", "128"])
    assert words("faq https://vpn.example.com:443/x") == ("faq", ["https://vpn.example.com:443/x"])


def test_quotes_keep_words_together_and_chinese_quotes_count_as_quotes():
    assert words('faq "how do I get vpn" now') == ("faq", ["how do I get vpn", "now"])
    assert words("faq “怎么 申请 vpn”") == ("faq", ["怎么 申请 vpn"])
    assert words("faq ‘staging url’") == ("faq", ["staging url"])


def test_an_unbalanced_quote_does_not_break_parsing():
    assert words('faq "how do I get vpn') == ("faq", ["how", "do", "I", "get", "vpn"])
    assert words("faq it's down") == ("faq", ["it", "s", "down"])


def test_a_chinese_command_glued_to_its_argument_is_pulled_apart():
    assert words("部署shop-api 128 到 staging") == ("部署", ["shop-api", "128", "到", "staging"])
    assert words("构建列表shop-api") == ("构建列表", ["shop-api"])  # the longest known command wins over 构建
    assert words("状态shop-api main") == ("状态", ["shop-api", "main"])
    assert words("帮助部署") == ("帮助", ["部署"])


def test_a_chinese_question_is_not_taken_for_a_glued_command():
    # No known command starts it: the first word stays whole, for the FAQ to look at.
    assert words("测试环境地址是什么") == ("测试环境地址是什么", [])
    assert words("vpn怎么连") == ("vpn怎么连", [])  # only a Chinese command word is pulled off


@pytest.mark.parametrize("text", ["", "   ", "\u3000", "@opsbot", "，。"])
def test_nothing_to_parse_is_an_empty_invocation(text):
    assert parse(text, KNOWN).word == "" and parse(text, KNOWN).arguments == []


def test_none_is_tolerated():
    assert parse(None, KNOWN) == Invocation("", [], "")  # type: ignore[arg-type]


def test_a_pasted_log_is_cut_to_twenty_words():
    invocation = parse("faq " + " ".join(f"w{i}" for i in range(100)), KNOWN)
    assert invocation.word == "faq" and len(invocation.arguments) == 19


def test_the_cleaned_text_is_kept_for_free_questions():
    assert parse(" @opsbot  怎么申请　VPN？", KNOWN).text == "怎么申请 VPN"
    assert clean("a\u3000\u3000b，c") == "a b c"


def test_has_chinese():
    assert has_chinese("部署 shop-api") and not has_chinese("deploy shop-api 128")


def test_command_words_are_found_whatever_their_case():
    assert REGISTRY.find("STATUS").name == "status" and REGISTRY.find("Deploy").name == "deploy"
    assert bind("Status shop-api") == ("status", {"project": "shop-api"})


# --- binding arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "deploy shop-api 128 to staging",
        "deploy shop-api 128 staging",
        "部署 shop-api 128 到 staging",
        "部署shop-api 128 到 staging",
        "发布 shop-api 128 至 staging",
        "deploy shop-api 128 TO staging",
        "@opsbot 部署：shop-api，128，到，staging",
    ],
)
def test_deploy_reads_the_same_with_or_without_fillers(text):
    assert bind(text) == ("deploy", {"project": "shop-api", "build|branch": "128", "env": "staging"})


def test_deploy_takes_a_branch_instead_of_a_build():
    assert bind("deploy shop-api main into production") == (
        "deploy",
        {"project": "shop-api", "build|branch": "main", "env": "production"},
    )


def test_numbers_are_bound_as_numbers_with_or_without_hash():
    assert bind("restart shop-api 127") == ("restart", {"project": "shop-api", "build": 127})
    assert bind("重试 shop-api #127") == ("restart", {"project": "shop-api", "build": 127})
    assert bind("回滚 shop-api production 120") == (
        "rollback",
        {"project": "shop-api", "env": "production", "build|release": "120"},  # a build, or a GitOps release id
    )


@pytest.mark.parametrize("argument", ["12x", "-3", "1.5", "#", "1234567890"])
def test_a_number_argument_that_is_no_number_is_a_usage_error(argument):
    with pytest.raises(UsageError, match="<build> must be a number"):
        bind(f"restart shop-api {argument}")


def test_optional_arguments_may_be_left_out():
    assert bind("rollback shop-api staging") == ("rollback", {"project": "shop-api", "env": "staging"})
    assert bind("status shop-api") == ("status", {"project": "shop-api"})
    assert bind("help") == ("help", {})


def test_missing_arguments_are_named():
    with pytest.raises(UsageError, match=r"missing <build\|branch>, <env>"):
        bind("deploy shop-api")
    with pytest.raises(UsageError, match="missing <project>"):
        bind("status")
    with pytest.raises(UsageError, match="missing <project>"):
        bind("builds")


def test_too_many_arguments_are_named():
    with pytest.raises(UsageError, match="too many arguments: extra words"):
        bind("whoami extra words")
    with pytest.raises(UsageError, match="too many arguments: now"):
        bind("deploy shop-api 128 to staging now")
    with pytest.raises(UsageError, match="too many arguments"):
        bind("builds shop-api main 5 more")


def test_builds_and_history_tell_a_count_from_a_name():
    assert bind("builds shop-api 5") == ("builds", {"project": "shop-api", "n": 5})
    assert bind("builds shop-api main 5") == ("builds", {"project": "shop-api", "branch": "main", "n": 5})
    assert bind("构建 shop-api 5 main") == ("builds", {"project": "shop-api", "n": 5, "branch": "main"})
    assert bind("history 20") == ("history", {"n": 20})
    assert bind("history shop-api 20") == ("history", {"project": "shop-api", "n": 20})
    with pytest.raises(UsageError, match="unexpected 'web'"):
        bind("history shop-api web")


def test_faq_takes_the_whole_question():
    assert bind("faq 怎么 申请 VPN") == ("faq", {"question": "怎么 申请 VPN"})
    assert bind("问 测试环境地址是什么") == ("faq", {"question": "测试环境地址是什么"})
    assert bind("faq") == ("faq", {})


def test_bind_on_a_command_of_its_own():
    cmd = Command(
        name="t",
        aliases=(),
        arguments=(Argument("a"), Argument("n", required=False, number=True)),
        summary={"zh": "测", "en": "t"},
        examples=("t x",),
        run=lambda request: None,
        fillers=("to",),
    )
    assert cmd.bind(["x", "to", "7"]) == {"a": "x", "n": 7}
    assert cmd.usage() == "t <a> [n]"
    with pytest.raises(UsageError):
        cmd.bind([])


# --- the registry ----------------------------------------------------------------------------------------------


def test_every_command_is_registered_once():
    assert command_names() == EXPECTED_COMMANDS
    assert list(REGISTRY.commands) == list(dict.fromkeys(REGISTRY.commands))
    # every name and alias leads to exactly one command, and each command owns its own names
    for alias, cmd in REGISTRY.by_alias.items():
        assert alias == alias.lower()
        assert alias in [n.lower() for n in (cmd.name, *cmd.aliases)]
    top = [cmd for cmd in REGISTRY.commands.values() if " " not in cmd.name]
    names = [n.lower() for cmd in top for n in (cmd.name, *cmd.aliases)]
    assert len(names) == len(set(names)) == len(REGISTRY.by_alias)
    # a subcommand ("config rollback") is reached through its parent's word and its own, by name and by alias
    for sub in (cmd for cmd in REGISTRY.commands.values() if " " in cmd.name):
        for phrase in (sub.name, *sub.aliases):
            first, word = phrase.split()
            assert REGISTRY.resolve(first, [word, "x"]) == (sub, ["x"])
    assert all_commands() is REGISTRY and len(all_commands().commands) == len(EXPECTED_COMMANDS)


def test_a_name_taken_twice_is_refused():
    registry = Registry()
    first = Command(
        name="x",
        aliases=("叉",),
        arguments=(),
        summary={"zh": "叉", "en": "x"},
        examples=("x",),
        run=lambda request: None,
    )
    registry.add(first)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(
            Command(
                name="y",
                aliases=("X",),
                arguments=(),
                summary={"zh": "歪", "en": "y"},
                examples=("y",),
                run=lambda request: None,
            )
        )


@pytest.mark.parametrize("name", sorted(EXPECTED_COMMANDS))
def test_every_command_has_help_in_both_languages_and_working_examples(name):
    cmd = REGISTRY.commands[name]
    assert has_chinese(cmd.summary["zh"]), cmd.summary
    assert cmd.summary["en"].strip() and not has_chinese(cmd.summary["en"]), cmd.summary
    assert len(cmd.examples) >= 1
    assert any(has_chinese(n) for n in cmd.aliases), "a Chinese name to type"
    for example in cmd.examples:  # every example runs as the command it documents
        assert bind(example)[0] == name, example


def test_acting_commands_need_a_role_and_say_where_the_environment_is():
    for cmd in REGISTRY.commands.values():
        if cmd.acts:
            assert cmd.role, cmd.name
        if cmd.environment_argument:
            assert cmd.environment_argument in {a.name for a in cmd.arguments}, cmd.name
    assert {c.name for c in REGISTRY.commands.values() if c.acts} == {
        "deploy",
        "rollback",
        "restart",
        "approve",
        "reject",
        "releases",  # reads the deploy repo, whose token only the worker has
        "lock",
        "unlock",
        "override",  # release governance: a lock held, released; a freeze override asked for
        "report",  # reads the releases table, which only the worker may
        "config rollback",
        "drone init",
        "drone sync",
        # ops: changes, and reads that run in the worker (the Kubernetes client stays off the DingTalk function)
        "restart service",
        "k8s pods",
        "k8s logs",
        "k8s restart",
        "k8s scale",
        "vm run",
        "dns show",
        "dns set",
        "dns undo",
        "confirm",
    }


EXAMPLE = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)


def help_reply(arguments: dict, language: str):
    return REGISTRY.commands["help"].run(ChatRequest(EXAMPLE, {}, None, REGISTRY.commands["help"], arguments, language))


def _lines_of(text: str, cmd, language: str) -> list[str]:
    from opsbot.chat.commands.help import names

    return [row for row in text.splitlines() if row.startswith(f"- {names(cmd, language)} — ")]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_help_lists_every_command_once_in_one_language_grouped_by_area(language):
    from opsbot.chat.registry import AREAS

    text = help_reply({}, language).text
    other = "en" if language == "zh" else "zh"
    for cmd in REGISTRY.commands.values():
        [line] = _lines_of(text, cmd, language)
        assert cmd.summary[language] in line and cmd.summary[other] not in line
        assert (f"`{cmd.called('zh')}`" in line) == (language == "zh" or cmd.called("zh") == cmd.name)
    headings = [h[0 if language == "zh" else 1] for h in AREAS.values()]
    found = [row.strip("*") for row in text.splitlines() if row.startswith("**")]
    assert found == headings  # every area, in order: 常用 / 发布 / 评审 / 运维 / 配置
    by_area = REGISTRY.by_area()
    assert [c.name for c in by_area["release"]] == [
        *("status", "builds", "deploy", "rollback", "restart", "releases"),
        *("lock", "unlock", "freeze", "override", "report"),
    ]
    assert {c.name for c in by_area["review"]} == {"approve", "reject"}
    assert "restart service" in {c.name for c in by_area["ops"]} and "drone init" in {c.name for c in by_area["config"]}


def test_chinese_help_has_no_english_summary_and_english_help_no_chinese():
    from opsbot.chat.parser import has_chinese

    english = help_reply({}, "en").text
    assert not has_chinese(english)
    chinese = help_reply({}, "zh").text
    assert "List every command" not in chinese and "帮助 <命令>" in chinese


@pytest.mark.parametrize("asked", ["deploy", "部署", "发布", "DEPLOY"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_help_for_one_command_shows_usage_role_and_examples_in_one_language(asked, language):
    reply = help_reply({"command": asked}, language)
    assert reply.title == ("帮助：部署" if language == "zh" else "help: deploy")
    assert "`deploy <project> <build|branch> [to] <env>`" in reply.text
    assert "deployer" in reply.text
    deploy = REGISTRY.commands["deploy"]
    assert (
        deploy.summary[language] in reply.text and deploy.summary["en" if language == "zh" else "zh"] not in reply.text
    )
    shown = [e for e in deploy.examples if f"`@opsbot {e}`" in reply.text]
    assert shown and all(("部署" in e) == (language == "zh") for e in shown)  # the examples in its language


def test_help_for_an_unknown_command_is_a_usage_error():
    with pytest.raises(UsageError, match="没有命令 `nope`"):
        help_reply({"command": "nope"}, "zh")
