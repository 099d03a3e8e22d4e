"""docker-compose.yml, the Kubernetes manifests and the Dockerfile agree with the code.

Docker and a cluster are not available to the tests, so the files are parsed and checked
against what the services really do: their ports, health services, settings and grace.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shared import secrets as secret_settings
from shared.config import DEFAULT_PORTS
from shared.metrics import METRICS_PORT_OFFSET
from tests.deploy.manifests import (
    K8S,
    REPO,
    compose,
    dockerfile,
    dockerfile_env,
    image,
    interpolated_settings,
    k8s_files,
    k8s_object,
    k8s_objects,
    seconds,
    settings_read_by_code,
)
from tests.harness.suite import definition_of

SERVICES = list(DEFAULT_PORTS)
DEFAULT_GRACE_SECONDS = 10.0
# Who calls whom (docs/architecture.md#who-calls-whom): the callee is healthy before the caller
# starts.
CALLS = {"org": [], "migration": ["org"], "verification": ["org", "migration"], "pattern": ["org"]}
GOOD_CONDITIONS = {"service_healthy", "service_completed_successfully", "service_started"}


def _unknown(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith("SENSEI_")} - settings_read_by_code()


def _metrics_port(service: str) -> int:
    return DEFAULT_PORTS[service] + METRICS_PORT_OFFSET


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _health_services(service: str) -> set[str]:
    return {"", *definition_of(service).service_names}


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def _generated_secrets() -> dict[str, list[str]]:
    """Secrets the kustomization generates: name → env files."""
    return {g["name"]: g.get("envs", []) for g in _kustomization().get("secretGenerator", [])}


def _secret_keys_documented() -> set[str]:
    """The keys of the sensei-secrets Secret, as listed in secrets.env.example."""
    text = (K8S / "secrets.env.example").read_text()
    return {
        line.split("=", 1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#") and "=" in line
    }


def _secret_names_for(service: str) -> set[str]:
    return {s.name for s in secret_settings.SECRET_SETTINGS if service in s.services}


def _config_map() -> dict[str, str]:
    data: dict[str, str] = k8s_object("ConfigMap", "sensei-config")["data"]
    return data


# --- the scanner itself ---------------------------------------------------------------------


def test_settings_scan_finds_suite_wide_per_service_and_service_specific_names() -> None:
    names = settings_read_by_code()
    assert {
        "SENSEI_DATABASE_URL",
        "SENSEI_GRACE_SECONDS",
        "SENSEI_ORG_PORT",
        "SENSEI_PATTERN_ADDR",
        "SENSEI_VERIFICATION_DATABASE_URL",
        "SENSEI_MIGRATION_CONFIG_KEY",
        "SENSEI_ORG_KEY_ENCRYPTION_KEY",
        "SENSEI_PATTERN_WEAVIATE_URL",
        "SENSEI_VERIFICATION_KEYS_DIR",
        "SENSEI_ORG_METRICS_PORT",
    } <= names
    assert "SENSEI_ORG_WEAVIATE_URL" not in names


# --- docker-compose.yml ---------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_each_service_in_its_own_container_of_the_one_image(service: str) -> None:
    spec = compose()["services"][service]
    assert spec["image"] == image()
    command = " ".join(spec["command"])
    assert command.endswith(f"python -m services.{service}")


@pytest.mark.parametrize("service", SERVICES)
def test_compose_ports_are_the_default_ports_and_metrics_ports(service: str) -> None:
    spec = compose()["services"][service]
    env = spec["environment"]
    port, metrics = DEFAULT_PORTS[service], _metrics_port(service)
    assert env.get(f"SENSEI_{service.upper()}_PORT", str(port)) == str(port)
    assert env.get(f"SENSEI_{service.upper()}_METRICS_PORT", str(metrics)) == str(metrics)
    published = {entry.rsplit(":", 1)[-1] for entry in spec["ports"]}
    assert {str(port), str(metrics)} <= published


@pytest.mark.parametrize("service", SERVICES)
def test_compose_health_check_asks_the_services_grpc_health(service: str) -> None:
    check = compose()["services"][service]["healthcheck"]
    assert check["test"][:4] == ["CMD", "python", "-m", "shared.healthcheck"]
    assert check["test"][4] == f"127.0.0.1:{DEFAULT_PORTS[service]}"
    assert all(arg in _health_services(service) for arg in check["test"][5:])


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_starts_after_its_dependencies_are_ready(service: str) -> None:
    services = compose()["services"]
    depends = services[service]["depends_on"]
    assert isinstance(depends, dict), "depends_on needs conditions"
    for dependency, rule in depends.items():
        assert dependency in services
        assert rule["condition"] in GOOD_CONDITIONS
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["bootstrap"]["condition"] == "service_completed_successfully"
    for callee in CALLS[service]:
        assert depends[callee]["condition"] == "service_healthy"
    for other in SERVICES:
        address = services[service]["environment"].get(f"SENSEI_{other.upper()}_ADDR")
        assert address == f"{other}:{DEFAULT_PORTS[other]}"


def test_compose_services_that_call_others_get_the_bootstrap_service_key() -> None:
    services = compose()["services"]
    bootstrap = " ".join(services["bootstrap"]["command"])
    assert "python -m services.org bootstrap" in bootstrap
    assert "/var/lib/sensei/bootstrap/service.env" in bootstrap
    for service in ("migration", "verification", "pattern"):
        command = " ".join(services[service]["command"])
        assert ". /var/lib/sensei/bootstrap/service.env" in command
        assert any(
            v.startswith("bootstrap:/var/lib/sensei/bootstrap")
            for v in services[service]["volumes"]
        )


def test_compose_uses_only_settings_the_code_reads() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    names = interpolated_settings(text)
    for spec in compose()["services"].values():
        names.update(spec.get("environment", {}))
    assert _unknown(names) == set()


def test_compose_gives_services_longer_than_their_grace_to_stop() -> None:
    for service in SERVICES:
        spec = compose()["services"][service]
        grace = float(spec["environment"].get("SENSEI_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
        assert seconds(spec.get("stop_grace_period", "10s")) >= grace + 5, service


def test_compose_databases_postgres_with_pgvector_and_weaviate_without_vectorizer() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    match = re.fullmatch(r"pgvector/pgvector:pg(\d+)", postgres["image"])
    assert match and int(match.group(1)) >= 16
    assert "healthcheck" in postgres
    weaviate = services["weaviate"]
    match = re.fullmatch(
        r"cr\.weaviate\.io/semitechnologies/weaviate:(\d+)\.(\d+)\.(\d+)", weaviate["image"]
    )
    assert match and (int(match.group(1)), int(match.group(2))) >= (1, 32)
    assert weaviate["environment"]["DEFAULT_VECTORIZER_MODULE"] == "none"
    grpc_port = [p for p in weaviate["ports"] if p.endswith(":50051")]
    assert grpc_port and grpc_port[0].rsplit(":", 2)[-2] != "50051"
    pattern = services["pattern"]["environment"]
    assert pattern["SENSEI_PATTERN_WEAVIATE_URL"] == "http://weaviate:8080"
    assert pattern.get("SENSEI_PATTERN_WEAVIATE_GRPC_PORT", "50051") == "50051"


def test_compose_host_ports_do_not_collide() -> None:
    host_ports = [
        entry.rsplit(":", 2)[-2]
        for spec in compose()["services"].values()
        for entry in spec.get("ports", [])
    ]
    assert len(host_ports) == len(set(host_ports))


SECRET_NAMES = {s.name for s in secret_settings.SECRET_SETTINGS} | {
    secret_settings.COMPOSE_POSTGRES_PASSWORD
}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?+])([^}]*))?\}")


def test_compose_reads_every_secret_from_env_without_a_default() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = {}
    for name, operator, _ in INTERPOLATION.findall(text):
        if name in SECRET_NAMES:
            # `${X:?message}`: compose refuses to start without it; `:-`/`-` would be a default.
            assert operator == ":?", f"{name} must be required (${{{name}:?...}}), not {operator}"
            used[name] = True
    assert set(used) == SECRET_NAMES
    for spec in compose()["services"].values():
        for name, value in (spec.get("environment") or {}).items():
            if name in SECRET_NAMES or name.endswith(("_KEY", "_SECRET", "_PASSWORD")):
                assert str(value).startswith("${") and ":?" in str(value), (name, value)
            if name.endswith("DATABASE_URL"):
                assert "${POSTGRES_PASSWORD:?" in str(value), value


@pytest.mark.parametrize("service", SERVICES)
def test_compose_gives_each_service_the_secrets_it_checks_at_start(service: str) -> None:
    env = compose()["services"][service]["environment"]
    assert _secret_names_for(service) <= set(env)
    assert "SENSEI_ENV" not in env  # production: public values are refused


def test_compose_env_file_stays_out_of_git_and_the_image() -> None:
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    assert "*" in (REPO / ".dockerignore").read_text().splitlines()


# --- Kubernetes -----------------------------------------------------------------------------


def test_k8s_manifests_carry_no_secret_values() -> None:
    for obj in k8s_objects():
        assert obj["kind"] != "Secret", "secrets come from the secretGenerator's env file"
        for container in _pod_containers(obj):
            for entry in container.get("env", []):
                if entry["name"] in SECRET_NAMES or entry["name"] == "SENSEI_DATABASE_URL":
                    assert "value" not in entry, entry["name"]
                    assert "secretKeyRef" in entry["valueFrom"], entry["name"]
        if obj["kind"] == "ConfigMap":
            assert not set(obj["data"]) & SECRET_NAMES
    generated = _generated_secrets()
    assert generated == {"sensei-secrets": ["secrets.env"]}
    assert "deploy/k8s/secrets.env" in (REPO / ".gitignore").read_text().splitlines()


def test_k8s_secret_carries_what_every_service_checks_at_start() -> None:
    documented = _secret_keys_documented()
    for service in SERVICES:
        assert _secret_names_for(service) <= documented, service
        container = _container(k8s_object("Deployment", service))
        refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert refs == ["sensei-secrets"], service
        assert "SENSEI_ENV" not in {e["name"] for e in container.get("env", [])}
    assert "SENSEI_ENV" not in _config_map()
    assert {"SENSEI_DATABASE_URL", "SENSEI_SERVICE_API_KEY"} <= documented
    assert not set(_secret_keys_documented()) & set(_config_map())


def test_kustomization_lists_every_manifest_of_the_stack() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    top_level = {path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml"}
    assert set(kustomization["resources"]) == top_level
    assert {i["name"] for i in kustomization["images"]} == {image().split(":")[0]}


def test_k8s_objects_live_in_the_one_namespace() -> None:
    namespace = k8s_object("Namespace", "sensei")["metadata"]["name"]
    for obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment_runs_the_service_of_the_one_image(service: str) -> None:
    container = _container(k8s_object("Deployment", service))
    assert container["image"] == image()
    assert container["command"] == ["python", "-m", f"services.{service}"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": DEFAULT_PORTS[service], "metrics": _metrics_port(service)}
    annotations = k8s_object("Deployment", service)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(_metrics_port(service))


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_probes_are_native_grpc_health_checks(service: str) -> None:
    container = _container(k8s_object("Deployment", service))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc_probe = container[probe]["grpc"]
        assert grpc_probe["port"] == DEFAULT_PORTS[service], probe
        assert grpc_probe.get("service", "") in _health_services(service), probe
    # Readiness follows the API itself; it turns NOT_SERVING first when the pod drains.
    assert container["readinessProbe"]["grpc"]["service"] in definition_of(service).service_names


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_termination_grace_covers_the_server_grace(service: str) -> None:
    pod = k8s_object("Deployment", service)["spec"]["template"]["spec"]
    container = _container(k8s_object("Deployment", service))
    grace = float(_config_map().get("SENSEI_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
    pause = 0.0
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "exec" in pre_stop:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep"
        pause = float(command[1])
    elif "sleep" in pre_stop:
        pause = float(pre_stop["sleep"]["seconds"])
    termination = pod["terminationGracePeriodSeconds"]
    assert termination >= grace + pause + 5
    liveness = container["livenessProbe"]
    # A draining pod reports NOT_SERVING; the liveness probe must not kill it meanwhile.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= termination


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_pods_run_as_non_root_with_resource_requests(service: str) -> None:
    pod = k8s_object("Deployment", service)["spec"]["template"]["spec"]
    container = _container(k8s_object("Deployment", service))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_routes_grpc_and_metrics_to_the_pods(service: str) -> None:
    deployment = k8s_object("Deployment", service)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spec = k8s_object("Service", service)["spec"]
    assert spec["selector"].items() <= labels.items()
    container_ports = {p["name"] for p in _container(deployment)["ports"]}
    ports = {p["name"]: p for p in spec["ports"]}
    assert ports["grpc"]["port"] == DEFAULT_PORTS[service]
    assert ports["metrics"]["port"] == _metrics_port(service)
    assert {p["targetPort"] for p in spec["ports"]} <= container_ports


def test_k8s_config_points_the_services_at_each_other() -> None:
    data = _config_map()
    for service in SERVICES:
        upper = service.upper()
        assert data[f"SENSEI_{upper}_ADDR"] == f"{service}:{DEFAULT_PORTS[service]}"
        assert data.get(f"SENSEI_{upper}_PORT", str(DEFAULT_PORTS[service])) == str(
            DEFAULT_PORTS[service]
        )
        assert data.get(f"SENSEI_{upper}_METRICS_PORT", str(_metrics_port(service))) == str(
            _metrics_port(service)
        )
        assert data[f"SENSEI_{upper}_HOST"] == "0.0.0.0"


def test_k8s_uses_only_settings_the_code_reads() -> None:
    names: set[str] = set()
    for obj in k8s_objects():
        if obj["kind"] == "ConfigMap":
            names.update(obj["data"])
        for container in _pod_containers(obj):
            names.update(entry["name"] for entry in container.get("env", []))
    names.update(_secret_keys_documented())
    assert _unknown(names) == set()


def test_k8s_env_sources_exist_and_every_workload_runs_the_one_image() -> None:
    defined = {(o["kind"], o["metadata"]["name"]) for o in k8s_objects()}
    defined |= {("Secret", name) for name in _generated_secrets()}
    workloads = [o for o in k8s_objects() if _pod_containers(o)]
    assert {o["kind"] for o in workloads} == {"Deployment", "Job"}
    for obj in workloads:
        for container in _pod_containers(obj):
            assert container["image"] == image()
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in defined
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in defined
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ("Secret", ref["name"]) in defined


def test_k8s_bootstrap_job_runs_the_org_bootstrap_command() -> None:
    job = k8s_object("Job", "sensei-bootstrap")
    (container,) = _pod_containers(job)
    assert container["command"][:4] == ["python", "-m", "services.org", "bootstrap"]
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_k8s_catalog_job_loads_the_starter_patterns_as_the_service_account() -> None:
    job = k8s_object("Job", "sensei-pattern-catalog")
    (container,) = _pod_containers(job)
    assert container["command"][:3] == ["python", "-m", "services.pattern.load_catalog"]
    assert "SENSEI_SERVICE_API_KEY" in {entry["name"] for entry in container["env"]}


def test_compose_loads_the_starter_patterns_once_the_pattern_service_serves() -> None:
    loader = compose()["services"]["pattern-catalog"]
    assert "services.pattern.load_catalog" in " ".join(loader["command"])
    assert loader["depends_on"]["pattern"]["condition"] == "service_healthy"
    assert loader["restart"] == "no"


def test_k8s_manifests_are_all_parsed() -> None:
    assert len(k8s_files()) >= 7


def _pod_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] not in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        return []
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_slim_image_without_healthcheck() -> None:
    text = dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)
    assert [stage for _, stage in stages] == ["builder", "runtime"]
    assert all(base == "${PYTHON_IMAGE}" for base, _ in stages)
    assert "HEALTHCHECK" not in text.replace("No HEALTHCHECK", "")
    users = re.findall(r"^USER (\d+)(?::(\d+))?$", text, re.M)
    assert users and users[-1][0] != "0"
    k8s_user = k8s_object("Deployment", "org")["spec"]["template"]["spec"]["securityContext"]
    assert int(users[-1][0]) == k8s_user["runAsUser"]
    for path in ("shared/", "services/"):
        assert f"COPY {path} /app/{path}" in text
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert "gen_protos.sh" in text  # sensei/ is generated from protos/ in the image


def test_dockerfile_exposes_the_ports_and_sets_only_known_settings() -> None:
    text = dockerfile()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    for service in SERVICES:
        assert {DEFAULT_PORTS[service], _metrics_port(service)} <= exposed
    env = dockerfile_env()
    assert _unknown(set(env)) == set()
    for service in SERVICES:
        assert env[f"SENSEI_{service.upper()}_HOST"] == "0.0.0.0"


def test_dockerignore_keeps_the_local_venv_and_state_out() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    for needed in ("pyproject.toml", "protos/", "shared/", "services/", "scripts/gen_protos.sh"):
        assert f"!{needed}" in lines
