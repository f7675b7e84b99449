"""Merge-request automation's rules, without GitLab: size thresholds, generated files, path globs, OWNERS
resolution and approver coverage, reviewer choice, Tide's rule, the command parser and the review: config."""

from __future__ import annotations

import pytest

from opsbot.authz import core as authz
from opsbot.authz.actors import gitlab_user
from opsbot.config.model import ConfigError, Document, validate
from opsbot.review import commands, labels, owners, reviewers, tide
from opsbot.review.globs import matches


@pytest.mark.parametrize(
    "lines, size",
    [
        (0, "XS"),
        (9, "XS"),
        (10, "S"),
        (29, "S"),
        (30, "M"),
        (99, "M"),
        (100, "L"),
        (120, "L"),
        (499, "L"),
        (500, "XL"),
        (999, "XL"),
        (1000, "XXL"),
        (25000, "XXL"),
    ],
)
def test_size_thresholds_are_prows(lines, size):
    assert labels.size_label(lines) == f"size/{size}"


def _diff(path: str, added: int, deleted: int = 0) -> dict:
    lines = [f"-old {i}\n" for i in range(deleted)] + [f"+new {i}\n" for i in range(added)]
    body = "@@ -1 +1 @@\n" + "".join(lines)
    return {"old_path": path, "new_path": path, "diff": body}


def test_changed_lines_count_added_and_deleted_and_skip_generated_files():
    diffs = [
        _diff("src/a.py", 20, 5),
        _diff("package-lock.json", 900),
        _diff("gen/api/x.go", 300),
        {"old_path": "b", "new_path": "b", "diff": "--- a/b\n+++ b/b\n context\n"},
    ]
    assert labels.changed_lines(diffs, ()) == 1225
    assert labels.changed_lines(diffs, ("package-lock.json", "gen/**")) == 25


@pytest.mark.parametrize(
    "path, glob, hit",
    [
        ("src/api/orders.py", "src/api/**", True),
        ("src/api/v1/orders.py", "src/api/**", True),
        ("src/apis/x.py", "src/api/**", False),
        ("README.md", "*.md", True),
        ("docs/a/b.md", "*.md", True),
        ("docs/a/b.md", "docs/*.md", False),
        ("docs/b.md", "docs/*.md", True),
        ("pom.xml", "pom.xml", True),
        ("sub/pom.xml", "/pom.xml", False),
        ("a/b/c.lock", "**/*.lock", True),
        ("c.lock", "**/*.lock", True),
    ],
)
def test_globs(path, glob, hit):
    assert matches(path, [glob]) is hit


def test_the_size_label_replaces_the_old_one_and_path_labels_are_added():
    rules = {"area/api": ("src/api/**",), "area/docs": ("**/*.md",), "area/build": ("Makefile",)}
    add, remove = labels.label_changes(
        ["size/XS", "area/api", "kind/bug"], ["src/api/a.py", "README.md"], "size/L", rules
    )
    assert add == ["area/docs", "size/L"] and remove == ["size/XS"]
    assert labels.label_changes(["size/L"], ["x"], "size/L", rules) == ([], [])


TREE = {
    "OWNERS": "approvers: [carol]\nreviewers: [bob, dave]\n",
    "docs/OWNERS": "approvers: [erin]\nreviewers: ['@Erin', frank]\n",
    "docs/api/OWNERS": "not: [a list]\n",
    "broken/OWNERS": "approvers: [unclosed\n",
}


def _tree(paths, files=TREE) -> owners.OwnersTree:
    reads = []
    tree = owners.OwnersTree(paths, lambda p: reads.append(p) or files.get(p))
    assert len(reads) == len(set(reads))  # each OWNERS file is read once
    return tree


def test_owners_are_resolved_nearest_first():
    tree = _tree(["docs/api/ref.md", "src/main.py"])
    assert [f.directory for f in tree.chain("docs/api/ref.md")] == ["docs/api", "docs", ""]
    assert tree.approvers_of("docs/api/ref.md") == {"erin", "carol"}
    assert tree.approvers_of("src/main.py") == {"carol"}
    # docs/api/OWNERS names no one, so docs/ is that file's nearest level
    assert tree.reviewer_levels() == [["erin", "frank", "bob", "dave", "carol"], ["bob", "dave", "carol"]]


def test_approval_covers_a_path_when_an_approver_above_it_approved():
    tree = _tree(["docs/guide.md", "src/main.py"])
    assert tree.uncovered({"erin"}) == ["src/main.py"]
    assert tree.uncovered({"erin", "carol"}) == [] and tree.uncovered({"carol"}) == []
    assert tree.may_approve("Erin") and tree.may_approve("carol") and not tree.may_approve("bob")


def test_paths_without_owners_fall_back_to_config_approvers_and_a_broken_file_owns_nothing():
    tree = _tree(["broken/x.py"], {"broken/OWNERS": "approvers: [unclosed\n"})
    assert tree.uncovered({"zoe"}) == ["broken/x.py"]
    assert tree.uncovered({"zoe"}, ("Zoe",)) == [] and tree.may_approve("zoe", ("zoe",))
    assert not tree.may_approve("zoe")


def test_reviewers_never_the_author_nor_already_there_and_the_least_loaded_first():
    load = {"bob": 3, "dave": 0, "carol": 1, "erin": 5}.get
    levels = [["bob", "dave", "carol"], ["erin"]]
    assert reviewers.choose(levels, (), "dave", set(), 2, load) == ["carol", "bob"]
    assert reviewers.choose(levels, (), "alice", set(), 2, load) == ["dave", "carol"]
    assert reviewers.choose(levels, (), "alice", {"carol"}, 2, load) == ["dave"]
    assert reviewers.choose(levels, (), "bob", {"carol"}, 3, load) == ["dave", "erin"]  # next level up
    assert reviewers.choose([], ("Bob", "alice"), "alice", set(), 2, lambda n: 0) == ["bob"]  # config fallback
    assert reviewers.choose(levels, (), "alice", {"bob", "dave"}, 2, load) == []


def _mr(**fields) -> dict:
    return {
        "state": "opened",
        "sha": "abc",
        "draft": False,
        "head_pipeline": {"status": "success", "sha": "abc"},
        **fields,
    }


def test_tides_rule():
    ready = ["lgtm", "approved", "size/S"]
    assert tide.blockers(_mr(), ready, "abc") == []
    assert tide.blockers(_mr(), ["lgtm"], "abc") == ["no `approved` label"]
    assert tide.blockers(_mr(), ready + ["do-not-merge/hold"], "abc") == ["`do-not-merge/hold` is set"]
    assert tide.blockers(_mr(draft=True), ready, "abc") == ["it is a draft"]
    assert tide.blockers(_mr(head_pipeline={"status": "failed", "sha": "abc"}), ready, "abc")
    assert tide.blockers(_mr(head_pipeline={"status": "success", "sha": "old"}), ready, "abc")  # an older commit's
    assert tide.blockers(_mr(head_pipeline=None), ready, "abc")
    assert tide.blockers(_mr(state="merged"), ready, "abc") == ["it is merged"]


def test_tide_wants_the_lgtm_and_the_approvals_of_the_head_commit_not_only_the_labels():
    ready = ["lgtm", "approved"]
    head, old = "1234567890abcdef", "fedcba0987654321"
    assert tide.blockers(_mr(sha=head, head_pipeline={"status": "success", "sha": head}), ready, old) == [
        "lgtm was given on fedcba09, the head is 12345678"
    ]
    assert tide.blockers(_mr(), ready, None) == ["no /lgtm is recorded"]  # a label set by hand is no lgtm
    assert "GitLab shows no head commit" in tide.blockers(_mr(sha="", head_pipeline=None), ready, "")
    assert tide.approval_blockers([], head, True) == []
    assert tide.approval_blockers(["a", "b", "c", "d"], head, True) == [
        "the approvals at 12345678 do not cover 4 changed file(s): a, b, c …"
    ]
    assert tide.approval_blockers([], head, False) == ["the merge request changes no files"]


def test_commands_stand_anywhere_one_per_line_and_unknown_ones_are_conversation():
    text = "Looks good to me.\n/lgtm\n  /hold cancel  \nsee /approve inline\n/frobnicate\n/label kind/bug\n"
    assert commands.parse(text) == [("lgtm", ""), ("hold", "cancel"), ("label", "kind/bug")]
    assert commands.parse("") == []


def test_every_command_declares_usage_help_and_who_may_use_it():
    assert set(commands.COMMANDS) == {
        "lgtm",
        "approve",
        "hold",
        "assign",
        "unassign",
        "cc",
        "label",
        "remove-label",
        "retest",
    }
    for command in commands.COMMANDS.values():
        assert command.usage.startswith(f"/{command.name}") and command.does and command.who
        # the core decides on it: open to people GitLab lets comment, and `review.roles.<name>` may restrict it
        verb = command.verb
        assert (verb.name, verb.open_to_strangers, verb.project_roles) == (f"/{command.name}", True, command.name)
        assert verb.kind == (authz.RERUN if command.name == "retest" else authz.ACT)


def test_the_core_restricts_slash_commands_by_review_roles_with_the_same_words():
    people = [
        {"id": "bob", "name": "Bob Li", "git": ["bob"], "roles": ["developer"]},
        {"id": "zoe", "name": "Zoe", "git": ["zoe"], "roles": ["ops"]},
        {"id": "root", "name": "Root", "git": ["root"], "roles": ["admin"]},
    ]
    documents = _project({"enabled": True, "roles": {"retest": ["developer"]}})
    documents[0].data["people"] = people
    config = validate(documents, allow_literal_secrets=True)
    retest, hold = commands.COMMANDS["retest"].verb, commands.COMMANDS["hold"].verb
    target = authz.Target("p", merge_request="g/p!1")

    def decide(username: str, verb) -> authz.Decision:
        return authz.decide(config, gitlab_user(config, username), verb, target)

    assert decide("bob", retest).allowed and decide("root", retest).allowed  # admin may use every command
    assert decide("zoe", retest).reason == "`/retest` needs the role developer; Zoe has ops"
    assert (
        decide("dave", retest).reason
        == "`/retest` needs the role developer, and `dave` is in no `people[].git` of the config"
    )
    assert decide("dave", hold).allowed  # not restricted: anyone GitLab lets comment
    build = authz.Build(number=125, event="promote", branch="feature/x", status="success")
    assert (
        authz.decide(config, gitlab_user(config, "bob"), retest, authz.Target("p", build=build)).rule == "deployment"
    )  # a deployment is never run again


def test_only_plain_usernames_are_mentioned_in_notes():
    assert commands.mention("bob.li_2-x") == "@bob.li_2-x"
    assert (
        commands.refusal_note("bob", "lgtm", "you cannot LGTM your own merge request")
        == "@bob `/lgtm` was not done: you cannot LGTM your own merge request."
    )
    odd = commands.refusal_note(
        "x](http://e.example) @all",
        "retest",
        "`/retest` needs the role developer, and `x](http://e.example) @all` is in no `people[].git` of the config",
    )
    assert "@all" not in odd and "](" not in odd and "://" not in odd and not odd.startswith("@")


def _project(review: dict) -> list[Document]:
    root = {
        "robots": {"r": {"webhook": "w", "secret": "s"}},
        "gitlab": {"url": "https://gitlab.example.com", "token": "t"},
    }
    return [Document("opsbot.yaml", root), Document("projects/p.yaml", {"repo": "g/p", "robot": "r", "review": review})]


def test_review_config_defaults_and_values():
    config = validate(
        _project({"enabled": True, "path_labels": {"area/api": "src/api/**"}, "fallback_reviewers": ["@bob"]}),
        allow_literal_secrets=True,
    )
    review = config.projects["p"].review
    assert review.enabled and review.reviewers == 2 and review.merge_method == "merge" and review.welcome
    assert review.path_labels == {"area/api": ("src/api/**",)} and review.fallback_reviewers == ("bob",)
    assert not validate(_project({}), allow_literal_secrets=True).projects["p"].review.enabled  # opt-in


def test_review_config_errors_name_the_key():
    with pytest.raises(ConfigError) as raised:
        validate(
            _project({"enabled": "yes", "reviewers": 50, "merge_method": "rebase", "labels": ["a,b"], "colour": 1}),
            allow_literal_secrets=True,
        )
    text = str(raised.value)
    for expected in (
        "review.enabled must be true or false",
        "review.reviewers must be a whole number",
        "review.merge_method must be one of merge, squash",
        "'a,b' is not a usable label",
        "unknown key 'colour'",
    ):
        assert expected in text
    documents = _project({"enabled": True})
    documents[0].data.pop("gitlab")
    with pytest.raises(ConfigError, match="review.enabled needs a gitlab: section"):
        validate(documents, allow_literal_secrets=True)
