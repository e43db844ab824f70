"""The deployment files agree with the bridge they deploy: the Dockerfile and the
Kubernetes manifests (deploy/k8s/) are read, and every command, port, probe path,
metric and timeout they name is checked against rtfast itself. (Building the image
needs a Docker engine, which this machine does not run; nginx is exercised for real
in tests/test_nginx.py.)"""

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
MANIFESTS = ROOT / "deploy" / "k8s" / "rtfast.yaml"
if not DOCKERFILE.exists():     # run from the installed wheel's tests/: no checkout around
    pytest.skip("Dockerfile is not here (not a checkout)", allow_module_level=True)

yaml = pytest.importorskip("yaml")

from rtfast.bridge.ops import Collector, Ops, OPS_PATHS  # noqa: E402
from rtfast.bridge.server import build_parser  # noqa: E402


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, joined = [], re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    import json

    return json.loads(args)


def test_the_image_builds_the_wheel_in_one_stage_and_runs_it_as_a_user_in_another():
    steps = instructions(DOCKERFILE.read_text())
    stages = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    assert len(stages) == 2, "multi-stage: a build stage and a small runtime stage"
    build, runtime = steps[stages[0]:stages[1]], steps[stages[1]:]
    assert " AS build" in build[0][1] and all("slim" in steps[i][1] for i in stages)
    # The build stage copies what a wheel is built from, and each of those exists.
    for word, args in build:
        if word == "COPY":
            for src in shlex.split(args)[:-1]:
                assert (ROOT / src).exists(), src
    assert any(w == "RUN" and "pip wheel" in a for w, a in build)
    # The runtime stage takes only wheels from the build stage (no compiler, no sources),
    # installs them without an index, and drops root.
    copies = [a for w, a in runtime if w == "COPY"]
    assert copies == ["--from=build /wheels /wheels"]
    assert any(w == "RUN" and "pip install" in a and "--no-index" in a for w, a in runtime)
    user = [a for w, a in runtime if w == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert not any(w == "RUN" for w, _ in runtime[[w for w, _ in runtime].index("USER"):])
    # What it runs is a valid `rtfast bridge` command line, listening where it exposes.
    entry = exec_form(next(a for w, a in runtime if w == "ENTRYPOINT"))
    cmd = exec_form(next(a for w, a in runtime if w == "CMD"))
    assert entry[:2] == ["rtfast", "bridge"]
    args = build_parser().parse_args(entry[2:] + cmd)
    port = args.listen.rpartition(":")[2]
    assert args.listen.startswith("0.0.0.0:")
    assert [a for w, a in runtime if w == "EXPOSE"] == [port]
    health = next(a for w, a in runtime if w == "HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in health


def manifests() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFESTS.read_text())}


def test_the_deployment_probes_drains_and_runs_a_valid_bridge():
    docs = manifests()
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The container's arguments follow the image's ENTRYPOINT: a valid command line.
    entry = exec_form(next(a for w, a in instructions(DOCKERFILE.read_text()) if w == "ENTRYPOINT"))
    args = build_parser().parse_args(entry[2:] + container["args"])
    port = int(args.listen.rpartition(":")[2])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    # Readiness on /readyz (503 while draining or full), liveness on /healthz.
    ready, alive = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert (ready["path"], alive["path"]) == ("/readyz", "/healthz") and {"/readyz", "/healthz"} <= OPS_PATHS
    assert ready["port"] == alive["port"] == "http"
    # The pod is given longer than the drain: preStop's wait plus --drain-timeout fit the grace period.
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    sleep = float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", pre_stop).group(1))
    assert args.drain_timeout + sleep < pod["terminationGracePeriodSeconds"] <= args.drain_timeout + sleep + 60
    # One worker per CPU the pod is given, and the image's user.
    assert args.workers == int(container["resources"]["limits"]["cpu"])
    user = [a for w, a in instructions(DOCKERFILE.read_text()) if w == "USER"][-1]
    assert pod["securityContext"]["runAsUser"] == int(user) and pod["securityContext"]["runAsNonRoot"]
    # A rollout never removes a pod before its replacement is ready.
    assert docs["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_service_and_the_autoscaler_point_at_the_deployment_and_a_real_metric():
    docs = manifests()
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert docs["Service"]["spec"]["selector"] == labels
    assert docs["Deployment"]["spec"]["selector"]["matchLabels"] == labels
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": docs["Deployment"]["metadata"]["name"]}
    (metric,) = hpa["metrics"]
    name = metric["pods"]["metric"]["name"]
    families = {f.name for f in Collector(lambda: [Ops(max_calls=None, live=list, admitted=lambda: 0).snapshot()])
                .collect()}
    assert name in families and name == "rtfast_active_calls"
    # Scaling on calls per pod below the pods' own --max-calls, so pods fill before they refuse.
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    max_calls = int(container["args"][container["args"].index("--max-calls") + 1])
    assert int(metric["pods"]["target"]["averageValue"]) < max_calls
