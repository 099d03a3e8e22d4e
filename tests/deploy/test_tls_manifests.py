"""The TLS variants of the deployment (docker-compose.tls.yml, deploy/k8s-tls/) agree with
the code: settings it reads, files where the settings point, probes that speak TLS."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from shared import tls
from shared.config import DEFAULT_PORTS
from tests.deploy.manifests import REPO, settings_read_by_code
from tests.harness.suite import definition_of

SERVICES = list(DEFAULT_PORTS)
K8S_TLS = REPO / "deploy" / "k8s-tls"
FILE_SETTINGS = (tls.CERT_FILE, tls.KEY_FILE, tls.CA_FILE)


def _load(path: str) -> Any:
    return yaml.safe_load((REPO / path).read_text())


def _mounted(path: str, mounts: list[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(mount) for mount in mounts)


@pytest.mark.parametrize("service", SERVICES)
def test_compose_tls_gives_every_service_mutual_tls_with_mounted_files(service: str) -> None:
    spec = _load("docker-compose.tls.yml")["services"][service]
    env = spec["environment"]
    assert set(env) <= settings_read_by_code()
    assert env[tls.CLIENT_AUTH] == "require"
    targets = [volume.split(":")[1] for volume in spec["volumes"]]
    for name in FILE_SETTINGS:
        assert _mounted(env[name], targets), name
    # The base file's health check reads the same container environment.
    base = _load("docker-compose.yml")["services"][service]["healthcheck"]["test"]
    assert base[1:4] == ["python", "-m", "shared.healthcheck"]


def test_k8s_tls_patches_every_deployment_and_the_config() -> None:
    kustomization = _load("deploy/k8s-tls/kustomization.yaml")
    assert kustomization["resources"] == ["../k8s"]
    patches = {p["path"] for p in kustomization["patches"] if "path" in p}
    assert patches == {"config.yaml", *(f"{s}.yaml" for s in SERVICES)}
    config = _load("deploy/k8s-tls/config.yaml")
    assert (config["kind"], config["metadata"]["name"]) == ("ConfigMap", "sensei-config")
    assert set(config["data"]) <= settings_read_by_code()
    (secret,) = kustomization["secretGenerator"]
    keys = {entry.split("=", 1)[0] for entry in secret["files"]}
    assert {PurePosixPath(config["data"][name]).name for name in FILE_SETTINGS} == keys


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_tls_probes_run_the_healthcheck_and_the_secret_is_mounted(service: str) -> None:
    patch = _load(f"deploy/k8s-tls/{service}.yaml")
    pod = patch["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == service
    address = f"127.0.0.1:{DEFAULT_PORTS[service]}"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] is None, probe  # strategic merge: removes the native one
        command = container[probe]["exec"]["command"]
        assert command[:4] == ["python", "-m", "shared.healthcheck", address], probe
    readiness = container["readinessProbe"]["exec"]["command"][4]
    assert readiness in definition_of(service).service_names
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    config = _load("deploy/k8s-tls/config.yaml")["data"]
    for name in FILE_SETTINGS:
        assert _mounted(config[name], mounts), name
    (volume,) = pod["volumes"]
    assert volume["secret"]["secretName"] == "sensei-tls"


def test_k8s_tls_services_do_not_announce_cleartext_http2() -> None:
    kustomization = _load("deploy/k8s-tls/kustomization.yaml")
    patches = [p.get("patch", "") for p in kustomization["patches"] if "target" in p]
    assert any("/spec/ports/0/appProtocol" in p and "https" in p for p in patches)
    for service in ("org", "migration", "verification", "pattern"):
        base = yaml.safe_load_all((REPO / "deploy" / "k8s" / f"{service}.yaml").read_text())
        ports = next(d for d in base if d and d.get("kind") == "Service")["spec"]["ports"]
        assert ports[0]["name"] == "grpc"  # the port the patch rewrites
