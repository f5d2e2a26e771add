"""deploy/k8s: every manifest accepted by kubernetes-validate (strict, its newest
Kubernetes schema), and the manifests held to the image and the gateway's own code.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway import cli
from gateway.forward import Forwarder
from gateway.settings import SETTINGS
from tests.support import ROOT

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
WORKERS = "IAN_WORKERS"  # read by `serve` itself (gateway/cli.py), not a Settings field


def resources() -> dict[str, dict[str, Any]]:
    found = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


def container() -> dict[str, Any]:
    spec: dict[str, Any] = resources()["Deployment"]["spec"]["template"]["spec"]
    (first,) = spec["containers"]
    return {"pod": spec, **first}


def tool() -> str:
    """The kubernetes-validate command installed with this Python."""
    beside = Path(sys.executable).with_name("kubernetes-validate")
    found = str(beside) if beside.exists() else shutil.which("kubernetes-validate")
    assert found, "pip install kubernetes-validate (the test extra)"
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_kubernetes_validate_accepts(path: Path) -> None:
    version = kubernetes_validate.latest_version()
    done = subprocess.run([tool(), "--strict", "--kubernetes-version", version, str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout + done.stderr


def test_the_manifests_hold_every_kind_a_platform_expects() -> None:
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "Secret", "PersistentVolumeClaim"} <= set(resources())


def test_the_container_runs_the_images_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert container()["command"] == json.loads(cmd)
    (uid,) = re.findall(r"--uid (\d+)", dockerfile)
    assert container()["pod"]["securityContext"]["runAsUser"] == int(uid)


def test_probes_and_a_read_only_root() -> None:
    c = container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["pod"]["securityContext"]["runAsNonRoot"] is True
    mounts = {mount["mountPath"] for mount in c["volumeMounts"]}
    assert {"/var/lib/ian-gateway", "/tmp"} <= mounts  # the image's workdir, metrics files


def test_the_grace_period_covers_the_drain() -> None:
    """preStop sleep + uvicorn's graceful shutdown + the forwarder's drain."""
    c = container()
    (uvicorn_grace,) = re.findall(r"timeout_graceful_shutdown=(\d+)", inspect.getsource(cli))
    drain = inspect.signature(Forwarder.stop).parameters["drain_timeout"].default
    needed = c["lifecycle"]["preStop"]["sleep"]["seconds"] + int(uvicorn_grace) + drain
    assert needed <= c["pod"]["terminationGracePeriodSeconds"] <= needed + 10


def test_every_variable_is_the_gateways_and_credentials_come_from_the_secret() -> None:
    env = {item["name"]: item for item in container()["env"]}
    assert set(env) - {WORKERS} <= {setting.env for setting in SETTINGS}
    secret = resources()["Secret"]
    for name in ("IAN_CLIENT_ID", "IAN_CLIENT_SECRET", "IAN_ORDERS_API_KEYS"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]


def test_several_replicas_share_a_redis_spool() -> None:
    env = {item["name"]: item.get("value") for item in container()["env"]}
    found = resources()
    assert found["HorizontalPodAutoscaler"]["spec"]["minReplicas"] > 1
    assert env["IAN_SPOOL"].startswith("redis://")
