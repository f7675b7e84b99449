"""opsbot's benchmark: two ratios against floors measured in the same run, on the same machine.

(a) Cold start. Each sample is a fresh interpreter (sys.executable) that times, with time.perf_counter(), either
    the floor, `import boto3; boto3.client("dynamodb")`, or the import of one function's app.py (its module-level
    init included), with the layer and the function directory on sys.path and the environment Lambda would give
    it. Samples run in pairs (floor, function), the functions round-robin, so drift hits both sides alike.
    Target: median(function) / median(floor) <= 1.2 for every function.

(b) Ingress latency. The local stack runs in a subprocess (--no-worker --quiet, free ports). Signed Drone
    finished-build deliveries, each with a new build number (so each is deduped and enqueued), go to
    POST /webhooks/drone over one keep-alive session; interleaved with them, the floor does the same unavoidable
    backend work directly with boto3 against the same moto server: one conditional DynamoDB put_item and one
    SQS send_message. Target: p50(ingress) / p50(floor) <= 2.

    .venv/bin/python -m bench.run [--pairs 15] [--requests 300] [--warmup 20] [--skip-cold] [--skip-ingress]
                                  [--skip-load]

(c) The layer's size, unzipped: what `sam build` puts in .aws-sam/build/OpsbotLayer, or, without a build, the
    hashed lock installed for arm64 beside the opsbot package. Target: 15 MB (boto3 is the runtime's).

(d) Load. The local stack with its worker, and 5 robots and 10 projects (two per robot) added to the bench's copy
    of the config. 1,000 signed Drone failures, paced evenly over one minute and spread over the 10 projects, each
    notifies its project's group; the fake DingTalk enforces DingTalk's 20 messages a minute per robot and mutes a
    robot for 10 minutes past it (errcode 130101). Reported: ingress p50 and p99 under that load, how long until the
    work queue is empty, whether every build reached its group (sent alone or folded into a digest: builds are
    counted, not messages), and whether any robot was ever muted. Takes about 75 seconds (the minute of sending,
    then the last digests); --skip-load leaves it out.

(e) GitOps releases. The local stack with its worker; shop-api's staging (kustomize, `apply: opsbot`) released from
    chat again and again, alternating #128 and #123, each waited for to its card (its verification shortened to a
    second in the bench's copy of the config). Per release: confirm → commit (from the chat message to the commit's
    time in the fake GitLab) and commit → rollout started (to the fake Kubernetes API's start of the Deployment's
    rollout), p50 and p95; beside them, floors measured in the same run: one commits-API call of the same file made
    directly, and one strategic merge patch of the Deployment made directly. Reported, not judged: a release is
    jobs on a queue that the local stack's worker polls once a second (Lambda's SQS source polls continuously).
    --skip-release leaves it out.

It is a measurement, not a test: it exits 0 when a target is missed, and non-zero only when something crashed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path

# No .pyc next to the layer's sources: the cold-start samples compile them from source, as Lambda does with a
# read-only /opt, and a cache left behind by this process would change later runs.
sys.dont_write_bytecode = True

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "opsbot"
for _path in (str(LAYER), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from local import template as template_module  # noqa: E402

PYTHON = sys.executable
REGION = "us-east-1"
ACCOUNT = "123456789012"
COLD_TARGET = 1.2
INGRESS_TARGET = 2.0
LAYER_TARGET_MB = 15.0
SAMPLE_TIMEOUT = 60  # seconds, one cold-start subprocess
STACK_START_TIMEOUT = 90
HTTP_TIMEOUT = 10

# Run in a fresh interpreter started with -I -S -B: no PYTHON* variables, no user site, no script directory on
# sys.path, no `site` (so no sitecustomize/usercustomize or .pth hooks beyond the venv's own site-packages, added
# by hand before the clock starts), and no .pyc written (the layer's own modules compile from source, as they do
# on Lambda where /opt is read-only). Only the import itself is timed.
SAMPLE_CODE = r"""
import sys, json, site
mode, paths, site_dirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
for d in site_dirs:
    site.addsitedir(d)
sys.path[:0] = paths
from time import perf_counter
before = set(sys.modules)
if mode == "floor":
    t0 = perf_counter()
    import boto3
    boto3.client("dynamodb")
    t1 = perf_counter()
elif mode == "fn":
    t0 = perf_counter()
    import app
    t1 = perf_counter()
elif mode == "ops_first":  # the worker, then what its first Kubernetes job adds: the client's import and one client
    import app
    t0 = perf_counter()
    from kubernetes import client as k8s
    configuration = k8s.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    k8s.AppsV1Api(k8s.ApiClient(configuration))
    t1 = perf_counter()
else:  # fn_clients: import, plus the AWS clients the first request creates (opsbot.aws.client is lazy)
    t0 = perf_counter()
    import app
    from opsbot.aws import client
    for service in ("dynamodb", "sqs", "ssm"):
        client(service)
    t1 = perf_counter()
top = sorted({name.split(".")[0] for name in set(sys.modules) - before})
print("BENCH_RESULT " + json.dumps({"seconds": t1 - t0, "modules": top}), flush=True)
"""


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(text: str = "") -> None:
    print(text, flush=True)


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("boto3", "botocore", "aws-lambda-powertools", "moto"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} ?")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------------------
# (a) cold start
# --------------------------------------------------------------------------------------------------------------
def _resolve(value, template) -> str:
    """A Globals value as it would be on AWS: parameters take their default, resources a plausible physical id."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        resource = template.raw.get("Resources", {}).get(name)
        if resource is None:
            return template.parameter_default(name)
        if resource["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/opsbot-dev-{name}"
        return f"opsbot-dev-{name}"
    return str(value)


def lambda_environment(template, function, fn_dir: Path) -> dict[str, str]:
    """What a Lambda container's process sees: the runtime's variables plus the template's."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": tempfile.gettempdir(),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        # Never look at the host's AWS files or the instance metadata service.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": f"opsbot-dev-{function.logical_id}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/opsbot-dev-{function.logical_id}",
        "LAMBDA_TASK_ROOT": str(fn_dir),
        "_HANDLER": function.handler,
    }
    variables = dict(template.global_environment())
    props = template.raw["Resources"][function.logical_id].get("Properties", {})
    variables.update((props.get("Environment") or {}).get("Variables") or {})
    for name, value in variables.items():
        env[name] = _resolve(value, template)
    env.setdefault("POWERTOOLS_SERVICE_NAME", "opsbot")
    return env


def site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def cold_sample(mode: str, paths: list[str], env: dict[str, str]) -> dict:
    cmd = [PYTHON, "-I", "-S", "-B", "-c", SAMPLE_CODE, mode, json.dumps(paths), json.dumps(site_dirs())]
    with tempfile.TemporaryDirectory(prefix="opsbot-bench-cwd-") as cwd:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=SAMPLE_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"cold-start sample ({mode}, {paths[0]}) failed with {done.returncode}:\n{done.stderr}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    raise RuntimeError(f"cold-start sample ({mode}) printed no result:\n{done.stdout}\n{done.stderr}")


def bench_cold_start(pairs: int) -> list[dict]:
    template = template_module.load(ROOT / "template.yaml")
    functions = []
    for function in template.functions.values():
        fn_dir = (ROOT / function.code_uri).resolve()
        module = function.handler.rsplit(".", 1)[0]
        if module != "app":
            raise RuntimeError(f"{function.logical_id}: handler module {module!r}, the bench imports app.py")
        functions.append(
            {
                "name": fn_dir.name,
                "logical_id": function.logical_id,
                "paths": [str(fn_dir), str(LAYER)],
                "env": lambda_environment(template, function, fn_dir),
                "fn": [],
                "floor": [],
                "fn_clients": [],
                "ops_first": [],
                "fn_modules": set(),
                "floor_modules": set(),
            }
        )
    say(
        f"(a) cold start: {len(functions)} functions x {pairs} pairs (floor, function), round-robin; "
        f"each sample a fresh `{Path(PYTHON).name} -I -S -B`"
    )
    # Warm-up: one discarded pair each, so the first real samples do not pay for a cold page cache.
    for f in functions:
        cold_sample("floor", f["paths"], f["env"])
        cold_sample("fn", f["paths"], f["env"])
    started = time.monotonic()
    for i in range(pairs):
        for f in functions:
            floor = cold_sample("floor", f["paths"], f["env"])
            fn = cold_sample("fn", f["paths"], f["env"])
            f["fn_clients"].append(cold_sample("fn_clients", f["paths"], f["env"])["seconds"])
            if f["name"] == "worker":
                f["ops_first"].append(cold_sample("ops_first", f["paths"], f["env"])["seconds"])
            f["floor"].append(floor["seconds"])
            f["fn"].append(fn["seconds"])
            f["floor_modules"] = set(floor["modules"])
            f["fn_modules"] = set(fn["modules"])
        say(f"  pair round {i + 1}/{pairs} done ({time.monotonic() - started:.0f}s)")

    results = []
    say()
    say(
        f"  {'function':16} {'median s':>9} {'floor med s':>11} {'ratio':>7} {'pair-ratio med':>15} "
        f"{'min s':>7} {'max s':>7}"
    )
    for f in functions:
        fn_med, floor_med = statistics.median(f["fn"]), statistics.median(f["floor"])
        pair_ratio = statistics.median(a / b for a, b in zip(f["fn"], f["floor"], strict=True))
        ratio = fn_med / floor_med
        results.append(
            {
                "name": f["name"],
                "median": fn_med,
                "floor": floor_med,
                "ratio": ratio,
                "with_clients": statistics.median(f["fn_clients"]),
                "ops_first": statistics.median(f["ops_first"]) if f["ops_first"] else None,
                "pair_ratio": pair_ratio,
                "beyond": sorted(f["fn_modules"] - f["floor_modules"]),
                "not_loaded": sorted(f["floor_modules"] - f["fn_modules"]),
            }
        )
        say(
            f"  {f['name']:16} {fn_med:9.3f} {floor_med:11.3f} {ratio:6.2f}x {pair_ratio:14.2f}x "
            f"{min(f['fn']):7.3f} {max(f['fn']):7.3f}"
        )
    say()
    say("  top-level modules each function imports beyond the floor (import boto3; boto3.client('dynamodb')):")
    for r in results:
        say(f"    {r['name']:16} +{len(r['beyond'])}: {' '.join(r['beyond']) or '-'}")
        if r["not_loaded"]:
            say(f"    {'':16} (floor loads, function does not: {' '.join(r['not_loaded'])})")
    return results


# --------------------------------------------------------------------------------------------------------------
# (b) ingress latency
# --------------------------------------------------------------------------------------------------------------
class LocalStack:
    """The local stack in a subprocess, on free ports, with its own copy of the example config (the load run adds
    robots and projects to it; its `local://` peers the stack resolves to its own fakes)."""

    def __init__(self, workdir: Path, worker: bool = False):
        self.worker = worker
        ports = [free_port() for _ in range(9)]
        while len(set(ports)) < 9:
            ports = [free_port() for _ in range(9)]
        self.port, self.moto_port, self.sink_port, self.drone_port, self.gitlab_port = ports[:5]
        self.kube_port, self.ssm_port, self.dns_port, self.argocd_port = ports[5:]
        self.config = workdir / "config"
        shutil.copytree(ROOT / "config" / "example", self.config)
        self.workdir = workdir
        self.log_path = workdir / "stack.log"
        self.proc: subprocess.Popen | None = None
        self.api = f"http://127.0.0.1:{self.port}"
        self.moto = f"http://127.0.0.1:{self.moto_port}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            env.pop(name, None)
        cmd = [
            PYTHON,
            "-m",
            "local.stack",
            "--port",
            str(self.port),
            "--moto-port",
            str(self.moto_port),
            "--sink-port",
            str(self.sink_port),
            "--drone-port",
            str(self.drone_port),
            "--gitlab-port",
            str(self.gitlab_port),
            "--kube-port",
            str(self.kube_port),
            "--ssm-port",
            str(self.ssm_port),
            "--dns-port",
            str(self.dns_port),
            "--argocd-port",
            str(self.argocd_port),
            "--config",
            str(self.config),
            *([] if self.worker else ["--no-worker"]),
            "--quiet",
            "--workdir",
            str(self.workdir / "stack"),
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        import requests

        deadline = time.monotonic() + STACK_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local stack exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.api + "/_local/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the local stack was not healthy within {STACK_START_TIMEOUT}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # the stack stops moto, the API and the sink on SIGTERM
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def bench_ingress(requests_n: int, warmup: int) -> dict:
    import boto3
    import requests
    from botocore.config import Config

    from local.signing import sign_for

    delivery = json.loads((ROOT / "tests" / "fixtures" / "drone" / "build_failure.json").read_text(encoding="utf-8"))
    path = "/webhooks/drone"

    with tempfile.TemporaryDirectory(prefix="opsbot-bench-") as workdir:
        stack = LocalStack(Path(workdir))
        try:
            t0 = time.monotonic()
            stack.start()
            say(
                f"(b) ingress: local stack healthy in {time.monotonic() - t0:.1f}s "
                f"(api {stack.api}, moto {stack.moto}); {warmup} warm-up + {requests_n} measured of each, "
                "interleaved"
            )

            # The floor: the same backend calls the ingress path cannot avoid, straight at the same moto server,
            # with the client settings opsbot.aws uses.
            aws = dict(
                endpoint_url=stack.moto,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
            )
            ddb, sqs = boto3.client("dynamodb", **aws), boto3.client("sqs", **aws)
            state_table = "opsbot-local-StateTable"
            queue_url = sqs.get_queue_url(QueueName="opsbot-local-WorkQueue")["QueueUrl"]
            job_body = json.dumps(
                {
                    "kind": "drone.build_finished",
                    "id": "0" * 32,
                    "correlation_id": "",
                    "payload": {
                        "repo": delivery["repo"],
                        "build": delivery["build"],
                        "system": delivery.get("system") or {},
                    },
                },
                ensure_ascii=False,
            )

            def floor_once(i: int) -> float:
                now = int(time.time())
                start = time.perf_counter()
                ddb.put_item(
                    TableName=state_table,
                    Item={"pk": {"S": f"idem#bench-floor#{i}"}, "expires_at": {"N": str(now + 172800)}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                sqs.send_message(
                    QueueUrl=queue_url,
                    MessageBody=job_body,
                    MessageAttributes={"kind": {"DataType": "String", "StringValue": "drone.build_finished"}},
                )
                return time.perf_counter() - start

            session = requests.Session()
            failures: list[str] = []

            def ingress_once(number: int) -> tuple[float, int]:
                delivery["build"]["number"] = number
                body = json.dumps(delivery, ensure_ascii=False).encode()
                headers = {"Content-Type": "application/json", "X-Drone-Event": "build", **sign_for(path, body)}
                start = time.perf_counter()
                response = session.post(stack.api + path, data=body, headers=headers, timeout=HTTP_TIMEOUT)
                _ = response.content
                elapsed = time.perf_counter() - start
                if response.status_code != 202 and len(failures) < 5:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                return elapsed, response.status_code

            number = 500_000
            warm_bad = 0
            for i in range(warmup):
                number += 1
                warm_bad += ingress_once(number)[1] != 202
                floor_once(-1 - i)

            # For diagnosis only: the local HTTP server's own round trip on the same keep-alive session (no
            # Lambda handler runs for /_local/health). On AWS, API Gateway takes this part.
            transport_times = []
            for _ in range(50):
                start = time.perf_counter()
                _ = session.get(stack.api + "/_local/health", timeout=HTTP_TIMEOUT).content
                transport_times.append(time.perf_counter() - start)

            ingress_times, floor_times, non_202 = [], [], 0
            started = time.monotonic()
            for i in range(requests_n):
                number += 1
                # Alternate which side goes first, so neither always follows the other.
                if i % 2 == 0:
                    elapsed, status = ingress_once(number)
                    floor_times.append(floor_once(i))
                else:
                    floor_times.append(floor_once(i))
                    elapsed, status = ingress_once(number)
                ingress_times.append(elapsed)
                non_202 += status != 202
            say(f"  {requests_n} pairs in {time.monotonic() - started:.1f}s")
            session.close()
        finally:
            stack.stop()
            if stack.proc is not None and stack.proc.returncode not in (0, None, -signal.SIGTERM):
                say(f"  (stack exited with {stack.proc.returncode}; log tail:)\n{stack.log_tail(15)}")

    result = {
        "ingress_p50": statistics.median(ingress_times),
        "ingress_p99": percentile(ingress_times, 99),
        "floor_p50": statistics.median(floor_times),
        "floor_p99": percentile(floor_times, 99),
        "pair_ratio": statistics.median(a / b for a, b in zip(ingress_times, floor_times, strict=True)),
        "transport_p50": statistics.median(transport_times),
        "non_202": non_202,
        "warm_non_202": warm_bad,
        "failures": failures,
        "n": requests_n,
    }
    result["ratio"] = result["ingress_p50"] / result["floor_p50"]
    say()
    say(f"  {'':28} {'p50 ms':>8} {'p99 ms':>8}")
    say(f"  {'POST /webhooks/drone':28} {result['ingress_p50'] * 1000:8.2f} {result['ingress_p99'] * 1000:8.2f}")
    say(f"  {'floor: put_item + send_msg':28} {result['floor_p50'] * 1000:8.2f} {result['floor_p99'] * 1000:8.2f}")
    say(
        f"  {'(info) GET /_local/health':28} {result['transport_p50'] * 1000:8.2f}           "
        "the local HTTP server alone, same session"
    )
    say(
        f"  ratio p50(ingress)/p50(floor) = {result['ratio']:.2f}x   (median of per-pair ratios "
        f"{result['pair_ratio']:.2f}x)"
    )
    if result["transport_p50"] > 0.02:
        say(
            f"  note: a keep-alive round trip to the local stack's HTTP server alone takes "
            f"{result['transport_p50'] * 1000:.0f} ms with no handler running. That is the signature of Nagle's "
            "algorithm meeting delayed ACKs (headers and body leave in separate writes without TCP_NODELAY), an "
            "artifact of local/stack.py's server, not of the Lambda code: `disable_nagle_algorithm = True` on "
            "its request handler removes it."
        )
    say(f"  non-202 responses: {non_202}/{requests_n} measured, {warm_bad}/{warmup} warm-up")
    for failure in failures:
        say(f"    e.g. {failure}")
    return result


def bench_chat(requests_n: int, warmup: int) -> dict:
    """(c) A chat read (`whoami`) through POST /webhooks/dingtalk against its two unavoidable backend calls: binding
    the callback's (timestamp, sign) to its msgId (one conditional PutItem: a replayed sign is refused) and the
    audit record (one BatchWriteItem of two items). Config is cached in the Lambda, so it is not per request."""
    import boto3
    import requests
    from botocore.config import Config

    from local.chat import callback
    from local.signing import sign_for

    path = "/webhooks/dingtalk"
    person = {"id": "alice", "name": "Alice Wang", "dingtalk_user_id": "alice.wang"}
    with tempfile.TemporaryDirectory(prefix="opsbot-bench-") as workdir:
        stack = LocalStack(Path(workdir))
        try:
            stack.start()
            say(f"(c) chat read: local stack healthy; {warmup} warm-up + {requests_n} measured of each, interleaved")
            aws = dict(
                endpoint_url=stack.moto,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
            )
            ddb = boto3.client("dynamodb", **aws)
            record = json.dumps({"who": "alice", "command": "whoami", "result": "answered", "detail": "whoami"})

            def floor_once(i: int) -> float:
                items = [
                    {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": f"{i:013d}#bench"}, "record": {"S": record}}}}
                    for pk in ("bench", "bench#2")
                ]
                now = int(time.time())
                start = time.perf_counter()
                ddb.put_item(
                    TableName="opsbot-local-StateTable",
                    Item={"pk": {"S": f"sig#bench-floor#{i}#{now}"}, "value": {"S": "m"}, "expires_at": {"N": "0"}},
                    ConditionExpression="attribute_not_exists(pk) OR #v = :v",
                    ExpressionAttributeNames={"#v": "value"},
                    ExpressionAttributeValues={":v": {"S": "m"}},
                )
                ddb.batch_write_item(RequestItems={"opsbot-local-AuditTable": items})
                return time.perf_counter() - start

            session = requests.Session()
            failures: list[str] = []

            def chat_once() -> float:
                body = json.dumps(callback("whoami", person, "http://127.0.0.1:9"), ensure_ascii=False).encode()
                headers = {"Content-Type": "application/json", **sign_for(path, body)}
                start = time.perf_counter()
                response = session.post(stack.api + path, data=body, headers=headers, timeout=HTTP_TIMEOUT)
                elapsed = time.perf_counter() - start
                if (response.status_code != 200 or "Alice" not in response.text) and len(failures) < 5:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                return elapsed

            for i in range(warmup):
                chat_once()
                floor_once(-1 - i)
            chat_times, floor_times = [], []
            for i in range(requests_n):
                if i % 2 == 0:
                    chat_times.append(chat_once())
                    floor_times.append(floor_once(i))
                else:
                    floor_times.append(floor_once(i))
                    chat_times.append(chat_once())
            session.close()
        finally:
            stack.stop()
    result = {
        "p50": statistics.median(chat_times),
        "p99": percentile(chat_times, 99),
        "floor_p50": statistics.median(floor_times),
        "floor_p99": percentile(floor_times, 99),
        "failures": failures,
    }
    result["ratio"] = result["p50"] / result["floor_p50"]
    say(
        f"  {'POST /webhooks/dingtalk whoami':32} p50 {result['p50'] * 1000:7.2f} ms  "
        f"p99 {result['p99'] * 1000:7.2f} ms"
    )
    say(
        f"  {'floor: sign put_item + audit':32} p50 {result['floor_p50'] * 1000:7.2f} ms  "
        f"p99 {result['floor_p99'] * 1000:7.2f} ms"
    )
    for failure in failures:
        say(f"    failed: {failure}")
    return result


# --------------------------------------------------------------------------------------------------------------
# (e) GitOps releases: confirm → commit, commit → rollout started
# --------------------------------------------------------------------------------------------------------------
RELEASE_FILE = "shop-api/overlays/staging/kustomization.yaml"


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def bench_release(releases_n: int) -> dict:
    import requests

    from local.chat import callback
    from local.signing import sign_for

    path = "/webhooks/dingtalk"
    person = {"id": "alice", "name": "Alice Wang", "dingtalk_user_id": "alice.wang"}
    with tempfile.TemporaryDirectory(prefix="opsbot-bench-") as workdir:
        stack = LocalStack(Path(workdir), worker=True)
        api_file = stack.config / "projects" / "shop-api.yaml"
        api_file.write_text(
            api_file.read_text(encoding="utf-8").replace("minutes: 1\n", "minutes: 0.02\n"), encoding="utf-8"
        )
        gitlab, kube = f"http://127.0.0.1:{stack.gitlab_port}", f"http://127.0.0.1:{stack.kube_port}"
        sink = f"http://127.0.0.1:{stack.sink_port}"
        http = requests.Session()
        to_commit, to_rollout, commit_floor, patch_floor, failures = [], [], [], [], []
        try:
            stack.start()
            say(f"(e) GitOps releases: local stack with its worker; {releases_n} releases of shop-api to staging")

            def commits() -> list[dict]:
                query = {"project": "platform/deploy", "ref": "main", "path": RELEASE_FILE}
                return http.get(gitlab + "/_control/commits", params=query, timeout=HTTP_TIMEOUT).json()["commits"]

            def deployment() -> dict:
                found = http.get(kube + "/_control/deployments", timeout=HTTP_TIMEOUT).json()["deployments"]
                return found["shop-staging/shop-api"]

            def cards() -> int:
                messages = http.get(sink + "/_control/messages", timeout=HTTP_TIMEOUT).json()["messages"]
                return sum(1 for m in messages if "Release shop-api" in json.dumps(m["message"], ensure_ascii=False))

            for i in range(releases_n):
                number = 128 if i % 2 == 0 else 123
                told, before = cards(), len(commits())
                body = json.dumps(callback(f"deploy shop-api {number} staging", person, sink), ensure_ascii=False)
                body = body.encode()
                asked = time.time()
                http.post(
                    stack.api + path,
                    data=body,
                    headers={"Content-Type": "application/json", **sign_for(path, body)},
                    timeout=HTTP_TIMEOUT,
                )
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and cards() <= told:
                    time.sleep(0.1)
                found = commits()
                if len(found) != before + 1 or cards() <= told:
                    failures.append(f"release of #{number}: {len(found) - before} commit(s), card {cards() > told}")
                    continue
                committed = _epoch(found[0]["created_at"])
                to_commit.append(committed - asked)
                to_rollout.append(deployment()["changed_at"] - committed)

            # The floors: the same two calls, made directly against the same fakes.
            from opsbot.gitlab.api import GitLabClient

            client = GitLabClient(gitlab, "local-deploy-token", HTTP_TIMEOUT)
            for i in range(releases_n):
                text, last = client.file_at("platform/deploy", RELEASE_FILE, "main")
                changed = re.sub(r'newTag: "[^"]*"', f'newTag: "floor{i:03d}"', text)
                start = time.perf_counter()
                client.update_file("platform/deploy", "main", RELEASE_FILE, changed, "bench floor", last)
                commit_floor.append(time.perf_counter() - start)
                patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"floor:{i}"}]}}}}
                start = time.perf_counter()
                http.patch(
                    kube + "/apis/apps/v1/namespaces/shop-staging/deployments/shop-api",
                    data=json.dumps(patch),
                    headers={"Content-Type": "application/strategic-merge-patch+json", "Authorization": _eks_bearer()},
                    timeout=HTTP_TIMEOUT,
                )
                patch_floor.append(time.perf_counter() - start)
        finally:
            http.close()
            stack.stop()
    result = {"failures": failures, "n": len(to_commit)}
    for name, values in (
        ("to_commit", to_commit),
        ("to_rollout", to_rollout),
        ("commit_floor", commit_floor),
        ("patch_floor", patch_floor),
    ):
        result[name] = (statistics.median(values), percentile(values, 95)) if values else (math.nan, math.nan)
    for label, key in (
        ("confirm → commit", "to_commit"),
        ("  floor: one commits-API call", "commit_floor"),
        ("commit → rollout started", "to_rollout"),
        ("  floor: one strategic patch", "patch_floor"),
    ):
        p50, p95 = result[key]
        say(f"  {label:32} p50 {p50 * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms")
    for failure in failures:
        say(f"    failed: {failure}")
    return result


def _eks_bearer() -> str:
    """A token of the shape the fake Kubernetes API takes for its EKS cluster (a presigned GetCallerIdentity)."""
    import base64

    url = (
        "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60"
        "&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=bench"
    )
    return "Bearer k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


# --------------------------------------------------------------------------------------------------------------
# (d) load: 1,000 Drone webhooks in a minute, with the worker, into 5 rate-limited robots
# --------------------------------------------------------------------------------------------------------------
LOAD_BUILDS = 1_000
LOAD_SECONDS = 60.0
LOAD_ROBOTS = ("load-a", "load-b", "load-c", "load-d", "load-e")
LOAD_PROJECTS = tuple(f"load-{i:02d}" for i in range(10))  # load-00 and load-01 on load-a, and so on
LOAD_FIRST_NUMBER = 100_001  # six digits, so that "#<number>" in a message names one build of this run
DRAIN_TIMEOUT = 900.0


def load_robot(project: str) -> str:
    return LOAD_ROBOTS[LOAD_PROJECTS.index(project) // 2]


def add_load_projects(config: Path) -> None:
    """The bench's copy of the config gets the load run's robots and projects, as the integration tests add theirs
    (tests/integration/conftest.py): each robot its own group (access token) on the stack's fake DingTalk
    (local://dingtalk)."""
    import yaml

    global_file = config / "opsbot.yaml"
    document = yaml.safe_load(global_file.read_text(encoding="utf-8"))
    for robot in LOAD_ROBOTS:
        document["robots"][robot] = {
            "webhook": f"local://dingtalk/robot/send?access_token=local-{robot}",
            "secret": f"SEC-local-{robot}-secret",
            "rate_limit_per_minute": 20,
        }
    global_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    for project in LOAD_PROJECTS:
        spec = {"repo": f"load/{project}", "robot": load_robot(project), "notify": {"on_failure": True}}
        (config / "projects" / f"{project}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")


def bench_load() -> dict:
    import boto3
    import requests

    from local.signing import sign_for

    delivery = json.loads((ROOT / "tests" / "fixtures" / "drone" / "build_failure.json").read_text(encoding="utf-8"))
    path = "/webhooks/drone"
    with tempfile.TemporaryDirectory(prefix="opsbot-bench-") as workdir:
        stack = LocalStack(Path(workdir), worker=True)
        add_load_projects(stack.config)
        try:
            stack.start()
            sink = f"http://127.0.0.1:{stack.sink_port}"
            local = dict(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
            sqs = boto3.client("sqs", endpoint_url=stack.moto, **local)
            queue_url = sqs.get_queue_url(QueueName="opsbot-local-WorkQueue")["QueueUrl"]

            def queue_depth() -> int:
                names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
                names.append("ApproximateNumberOfMessagesDelayed")
                found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
                return sum(int(v) for v in found.values())

            say(
                f"(d) load: {LOAD_BUILDS} Drone failures over {LOAD_SECONDS:.0f}s into {len(LOAD_PROJECTS)} projects "
                f"and {len(LOAD_ROBOTS)} robots (20 messages a minute each), with the worker"
            )
            session = requests.Session()
            latencies, statuses = [], Counter()
            expected: dict[int, str] = {}  # build number -> the access token of its project's robot
            started, started_wall = time.monotonic(), time.time()
            for i in range(LOAD_BUILDS):
                due = started + i * LOAD_SECONDS / LOAD_BUILDS
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                project, number = LOAD_PROJECTS[i % len(LOAD_PROJECTS)], LOAD_FIRST_NUMBER + i
                delivery["repo"]["slug"], delivery["build"]["number"] = f"load/{project}", number
                expected[number] = f"local-{load_robot(project)}"
                body = json.dumps(delivery, ensure_ascii=False).encode()
                headers = {"Content-Type": "application/json", "X-Drone-Event": "build", **sign_for(path, body)}
                start = time.perf_counter()
                response = session.post(stack.api + path, data=body, headers=headers, timeout=HTTP_TIMEOUT)
                latencies.append(time.perf_counter() - start)
                statuses[response.status_code] += 1
            sent = time.monotonic() - started
            say(f"  sent in {sent:.1f}s: {dict(statuses)}; waiting for the worker to drain the queue")

            def delivered() -> tuple[dict[int, set[str]], list[dict]]:
                messages = session.get(sink + "/_control/messages", timeout=HTTP_TIMEOUT).json()["messages"]
                found: dict[int, set[str]] = {}
                ours = [m for m in messages if m["access_token"] in expected.values()]
                for message in ours:
                    text = json.dumps(message["message"], ensure_ascii=False)
                    for number in {int(n) for n in re.findall(r"#(1\d{5})(?!\d)", text)}:
                        found.setdefault(number, set()).add(message["access_token"])
                return found, ours

            drained_at = None
            while time.monotonic() - started < DRAIN_TIMEOUT:
                if queue_depth() == 0 and len(delivered()[0]) >= len(expected):
                    drained_at = time.monotonic() - started
                    break
                time.sleep(1.0)
            found, messages = delivered()
            rejections = session.get(sink + "/_control/rejections", timeout=HTTP_TIMEOUT).json()["rejections"]
            session.close()
        finally:
            stack.stop()
    in_their_group = sum(1 for number, token in expected.items() if token in found.get(number, set()))
    digests = sum(1 for m in messages if "📦" in json.dumps(m["message"], ensure_ascii=False))
    per_minute = max_per_minute(messages)
    result = {
        "sent_seconds": sent,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "non_202": sum(n for status, n in statuses.items() if status != 202),
        "drained": drained_at,
        "builds": LOAD_BUILDS,
        "reached": in_their_group,
        "messages": len(messages),
        "digests": digests,
        "muted": sum(1 for r in rejections if r["errcode"] in (130101, 410100)),
        "rejected": len(rejections),
        "max_per_minute": per_minute,
    }
    say(
        f"  ingress p50 {result['p50'] * 1000:.1f} ms, p99 {result['p99'] * 1000:.1f} ms; "
        f"{result['non_202']} answers were not 202"
    )
    drained = f"after {drained_at:.0f}s" if drained_at is not None else "NOT within the timeout"
    say(
        f"  queue drained {drained} "
        f"(from the first webhook); {in_their_group}/{LOAD_BUILDS} builds reached their group in "
        f"{len(messages)} messages ({digests} digests); at most {per_minute} messages to one robot in any minute; "
        f"{result['muted']} mutes (130101), {len(rejections)} rejections in all"
    )
    for token in sorted({m["access_token"] for m in messages}):
        say(f"    {token.removeprefix('local-')}: {robot_timeline(messages, token, started_wall)}")
    return result


def robot_timeline(messages: list[dict], token: str, started_wall: float) -> str:
    """When one robot's messages went out, seconds from the first webhook: builds sent alone, then each digest."""
    alone, digests = [], []
    for message in sorted((m for m in messages if m["access_token"] == token), key=lambda m: m["at"]):
        text = json.dumps(message["message"], ensure_ascii=False)
        at = message["at"] - started_wall
        if "📦" in text:
            digests.append(f"{at:.0f} s ({len(set(re.findall(r'#(1\d{5})(?!\d)', text)))} builds)")
        else:
            alone.append(at)
    span = f"{min(alone):.0f}–{max(alone):.0f} s" if alone else "-"
    return f"{len(alone)} alone ({span}); digests at {', '.join(digests) or '-'}"


def max_per_minute(messages: list[dict]) -> int:
    """The most messages one robot received within any 60 seconds."""
    most = 0
    for token in {m["access_token"] for m in messages}:
        times = sorted(m["at"] for m in messages if m["access_token"] == token)
        for i, start in enumerate(times):
            most = max(most, sum(1 for t in times[i:] if t < start + 60))
    return most


# --------------------------------------------------------------------------------------------------------------
def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1_000_000


def bench_layer_size() -> dict:
    """The shared layer unzipped: sam build's output when there is one, else the lock installed for arm64."""
    built = ROOT / ".aws-sam" / "build" / "OpsbotLayer"
    if built.is_dir():
        return {"mb": _size_mb(built), "how": ".aws-sam/build/OpsbotLayer"}
    with tempfile.TemporaryDirectory() as target:
        # As sam build does: the hashed lock for arm64 wheels, no bytecode.
        options = "--quiet --disable-pip-version-check --no-deps --require-hashes --no-compile --only-binary=:all:"
        command = [PYTHON, "-m", "pip", "install", *options.split(), "--platform", "manylinux2014_aarch64"]
        command += ["--python-version", "3.12", "--target", target, "-r", str(LAYER / "requirements.txt")]
        subprocess.run(command, check=True, capture_output=True, timeout=600)
        shutil.copytree(LAYER / "opsbot", Path(target) / "opsbot")
        return {"mb": _size_mb(Path(target)), "how": "the lock installed for arm64 (no sam build yet)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=15, help="cold-start pairs per function (default 15)")
    parser.add_argument("--requests", type=int, default=300, help="measured ingress requests (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="ingress warm-up requests of each kind (default 20)")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-ingress", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="leave out (d), the load run (about 75 s)")
    parser.add_argument("--skip-release", action="store_true", help="leave out (e), the GitOps releases")
    parser.add_argument("--releases", type=int, default=20, help="GitOps releases measured in (e) (default 20)")
    args = parser.parse_args(argv)

    # A SIGTERM to the bench must still stop the stack (the finally blocks run on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    say(f"opsbot bench: Python {sys.version.split()[0]} ({PYTHON}), {os.cpu_count()} CPUs; {versions()}")
    say()
    begun = time.monotonic()
    cold = [] if args.skip_cold else bench_cold_start(args.pairs)
    if cold:
        say()
    ingress = None if args.skip_ingress else bench_ingress(args.requests, args.warmup)
    chat = None if args.skip_ingress else bench_chat(max(50, args.requests // 2), args.warmup)
    load = None if args.skip_load else bench_load()
    release = None if args.skip_release else bench_release(args.releases)
    layer = bench_layer_size()

    say()
    say("=" * 100)
    say(f"{'SUMMARY':28} {'measured':>12} {'floor':>12} {'ratio':>8} {'pair-ratio':>11} {'target':>8}  result")
    say("-" * 100)
    for r in cold:
        say(
            f"{'cold start ' + r['name']:28} {r['median'] * 1000:9.0f} ms {r['floor'] * 1000:9.0f} ms "
            f"{r['ratio']:7.2f}x {r['pair_ratio']:10.2f}x {'<=' + str(COLD_TARGET) + 'x':>8}  "
            f"{verdict(r['ratio'], COLD_TARGET)}"
        )
        say(
            f"{'  + first-request clients':28} {r['with_clients'] * 1000:9.0f} ms {r['floor'] * 1000:9.0f} ms "
            f"{r['with_clients'] / r['floor']:7.2f}x {'(info: import + dynamodb, sqs, ssm clients)':>32}"
        )
        if r["ops_first"] is not None:
            say(
                f"{'  + first ops job':28} {r['ops_first'] * 1000:9.0f} ms {'':>12} {'':>8} "
                "(info: import kubernetes and make the first client, after the cold start)"
            )
    if ingress:
        result = verdict(ingress["ratio"], INGRESS_TARGET)
        if ingress["non_202"]:
            result = f"MISS ({ingress['non_202']} non-202)"
        say(
            f"{'ingress p50 drone webhook':28} {ingress['ingress_p50'] * 1000:9.2f} ms "
            f"{ingress['floor_p50'] * 1000:9.2f} ms {ingress['ratio']:7.2f}x {ingress['pair_ratio']:10.2f}x "
            f"{'<=' + str(INGRESS_TARGET) + 'x':>8}  {result}"
        )
        say(
            f"{'ingress p99 (info)':28} {ingress['ingress_p99'] * 1000:9.2f} ms "
            f"{ingress['floor_p99'] * 1000:9.2f} ms {ingress['ingress_p99'] / ingress['floor_p99']:7.2f}x"
        )
        say(
            f"{'local HTTP round trip (info)':28} {ingress['transport_p50'] * 1000:9.2f} ms "
            "(p50 of GET /_local/health, no handler)"
        )
    if chat:
        result = verdict(chat["ratio"], INGRESS_TARGET) if not chat["failures"] else "MISS (failed answers)"
        say(
            f"{'chat read p50 (whoami)':28} {chat['p50'] * 1000:9.2f} ms {chat['floor_p50'] * 1000:9.2f} ms "
            f"{chat['ratio']:7.2f}x {'':>10} {'<=' + str(INGRESS_TARGET) + 'x':>8}  {result}"
        )
    if load:
        say(
            f"{'load: ingress p50 (p99)':28} {load['p50'] * 1000:9.2f} ms ({load['p99'] * 1000:.1f} ms p99, "
            f"{LOAD_BUILDS} Drone webhooks in {load['sent_seconds']:.0f}s, worker running; {load['non_202']} not 202)"
        )
        drained = f"{load['drained']:9.0f} s " if load["drained"] is not None else "  NOT drained "
        say(f"{'load: queue drained after':28} {drained}  (from the first webhook)")
        whole = load["reached"] == load["builds"]
        say(
            f"{'load: builds in their group':28} {load['reached']:6d}/{load['builds']}  "
            f"({load['messages']} messages, {load['digests']} of them digests)  {'ok' if whole else 'MISS'}"
        )
        muted = "ok" if not load["muted"] else "MISS"
        say(
            f"{'load: robots muted (130101)':28} {load['muted']:9d}    "
            f"(most messages to one robot in a minute: {load['max_per_minute']})  {muted}"
        )
    if release:
        for label, key, floor in (
            ("release: confirm → commit", "to_commit", "commit_floor"),
            ("release: commit → rollout", "to_rollout", "patch_floor"),
        ):
            (p50, p95), (f50, _f95) = release[key], release[floor]
            say(
                f"{label:28} {p50 * 1000:9.0f} ms {f50 * 1000:9.1f} ms {p50 / f50:7.1f}x  "
                f"(p95 {p95 * 1000:.0f} ms; {release['n']} releases; info: a queue the local worker polls each second)"
            )
    say(
        f"{'layer size, unzipped':28} {layer['mb']:9.1f} MB {'':>12} {'':>8} {'':>11} "
        f"{'<=' + str(LAYER_TARGET_MB) + ' MB':>8}  {'ok' if layer['mb'] <= LAYER_TARGET_MB else 'MISS'}"
        f"  ({layer['how']})"
    )
    say("=" * 100)
    say(
        "cold start: medians of fresh-interpreter samples; ingress: p50/p99 of wall time per request. "
        f"Total {time.monotonic() - begun:.0f}s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
