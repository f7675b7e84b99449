"""The authorization core's decision table (authz.core.decide), the one sender resolver, and the audit record a
decision leaves. Everything here is pure except the last tests, which write the audit log to moto."""

from __future__ import annotations

from dataclasses import replace

import pytest
from unit_support import EXAMPLE_CONFIG

from opsbot.authz import core as authz
from opsbot.authz.actors import DINGTALK, GITLAB, Actor, dingtalk_sender, dingtalk_user, gitlab_user
from opsbot.config.model import Permission, Person, validate
from opsbot.config.yaml_source import read_directory
from opsbot.release.deploy import DEPLOY, RESTART, ROLLBACK

EXAMPLE = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)


def actor(person_id: str | None) -> Actor:
    person = EXAMPLE.person(person_id) if person_id else None
    return Actor(DINGTALK, person.dingtalk_user_id if person else "someone", person.name if person else "?", person)


ALICE, BOB, CAROL, XIAOMING, STRANGER = (actor(p) for p in ("alice", "bob", "carol", "xiaoming", None))


def build(number=128, event="push", branch="main", status="success") -> authz.Build:
    return authz.Build(number=number, event=event, branch=branch, status=status, commit="c" * 40)


def target(env="staging", **kwargs) -> authz.Target:
    return authz.Target("shop-api", env, build(**kwargs))


# --- deploy and rollback: the environment's rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    "who, verb, tgt, outcome, rule",
    [
        (ALICE, DEPLOY, target(), authz.ALLOW, ""),
        (ALICE, ROLLBACK, target(), authz.ALLOW, ""),
        (BOB, DEPLOY, target(), authz.DENY, "role"),  # a developer, not a deployer
        (STRANGER, DEPLOY, target(), authz.DENY, "stranger"),
        (ALICE, DEPLOY, target("production"), authz.NEEDS_APPROVAL, "approvals"),
        (XIAOMING, DEPLOY, target("production"), authz.NEEDS_APPROVAL, "approvals"),  # admin still needs a 2nd person
        (ALICE, DEPLOY, target(event="pull_request"), authz.DENY, "event"),
        (ALICE, DEPLOY, target(event="custom"), authz.DENY, "event"),
        (ALICE, DEPLOY, target(event="tag"), authz.DENY, "event"),
        (ALICE, DEPLOY, target(event="promote"), authz.DENY, "deployment"),
        (ALICE, ROLLBACK, target(event="rollback"), authz.DENY, "deployment"),
        (ALICE, ROLLBACK, target(branch="feature/refund"), authz.DENY, "branch"),  # attack 2
        (ALICE, DEPLOY, target(status="failure"), authz.DENY, "status"),
        (ALICE, DEPLOY, target("qa"), authz.DENY, "environment"),
        (XIAOMING, DEPLOY, target(event="pull_request"), authz.DENY, "event"),  # admin bypasses roles, not rules
    ],
)
def test_the_deploy_decision_table(who, verb, tgt, outcome, rule):
    decision = authz.decide(EXAMPLE, who, verb, tgt)
    assert (decision.outcome, decision.rule) == (outcome, rule), decision.reason


def test_an_environment_may_allow_more_build_events():
    env = EXAMPLE.projects["shop-api"].environments["staging"]
    projects = {
        **EXAMPLE.projects,
        "shop-api": replace(
            EXAMPLE.projects["shop-api"],
            environments={**EXAMPLE.projects["shop-api"].environments, "staging": replace(env, events=("push", "tag"))},
        ),
    }
    config = replace(EXAMPLE, projects=projects)
    assert authz.decide(config, ALICE, DEPLOY, target(event="tag")).allowed
    assert authz.decide(config, ALICE, DEPLOY, target(event="pull_request")).denied


def test_refusals_say_why_in_the_persons_language():
    assert authz.decide(EXAMPLE, ALICE, DEPLOY, target(event="pull_request")).reason == (
        "staging takes push builds; #128 is a pull_request build."
    )
    assert authz.decide(EXAMPLE, ALICE, DEPLOY, target(event="pull_request"), language="zh").reason == (
        "staging 只接受 push 构建，#128 是 pull_request 构建。"
    )
    assert authz.decide(EXAMPLE, BOB, DEPLOY, target()).reason == (
        "`deploy` in staging needs the role deployer; your roles: developer."
    )


def test_a_refusal_names_drones_facts_as_plain_text():
    """Attack: a branch (anyone may name one) made of markup. The reason is shown in chat and, as HTML, on the
    release page: it must carry no link, no code span and no mention."""
    from local.stack import SAMPLE_RELEASE_GRANT
    from opsbot.actions import pages
    from opsbot.release.links import ReleaseGrant

    hostile = "[release here](https://evil.example) `x` **y** @all"
    reason = authz.decide(EXAMPLE, ALICE, DEPLOY, target(branch=hostile)).reason
    assert reason == (
        "staging takes builds of main; #128 is from ［release here］(https：//evil.example) ˋxˋ ＊＊y＊＊ ＠all."
    )
    asked = authz.decide(EXAMPLE, ALICE, DEPLOY, target("`qa` [x](https://e.example)")).reason
    assert "ˋqaˋ ［x］(https：//e.example)" in asked
    page = pages.not_allowed(ReleaseGrant(**SAMPLE_RELEASE_GRANT), "Alice Wang", reason)
    shown = page.split("</dl>", 1)[1]
    assert "<a " not in shown and "<code>" not in shown and "<strong>" not in shown and "https://" not in shown


# --- restart and /retest: never a deployment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, outcome",
    [("push", authz.ALLOW), ("pull_request", authz.ALLOW), ("promote", authz.DENY), ("rollback", authz.DENY)],
)
def test_a_deployment_is_never_run_again(event, outcome):
    tgt = authz.Target("shop-api", build=build(126, event=event))
    assert authz.decide(EXAMPLE, BOB, RESTART, tgt).outcome == outcome  # bob: developer, restart's role


def test_permissions_may_narrow_what_restart_touches():
    config = replace(
        EXAMPLE, permissions={**EXAMPLE.permissions, "restart": Permission(roles=("developer",), events=("push",))}
    )
    assert authz.decide(config, BOB, RESTART, authz.Target("shop-api", build=build(event="push"))).allowed
    denied = authz.decide(config, BOB, RESTART, authz.Target("shop-api", build=build(event="pull_request")))
    assert denied.rule == "event" and "re-runs only push builds" in denied.reason


# --- approvals -----------------------------------------------------------------------------------------------------

APPROVE = authz.Verb("approve", ("deployer",), authz.APPROVE)


def test_the_requester_never_approves_their_own_request():
    request = authz.Target("shop-api", "production", requester=ALICE.id, request_verb=DEPLOY)
    assert authz.decide(EXAMPLE, ALICE, APPROVE, request).rule == "self"
    assert authz.decide(EXAMPLE, CAROL, APPROVE, request).allowed
    assert authz.decide(EXAMPLE, BOB, APPROVE, request).rule == "role"


def test_an_approver_must_be_allowed_the_act_in_that_environment():
    # the example lets deployer or ops deploy to production; with only ops, carol (deployer) may not approve
    config = replace(
        EXAMPLE, permissions={"deploy": Permission(roles=("deployer",), environments={"production": ("ops",)})}
    )
    request = authz.Target("shop-api", "production", requester=ALICE.id, request_verb=DEPLOY)
    assert authz.decide(config, CAROL, APPROVE, request).reason == (
        "`deploy` in production needs the role ops; your roles: developer, deployer."
    )
    assert authz.decide(config, XIAOMING, APPROVE, request).allowed


# --- merge-request commands -----------------------------------------------------------------------------------------


def test_merge_request_commands_are_open_to_commenters_unless_a_project_restricts_them():
    retest = authz.Verb("/retest", (), authz.RERUN, open_to_strangers=True, project_roles="retest")
    dave = gitlab_user(EXAMPLE, "dave")
    assert dave.person is None and dave.id == "gitlab:dave"
    assert authz.decide(EXAMPLE, dave, retest, authz.Target("shop-api")).allowed
    review = replace(EXAMPLE.projects["shop-api"].review, roles={"retest": ("developer",)})
    config = replace(
        EXAMPLE, projects={**EXAMPLE.projects, "shop-api": replace(EXAMPLE.projects["shop-api"], review=review)}
    )
    assert authz.decide(config, dave, retest, authz.Target("shop-api")).reason == (
        "`/retest` needs the role developer, and `dave` is in no `people[].git` of the config"
    )
    assert authz.decide(config, gitlab_user(config, "bob"), retest, authz.Target("shop-api")).allowed


# --- actors ----------------------------------------------------------------------------------------------------------


def test_one_resolver_reads_a_dingtalk_sender_the_same_everywhere():
    config = replace(
        EXAMPLE,
        people=EXAMPLE.people + (Person(id="numeric", name="Numeric", dingtalk_user_id="12345", roles=("deployer",)),),
    )
    # a numeric staff id may come as a JSON number; it is the same person either way
    assert dingtalk_sender(config, {"senderStaffId": 12345}).person.id == "numeric"
    assert dingtalk_sender(config, {"senderStaffId": "12345"}).person.id == "numeric"
    assert dingtalk_sender(config, {"senderStaffId": True, "senderNick": "x"}).person is None
    found = dingtalk_sender(config, {"senderStaffId": "", "senderId": "nobody", "senderNick": "路人甲"})
    assert (found.person, found.id, found.name) == (None, "dingtalk:nobody", "路人甲")


def test_actors_say_how_they_were_identified():
    assert dingtalk_user(EXAMPLE, "alice.wang").via == "dingtalk-login"
    assert dingtalk_user(EXAMPLE, "alice.wang").person.id == "alice"
    assert gitlab_user(EXAMPLE, "carol").via == GITLAB and gitlab_user(EXAMPLE, "carol").person.id == "carol"


# --- the audit record -------------------------------------------------------------------------------------------------


def test_authorize_writes_the_decision_into_the_audit_record(aws):
    from opsbot import audit

    record = audit.AuditRecord(
        id="r1",
        at_ms=1_800_000_000_000,
        who=ALICE.id,
        who_name=ALICE.name,
        where="cid",
        where_title="group",
        command="deploy",
        project="shop-api",
    )
    denied = authz.authorize(EXAMPLE, ALICE, DEPLOY, target(event="pull_request"), record, {"build": 128})
    assert denied.denied
    [stored] = audit.recent("shop-api")
    assert (stored.who, stored.via, stored.decision, stored.result) == ("alice", "dingtalk", "deny", "denied")
    assert stored.target == "shop-api #128 (pull_request · main) → staging"
    assert stored.reason == "staging takes push builds; #128 is a pull_request build."


def test_decide_alone_writes_nothing(aws):
    from opsbot import audit

    assert authz.decide(EXAMPLE, BOB, DEPLOY, target()).denied
    assert audit.recent() == []
