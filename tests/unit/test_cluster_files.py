"""The deployment files under ``cluster/``: the KubeRay manifest and the load-balancer examples.

Parsed only (no Ray, no Kubernetes, no proxy): these tests hold the manifest to the rules the
README states — every front probed on ``/ready`` and ``/health``, a grace period longer than the
preStop sleep plus the drain timeout, the Service on port 8000 over the pods that run a front,
the same deployment-level settings and storage root everywhere — and the proxy examples to at
least two fronts, a ``/ready`` health check and no retry of non-idempotent requests.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
MANIFEST = CLUSTER / "kuberay" / "raycluster.yaml"
HAPROXY = CLUSTER / "lb" / "haproxy.cfg"
NGINX = CLUSTER / "lb" / "nginx.conf"

FRONT_PORT = 8000
GCS_PORT = 6379
# settings every front of one deployment must give alike (a front that differs is refused)
DEPLOYMENT_ENV = ("RISKACTORS_DEPLOYMENT", "RISKACTORS_STORAGE_ROOT", "RISKACTORS_PLACEMENT", "RISKACTORS_SHARDS")


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d is not None]


def _one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in {MANIFEST.name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def raycluster(docs) -> dict:
    return _one(docs, "RayCluster")


def _groups(rc: dict) -> list[tuple[str, str, dict, int]]:
    """(node type, group name, pod template, replicas) of the head and of each worker group."""
    spec = rc["spec"]
    out = [("head", "headgroup", spec["headGroupSpec"]["template"], 1)]
    for g in spec.get("workerGroupSpecs") or []:
        out.append(("worker", g["groupName"], g["template"], int(g.get("replicas", 0))))
    return out


def _script(container: dict) -> str:
    return "\n".join(str(x) for x in (container.get("command") or []) + (container.get("args") or []))


def _runs_front(container: dict) -> bool:
    return "riskactors serve" in _script(container)


def _fronts(template: dict) -> list[dict]:
    return [c for c in template["spec"]["containers"] if _runs_front(c)]


def _all_fronts(rc: dict) -> list[tuple[str, dict, dict]]:
    """(group name, pod template, front container) for every front of the cluster."""
    return [(name, tpl, c) for _, name, tpl, _ in _groups(rc) for c in _fronts(tpl)]


def _serve_argv(container: dict) -> list[str]:
    """The ``riskactors serve ...`` command line (after an ``exec``), split like a shell would."""
    lines = [ln for ln in _script(container).splitlines() if "riskactors serve" in ln]
    assert len(lines) == 1, f"{container['name']}: expected one 'riskactors serve' line, got {lines}"
    argv = shlex.split(lines[0], comments=True)
    start = argv.index("riskactors")
    assert argv[start + 1] == "serve"
    return argv[start + 2:]


def _flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name:
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


def _env_value(container: dict, name: str) -> str:
    entry = _env(container).get(name)
    assert entry is not None, f"{container['name']}: {name} is not set"
    assert "value" in entry, f"{container['name']}: {name} has no literal value"
    return str(entry["value"])


def _prestop_sleep(container: dict) -> float:
    """Seconds the container's preStop hook sleeps (``sleep: {seconds}`` or ``sleep N`` commands)."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = " ".join((hook.get("exec") or {}).get("command") or [])
    sleeps = re.findall(r"\bsleep\s+(\d+(?:\.\d+)?)\b", command)
    assert sleeps, f"{container['name']}: no preStop sleep ({command!r})"
    return sum(float(s) for s in sleeps)


def _container_port(container: dict, port) -> int:
    """A probe or Service port, a number or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise AssertionError(f"{container['name']}: no port named {port!r}")


def _pod_labels(rc: dict, node_type: str, group: str, template: dict) -> dict[str, str]:
    """The labels a pod of this group carries: the template's plus those KubeRay sets."""
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.update({"ray.io/cluster": rc["metadata"]["name"], "ray.io/node-type": node_type, "ray.io/group": group})
    return labels


def _mounts(container: dict) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}


# --- the RayCluster ----------------------------------------------------------------------------


def test_raycluster_kind_api_version_and_groups(raycluster):
    assert raycluster["apiVersion"] == "ray.io/v1"
    assert raycluster["kind"] == "RayCluster"
    spec = raycluster["spec"]
    assert "template" in spec["headGroupSpec"]
    assert spec.get("workerGroupSpecs"), "no worker group"
    for g in spec["workerGroupSpecs"]:
        assert g["groupName"] and "rayStartParams" in g and "template" in g
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]


def test_every_pod_runs_a_front_after_the_ray_container(raycluster):
    for _, name, tpl, _ in _groups(raycluster):
        containers = tpl["spec"]["containers"]
        # KubeRay treats containers[0] as the Ray container and rewrites its command
        assert not _runs_front(containers[0]), f"{name}: the Ray container must come first"
        assert len(_fronts(tpl)) == 1, f"{name}: expected one front container"
        # the front is a Ray driver: it finds the raylet by scanning the pod's processes
        assert tpl["spec"].get("shareProcessNamespace") is True, f"{name}: shareProcessNamespace"


def test_one_image_on_every_node(raycluster):
    """Ray and Python must match on every node: one image for Ray containers and fronts."""
    images = {c["image"] for _, _, tpl, _ in _groups(raycluster) for c in tpl["spec"]["containers"]}
    assert len(images) == 1, images


def test_front_probes(raycluster):
    fronts = _all_fronts(raycluster)
    assert len(fronts) >= 2
    for name, _, c in fronts:
        ready, live = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
        assert ready["path"] == "/ready", name
        assert live["path"] == "/health", name
        assert _container_port(c, ready["port"]) == FRONT_PORT, name
        assert _container_port(c, live["port"]) == FRONT_PORT, name
        assert FRONT_PORT in [p["containerPort"] for p in c.get("ports") or []], name
        if "startupProbe" in c:  # if any, on liveness's path: /ready may fail for long at start
            assert c["startupProbe"]["httpGet"]["path"] == "/health", name


def test_front_command_lines(raycluster):
    head_svc = f"{raycluster['metadata']['name']}-head-svc"  # the head Service KubeRay makes
    for node_type, name, tpl, _ in _groups(raycluster):
        for c in _fronts(tpl):
            argv = _serve_argv(c)
            assert _flag(argv, "--host") == "0.0.0.0", name
            assert _flag(argv, "--port") == str(FRONT_PORT), name
            expected = f"127.0.0.1:{GCS_PORT}" if node_type == "head" else f"{head_svc}:{GCS_PORT}"
            assert _flag(argv, "--address") == expected, name
            # exec, so that SIGTERM reaches riskactors (which drains) and not a shell
            assert re.search(r"^\s*exec\s+riskactors serve", _script(c), re.MULTILINE), name


def test_termination_grace_exceeds_prestop_plus_drain(raycluster):
    for _, name, tpl, _ in _groups(raycluster):
        grace = tpl["spec"]["terminationGracePeriodSeconds"]
        for c in _fronts(tpl):
            drain = float(_env_value(c, "RISKACTORS_DRAIN_TIMEOUT_SECONDS"))
            assert drain > 0
            assert grace > _prestop_sleep(c) + drain, f"{name}: {grace} <= preStop + drain {drain}"


def test_ray_container_outlives_the_draining_front(raycluster):
    """A driver dies with its node's raylet: the Ray container waits for the front's drain,
    then stops within the grace period."""
    for _, name, tpl, _ in _groups(raycluster):
        grace = tpl["spec"]["terminationGracePeriodSeconds"]
        ray = tpl["spec"]["containers"][0]
        (front,) = _fronts(tpl)
        front_stop = _prestop_sleep(front) + float(_env_value(front, "RISKACTORS_DRAIN_TIMEOUT_SECONDS"))
        wait = _prestop_sleep(ray)
        assert wait >= front_stop, f"{name}: Ray stops after {wait}s, the front may drain until {front_stop}s"
        command = " ".join(ray["lifecycle"]["preStop"]["exec"]["command"])
        stop_grace = re.search(r"ray stop --grace-period (\d+)", command)
        assert stop_grace, f"{name}: the Ray preStop should end with ray stop --grace-period N"
        assert wait + int(stop_grace.group(1)) < grace, name


def test_fronts_agree_on_the_deployment(raycluster):
    fronts = _all_fronts(raycluster)
    for var in DEPLOYMENT_ENV:
        values = {_env_value(c, var) for _, _, c in fronts}
        assert len(values) == 1, f"{var} differs between fronts: {values}"
    assert _env_value(fronts[0][2], "RISKACTORS_STORAGE_ROOT") == "/data/riskactors"


def test_wait_for_nodes_counts_the_head_and_every_worker(raycluster):
    nodes = sum(replicas for _, _, _, replicas in _groups(raycluster))
    for name, _, c in _all_fronts(raycluster):
        assert int(_env_value(c, "WAIT_FOR_RAY_NODES")) == nodes, name


def test_shared_storage_root_and_ray_tmp(docs, raycluster):
    pvc = _one(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    root = _env_value(_all_fronts(raycluster)[0][2], "RISKACTORS_STORAGE_ROOT")
    for _, name, tpl, _ in _groups(raycluster):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in tpl["spec"]["volumes"] if "persistentVolumeClaim" in v}
        empty = {v["name"] for v in tpl["spec"]["volumes"] if "emptyDir" in v}
        ray, front = tpl["spec"]["containers"][0], _fronts(tpl)[0]
        for c in (ray, front):  # actors (in the Ray container) write the journals
            assert claims.get(_mounts(c).get(root)) == pvc["metadata"]["name"], f"{name}/{c['name']}: {root}"
        # the driver uses the raylet's sockets and session directory under /tmp/ray
        assert _mounts(ray).get("/tmp/ray") == _mounts(front).get("/tmp/ray"), name
        assert _mounts(front).get("/tmp/ray") in empty, name


def test_secrets_and_ray_auth(raycluster):
    tokens = set()
    for _, name, tpl, _ in _groups(raycluster):
        for c in tpl["spec"]["containers"]:
            assert _env_value(c, "RAY_AUTH_MODE") == "token", f"{name}/{c['name']}"
            ref = _env(c)["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            tokens.add((ref["name"], ref["key"]))
        for c in _fronts(tpl):  # the API keys come from a Secret, never inline
            keys = _env(c)["RISKACTORS_API_KEYS"]
            assert "value" not in keys and "secretKeyRef" in keys["valueFrom"], name
    assert len(tokens) == 1, f"one Ray token everywhere, got {tokens}"


def test_service_targets_the_fronts(docs, raycluster):
    svc = _one(docs, "Service")
    (port,) = svc["spec"]["ports"]
    assert port["port"] == FRONT_PORT
    selector = svc["spec"]["selector"]
    assert selector and selector.get("ray.io/cluster") == raycluster["metadata"]["name"]
    for node_type, name, tpl, _ in _groups(raycluster):
        labels = _pod_labels(raycluster, node_type, name, tpl)
        matches = all(labels.get(k) == v for k, v in selector.items())
        assert matches == bool(_fronts(tpl)), f"{name}: selected={matches}"
        for c in _fronts(tpl):
            assert _container_port(c, port.get("targetPort", port["port"])) == FRONT_PORT, name


# --- the load-balancer examples ------------------------------------------------------------------


def _uncommented(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def test_haproxy_fronts_health_check_and_retries():
    text = _uncommented(HAPROXY.read_text())
    sections = re.split(r"^(?=\S)", text, flags=re.MULTILINE)
    backends = [s for s in sections if s.startswith("backend ")]
    assert len(backends) == 1
    backend = backends[0]
    servers = re.findall(r"^\s+server\s+\S+\s+(\S+:\d+)(.*)$", backend, re.MULTILINE)
    assert len(servers) >= 2, servers
    checked_by_default = re.search(r"^\s+default-server\b.*\bcheck\b", backend, re.MULTILINE)
    assert all(checked_by_default or re.search(r"\bcheck\b", opts) for _, opts in servers)
    assert re.search(r"^\s+option\s+httpchk\b", backend, re.MULTILINE)
    assert (re.search(r"^\s+http-check\s+send\b.*\buri\s+/ready\b", backend, re.MULTILINE)
            or re.search(r"^\s+option\s+httpchk\s+GET\s+/ready\b", backend, re.MULTILINE))
    assert re.search(r"^\s+http-check\s+expect\s+status\s+200\b", backend, re.MULTILINE)
    assert re.search(r"^\s+option\s+http-keep-alive\b", backend, re.MULTILINE)
    # connection failures only (the request was not sent): no L7 retry of POSTs
    for line in re.findall(r"^\s*retry-on\s+(.*)$", text, re.MULTILINE):
        assert line.split() == ["conn-failure"], line


def test_nginx_fronts_health_check_and_retries():
    raw = NGINX.read_text()
    text = _uncommented(raw)
    upstream = re.search(r"upstream\s+(\S+)\s*\{(.*?)\}", text, re.DOTALL)
    assert upstream
    servers = re.findall(r"^\s*server\s+(\S+:\d+)([^;]*);", upstream.group(2), re.MULTILINE)
    assert len(servers) >= 2, servers
    assert all("max_fails=" in opts and "fail_timeout=" in opts for _, opts in servers)  # passive check
    assert re.search(r"^\s*keepalive\s+\d+;", upstream.group(2), re.MULTILINE)
    assert f"proxy_pass http://{upstream.group(1)};" in text
    assert re.search(r"proxy_http_version\s+1\.1;", text)  # keep-alive to the upstreams
    assert re.search(r"proxy_set_header\s+Connection\s+\"\";", text)
    # the active /ready check (NGINX Plus, documented as such; commented out for open source)
    assert re.search(r"health_check\s+uri=/ready\b", raw)
    nexts = re.findall(r"proxy_next_upstream\s+([^;]*);", text)
    assert nexts, "proxy_next_upstream should be explicit"
    for value in nexts:
        assert "non_idempotent" not in value.split() and "http_503" not in value.split(), value
