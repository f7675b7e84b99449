"""The local commands a newcomer types (`make send`, `make chat`, …) against a stack on ports that are not the
defaults: each is given only the API's port and asks the stack for the rest (GET /_local/stack), and `make chat`
returns once the answer, or an act's result, is there. The fakes' web links open pages, not 401 JSON."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

from conftest import ROOT


def run(*args: str, stack) -> subprocess.CompletedProcess:
    port = str(urlsplit(stack.api).port)
    return subprocess.run(
        [sys.executable, "-m", *args, "--port", port], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_stack_says_where_everything_is(stack):
    about = stack.http.get(stack.api + "/_local/stack", timeout=5).json()
    assert about["urls"]["sink"] == stack.sink and about["urls"]["drone"] == stack.drone
    assert about["urls"]["gitlab"] == stack.gitlab and about["urls"]["moto"] == stack.moto
    assert about["config"] == str(stack.config_dir.resolve()) and about["ports"]["api"] == urlsplit(stack.api).port
    assert about["ports"]["api"] != 3000  # these tests never use the default ports


def test_chat_answers_a_read_and_returns(stack):
    done = run("local.chat", "status shop-api", "--as", "alice", stack=stack)
    assert done.returncode == 0, done.stderr
    assert "### shop-api: latest builds" in done.stdout and f"]({stack.drone}/shop/shop-api/" in done.stdout


def test_chat_waits_for_an_acts_result_and_returns_with_it(stack):
    done = run("local.chat", "部署 shop-api 128 到 staging", "--as", "alice", "--wait", "60", stack=stack)
    assert done.returncode == 0, done.stderr
    assert "收到 `deploy`" in done.stdout  # the acknowledgement, then the result it waited for
    assert "### 🚀 已开始发布 shop-api #128 → staging" in done.stdout and "no result within" not in done.stdout


def test_chat_as_someone_unknown_tells_them_their_own_id(stack):
    done = run("local.chat", "部署 shop-api 128 到 staging", "--as", "stranger", stack=stack)
    assert done.returncode == 0, done.stderr
    assert "你的钉钉 ID 是" in done.stdout and "请联系管理员把它加入 people" in done.stdout


def test_send_signs_a_sample_for_the_stack_it_finds(stack):
    done = run("local.send", "events/drone/bad_signature.json", stack=stack)  # as stored: a 401, whatever ran before
    assert done.returncode == 0, done.stderr
    assert "-> 401" in done.stdout and '"error"' in done.stdout


def test_the_fakes_web_links_open_pages(stack):
    build = stack.http.get(f"{stack.drone}/shop/shop-api/128", timeout=5)
    assert build.status_code == 200 and build.headers["Content-Type"].startswith("text/html")
    assert "shop/shop-api #128" in build.text and "feat(order): add refund endpoint" in build.text
    sha = "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"  # #128's commit, which the fake GitLab shows from Drone's build
    commit = stack.http.get(f"{stack.gitlab}/shop/shop-api/-/commit/{sha}", timeout=5)
    assert commit.status_code == 200 and "feat(order): add refund endpoint" in commit.text
    project = stack.http.get(f"{stack.gitlab}/shop/shop-api", timeout=5)
    assert project.status_code == 200 and "pom.xml" in project.text
    unknown = stack.http.get(f"{stack.gitlab}/shop/shop-api/-/commit/{'0' * 40}", timeout=5)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("text/html")
    assert stack.http.get(f"{stack.drone}/api/repos/shop/shop-api/builds", timeout=5).status_code == 401  # API as is
