"""drone init / drone sync: a project's .drone.yml from opsbot's templates, proposed as a merge request.

Both act (they write to GitLab), so they run in the worker and post the merge request's link to the group. They
need the role `deployer` by default: whoever may release a project may propose how it is built; the merge
request itself is reviewed and merged in GitLab as usual. `permissions:` in opsbot.yaml can change that.
"""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import REGISTRY, Argument, UsageError, command
from opsbot.config.model import PIPELINE_LANGUAGES
from opsbot.message import Reply


@command(
    "drone",
    area="config",
    aliases=("流水线",),
    arguments=(Argument("subcommand", required=False),),
    usage="drone init|sync <project>",
    zh="生成 .drone.yml：`drone init` 和 `drone sync`",
    en="Generate .drone.yml: `drone init` and `drone sync`",
    examples=("drone",),
)
def drone(request: ChatRequest) -> Reply:
    word = request.arguments.get("subcommand")
    lines = [
        f"- `{c.usage()}` — {c.summary[request.language]}"
        for name, c in REGISTRY.commands.items()
        if name.startswith("drone ")
    ]
    head = request.t(f"没有 `drone {word}`。" if word else "", f"There is no `drone {word}`. " if word else "")
    return Reply(
        title=request.t("流水线", "drone"),
        ok=not word,
        text=head + request.t("可用的：\n\n", "Use:\n\n") + "\n".join(lines),
    )


def _language(request: ChatRequest) -> str:
    language = str(request.arguments.get("language") or "").lower()
    if language and language not in PIPELINE_LANGUAGES:
        raise UsageError(
            request.t(
                f"没有 {language} 模板，可选：{', '.join(PIPELINE_LANGUAGES)}",
                f"there is no {language} template; choose {', '.join(PIPELINE_LANGUAGES)}",
            )
        )
    return language


def _reply(request: ChatRequest, project, proposal) -> Reply:
    link = f"[!{proposal.iid}]({proposal.url})"
    texts = {
        "opened": (
            f"### 🛠 已为 {project.name} 打开合并请求 {link}\n\n.drone.yml 来自 {proposal.language} 模板"
            f"（{proposal.reason}）。请评审后合并；合并前在 Drone 里为仓库添加 docker_username 和 docker_password。",
            f"### 🛠 Opened merge request {link} for {project.name}\n\n.drone.yml from the {proposal.language} "
            f"template ({proposal.reason}). Review and merge it; add the Drone secrets docker_username and "
            f"docker_password to the repo first.",
        ),
        "already open": (
            f"{project.name} 的合并请求已经打开：{link}，请评审合并。",
            f"The merge request for {project.name} is already open: {link}. Please review it.",
        ),
        "exists": (
            f"{project.name} 已经有 .drone.yml，opsbot 不会覆盖它。要按模板更新，用 `drone sync {project.name}`。",
            f"{project.name} already has a .drone.yml, which opsbot never overwrites. To bring it up to the "
            f"template, use `drone sync {project.name}`.",
        ),
        "missing": (
            f"{project.name} 还没有 .drone.yml：用 `drone init {project.name}`。",
            f"{project.name} has no .drone.yml yet: use `drone init {project.name}`.",
        ),
        "up to date": (
            f"✅ {project.name} 的 .drone.yml 与 {proposal.language} 模板的输出一致，不需要合并请求。",
            f"✅ {project.name}'s .drone.yml matches the {proposal.language} template's output; "
            "no merge request needed.",
        ),
    }
    ok = proposal.outcome in ("opened", "already open", "up to date")
    return Reply(
        title=f"drone {project.name}",
        text=request.t(*texts[proposal.outcome]),
        ok=ok,
        project=project.name,
        detail=f"{proposal.outcome} {link}" if proposal.url else proposal.outcome,
    )


def _merge_requests():
    from opsbot.gitops import merge_requests  # with _run: off the cold path

    return merge_requests


def _run(request: ChatRequest, deliver) -> Reply:
    # GitOps (and yaml, ~10 ms) loads when a drone command runs, not at the worker's or chat's cold start.
    from opsbot.gitops.pipelines import PipelineError

    project = request.project()
    try:
        return _reply(request, project, deliver(project))
    except PipelineError as exc:
        return Reply(
            title=f"drone {project.name}",
            ok=False,
            project=project.name,
            detail=str(exc)[:200],
            text=request.t(f"❌ 无法生成 .drone.yml：{exc}", f"❌ Cannot generate .drone.yml: {exc}"),
        )


@command(
    "drone init",
    area="config",
    aliases=("流水线 初始化",),
    acts=True,
    role="deployer",
    needs_gitlab=True,
    arguments=(Argument("project"), Argument("language", required=False)),
    usage=f"drone init <project> [{'|'.join(PIPELINE_LANGUAGES)}]",
    zh="为项目生成 .drone.yml（构建、测试、发布镜像、Trivy 扫描、按环境发布），以合并请求提交",
    en="Generate the project's .drone.yml (build, test, image publish, Trivy scan, promote per environment) "
    "as a merge request",
    examples=("drone init shop-api", "drone init shop-api java", "流水线 初始化 shop-web"),
)
def drone_init(request: ChatRequest) -> Reply:
    language = _language(request)
    return _run(
        request,
        lambda project: _merge_requests().init(request.config, project, language, f"{request.sender} (DingTalk)"),
    )


@command(
    "drone sync",
    area="config",
    aliases=("流水线 同步",),
    acts=True,
    role="deployer",
    needs_gitlab=True,
    arguments=(Argument("project"),),
    zh="模板或配置变了时，用合并请求更新项目的 .drone.yml",
    en="Propose the template's current output for the project's .drone.yml as a merge request, when it differs",
    examples=("drone sync shop-api", "流水线 同步 shop-api"),
)
def drone_sync(request: ChatRequest) -> Reply:
    return _run(
        request, lambda project: _merge_requests().sync(request.config, project, f"{request.sender} (DingTalk)")
    )
