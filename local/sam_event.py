"""A sample event for `sam local invoke`, signed now, and the functions' environment pointing at the local stack.

    python -m local.sam_event events/drone/build_failure.json [--port 3000] [--sink-port 3001] [--moto-port 5005]

The samples under events/ were signed when `make events` wrote them, so Drone's Date and DingTalk's timestamp are
long stale and every signed route would answer 401. This writes a copy signed now (Drone: Date, Digest and
Signature; DingTalk: timestamp and sign; GitLab: the token) under .aws-sam/events/, exactly as `make send` would
send it; bad_* and stale_* samples and the release-link samples are copied as they are. It also writes
.aws-sam/env.json, each function's variables as the local stack sets them (its tables, queues and
/opsbot/local/... parameters on moto, AWS_ENDPOINT_URL), for `sam local invoke --env-vars`. With `make run` going
(it provides moto, the tables, the secrets and the config), invoke with the command it prints; that needs Docker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

from local import template as template_module  # noqa: E402
from local.signing import kept_as_stored, signed_afresh, signs  # noqa: E402
from local.stack import REGION, local_environment, local_peer_hosts  # noqa: E402

OUT = ROOT / ".aws-sam"


def env_vars(
    template,
    endpoint: str,
    host: str = "127.0.0.1",
    port: int = 3000,
    sink_port: int = 3001,
    peer_ports: tuple[int, int, int] = (3002, 3003, 3004),
) -> dict[str, dict[str, str]]:
    """`sam local invoke --env-vars`' file: for every function of the template, each variable it declares with the
    value the local stack gives it, its pinned peers (`peer_ports`: the fake Drone's, GitLab's and Kubernetes')
    included. Only those: SAM ignores a variable the template does not declare for the function (so under SAM,
    DingTalk's login and API URLs stay DingTalk's own)."""
    environments = {}
    for fid in template.functions:
        local = local_environment(template, endpoint, host, port, sink_port, function_id=fid)
        local.update(local_peer_hosts(host, sink_port, *peer_ports))
        environments[fid] = {name: local[name] for name in template.function_environment(fid)}
    return environments


def copy_for_invoke(sample: Path, now: float) -> tuple[dict, str]:
    """The sample as `sam local invoke` should get it at `now`, and how it was made."""
    event = json.loads(sample.read_text(encoding="utf-8"))
    if kept_as_stored(sample):
        return event, "as stored: its point is a failing check"
    if not signs(event["rawPath"]):
        return event, "as stored: a release link's sender does not sign"
    from opsbot.dingtalk.signature import MAX_SKEW_MS
    from opsbot.drone.signature import MAX_SKEW_SECONDS

    valid = {
        "/webhooks/drone": f"Drone's Date is accepted for {MAX_SKEW_SECONDS // 60} minutes",
        "/webhooks/dingtalk": f"DingTalk's timestamp is accepted for {MAX_SKEW_MS // 3_600_000} hour",
    }
    stamp = time.strftime("%H:%M:%S UTC", time.gmtime(now))
    return signed_afresh(event, now), f"signed at {stamp}; " + valid.get(event["rawPath"], "the token does not expire")


def written_path(sample: Path, out: Path) -> Path:
    """.aws-sam/events/<the sample's path under events/>."""
    try:
        relative = sample.resolve().relative_to(ROOT / "events")
    except ValueError:
        relative = Path(sample.name)
    return out / "events" / relative


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.sam_event", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("event", help="an API Gateway v2 event file under events/")
    parser.add_argument("--host", default="127.0.0.1", help="where the local stack listens, as the function sees it")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)))
    parser.add_argument("--sink-port", type=int, default=int(os.environ.get("SINK_PORT", 3001)))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 5005)))
    # the local stack's fake peers, which its functions may send tokens to (pinned peers: README, Security model)
    parser.add_argument("--drone-port", type=int, default=int(os.environ.get("DRONE_PORT", 3002)))
    parser.add_argument("--gitlab-port", type=int, default=int(os.environ.get("GITLAB_PORT", 3003)))
    parser.add_argument("--kube-port", type=int, default=int(os.environ.get("KUBE_PORT", 3004)))
    parser.add_argument("--out", default=str(OUT), help="where events/ and env.json go (default: .aws-sam)")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    args = parser.parse_args(argv)

    sample, out = Path(args.event), Path(args.out)
    if not sample.is_file():
        print(f"no such event file: {sample}", file=sys.stderr)
        return 2
    template = template_module.load(args.template)
    event, how = copy_for_invoke(sample, time.time())
    found = template.route_for(event["requestContext"]["http"]["method"], event["rawPath"])
    if found is None:
        print(f"{sample}: no route of the template takes {event['rawPath']}", file=sys.stderr)
        return 2
    path = written_path(sample, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    env_file = out / "env.json"
    endpoint = f"http://{args.host}:{args.moto_port}"
    env_file.write_text(
        json.dumps(
            env_vars(
                template,
                endpoint,
                args.host,
                args.port,
                args.sink_port,
                (args.drone_port, args.gitlab_port, args.kube_port),
            ),
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {shown(path)} ({how})")
    print(
        f"wrote {shown(env_file)} (every function's variables: moto at {endpoint}, the local stack's tables, "
        "queues and /opsbot/local/... parameters)"
    )
    print("with `make run` going in another terminal, Docker, and `make build` done once:")
    print(
        f"  {shown(ROOT / '.venv-tools' / 'bin' / 'sam')} local invoke {found[0].function} -e {shown(path)} "
        f"--env-vars {shown(env_file)} --region {REGION} --docker-network host"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
