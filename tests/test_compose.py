"""docker-compose.yml and the Dockerfile: they parse, and everything they point at exists and agrees
with the configs in deploy/ and dashboards/provisioning/.

Which checks run (no Docker engine is available on these machines, so nothing is started):
- `docker-compose config` (Debian's docker-compose 1.29.2, which parses and validates the file
  against the Compose schema and interpolates the variables without an engine) when that binary or the
  `docker compose` plugin is installed (./dev test installs it; missing, the test fails). Here,
  docker-compose 1.29.2 ran. It holds the hardened defaults as Compose resolves them: required secrets,
  ports bound to 127.0.0.1 unless CIDWATCH_PUBLISH_ADDRESS opens them.
- Always: the file read with PyYAML and its structure checked here: services, pinned images, build
  context, mounted paths, ports, profiles, healthchecks and start order, and the host names the mounted
  configs expect.
`promtool check config deploy/prometheus.yml` is in tests/test_deploy_configs.py, not repeated here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"kafka", "topics", "worker", "api", "simulator", "prometheus", "alertmanager", "grafana"}
# Empty in .env.example: compose refuses to start.
REQUIRED = ("GRAFANA_ADMIN_PASSWORD", "CIDWATCH_API_TOKEN", "CIDWATCH_HASH_KEY")
PUBLISH = "${CIDWATCH_PUBLISH_ADDRESS:-127.0.0.1}:"
ONE_SHOTS = {"topics", "simulator"}  # built from the image, whose HEALTHCHECK probes a worker


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_cli() -> list[str] | None:
    """docker-compose v1, or the v2 plugin if `docker compose` answers; None when neither exists."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def bind_sources(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount (those starting with . or /)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((ROOT / source).resolve(), target))
    return mounts


# --- `docker-compose config`, when a Compose implementation is installed ---------------------------


def env_file(path: Path, **values: str) -> Path:
    """.env.example with these values filled in, as a user's .env."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.lstrip("# ").split("=", 1)[0]
        lines.append(f"{name}={values.pop(name)}" if name in values and "=" in line else line)
    lines += [f"{name}={value}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_run(cli: list[str], env: Path, *args: str) -> subprocess.CompletedProcess:
    """docker-compose with only PATH from the environment: the env file is all the variables it sees."""
    return subprocess.run([*cli, "--env-file", str(env), "-f", str(COMPOSE), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ["PATH"]})


@pytest.fixture
def cli() -> list[str]:
    found = compose_cli()
    if found is None:  # ./dev test installs it: a missing tool is a failure, never a skip
        pytest.fail("neither docker-compose nor the docker compose plugin is installed; ./dev test installs "
                    "Debian's docker-compose")
    return found


def test_compose_config_validates(cli: list[str], tmp_path: Path) -> None:
    env = env_file(tmp_path / ".env", GRAFANA_ADMIN_PASSWORD="a-long-password", CIDWATCH_API_TOKEN="a-token",
                   CIDWATCH_HASH_KEY="a-hash-key")
    done = compose_run(cli, env, "config", "-q")
    assert done.returncode == 0, done.stderr
    listed = compose_run(cli, env, "config", "--services")
    # docker-compose 1.29 lists profiled services too; the `demo` profile is checked with PyYAML below.
    assert set(listed.stdout.split()) == SERVICES, listed.stderr


@pytest.mark.parametrize("missing", REQUIRED)
def test_compose_refuses_to_start_without_its_secrets(cli: list[str], tmp_path: Path, missing: str) -> None:
    """The secrets are required, never defaulted: .env.example as shipped does not start the stack."""
    given = {name: "set" for name in REQUIRED if name != missing}
    done = compose_run(cli, env_file(tmp_path / ".env", **given), "config", "-q")
    assert done.returncode != 0 and missing in done.stderr and ".env.example" in done.stderr


def published(cli: list[str], env: Path) -> dict[str, list[str]]:
    """Each service's published ports as Compose resolves them ("HOST_IP:HOST:CONTAINER/tcp")."""
    done = compose_run(cli, env, "config")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    return {name: [str(port) for port in service.get("ports", [])] for name, service in services.items()}


def test_ports_are_bound_to_loopback_unless_opened(cli: list[str], tmp_path: Path) -> None:
    secrets = {"GRAFANA_ADMIN_PASSWORD": "p", "CIDWATCH_API_TOKEN": "t", "CIDWATCH_HASH_KEY": "k"}
    default = published(cli, env_file(tmp_path / "default.env", **secrets))
    assert {name for name, ports in default.items() if ports} == {"kafka", "worker", "api", "prometheus",
                                                                   "alertmanager", "grafana"}
    for name, ports in default.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), (name, port)
    opened = published(cli, env_file(tmp_path / "open.env", CIDWATCH_PUBLISH_ADDRESS="0.0.0.0", **secrets))
    assert opened == {name: [port.replace("127.0.0.1:", "0.0.0.0:", 1) for port in ports]
                      for name, ports in default.items()}


# --- structure, read with PyYAML ---------------------------------------------------------------------


def test_services_images_and_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", services["kafka"]["image"])
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        assert "." not in image.split("/")[0], f"{name}: no registry host in the image name"
    built = {name for name, s in services.items() if "build" in s}
    assert built == {"topics", "worker", "api", "simulator"}
    assert {services[n]["image"] for n in built} == {"cidwatch:local"}
    assert services["simulator"]["profiles"] == ["demo"]
    assert [n for n, s in services.items() if "profiles" in s] == ["simulator"]


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])  # a base64url UUID, as kafka-storage wants
    assert "healthcheck" in compose["services"]["kafka"]


def test_cidwatch_services_share_the_broker_and_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("topics", "worker", "api", "simulator"):
        assert services[name]["environment"]["CIDWATCH_BROKER"] == "kafka://kafka:9092", name
    assert services["topics"]["command"][:3] == ["cidwatch", "topics", "create"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    worker = services["worker"]
    assert worker["command"] == ["cidwatch", "worker", "--web-host", "0.0.0.0",
                                 "--alertmanager-url", "http://alertmanager:9093"]
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["simulator"]["command"][:2] == ["cidwatch", "simulate"]


def test_mounted_paths_exist(compose: dict[str, Any]) -> None:
    mounts = {name: bind_sources(service) for name, service in compose["services"].items()}
    for name, pairs in mounts.items():
        for source, _ in pairs:
            assert source.exists(), f"{name}: {source} does not exist"
            assert ROOT in source.parents, f"{name}: {source} is outside the repository"
    targets = {name: {t: s for s, t in pairs} for name, pairs in mounts.items()}
    assert targets["prometheus"]["/etc/prometheus/prometheus.yml"] == ROOT / "deploy" / "prometheus.yml"
    assert targets["alertmanager"]["/etc/alertmanager/alertmanager.yml"] == ROOT / "deploy" / "alertmanager.yml"
    assert targets["grafana"]["/etc/grafana/provisioning"] == ROOT / "dashboards" / "provisioning"
    assert sorted(p.name for p in (ROOT / "dashboards" / "generated").glob("*.json"))  # dashboards to serve
    named = {v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])
             if not v.startswith((".", "/"))}
    assert named == set(compose["volumes"])


def test_mounted_configs_agree_with_the_services(compose: dict[str, Any]) -> None:
    """The host names and paths inside the mounted configs are the compose services and mounts."""
    services = compose["services"]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    mounted = {t for _, t in bind_sources(services["prometheus"])}
    for rule_file in prometheus["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounted  # relative to prometheus.yml
    scrape = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert scrape["cidwatch"] == ["worker:6066"] and services["worker"]["ports"] == [f"{PUBLISH}6066:6066"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert services["alertmanager"]["ports"] == [f"{PUBLISH}9093:9093"]
    datasource = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert services["prometheus"]["ports"] == [f"{PUBLISH}9090:9090"]
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/cidwatch.yaml").read_text())
    grafana_targets = {t: s for s, t in bind_sources(services["grafana"])}
    assert grafana_targets[provider["providers"][0]["options"]["path"]] == ROOT / "dashboards" / "generated"


def test_dockerfile_builds_the_package(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, re.M)
    sources = [source for line in copied for source in line.split()]
    for source in sources:
        assert (ROOT / source).exists(), source
    # LICENSE: pyproject's license-files; docs/runbooks: cidwatch/runbooks links to it (package data).
    assert {"pyproject.toml", "README.md", "LICENSE", "docs/runbooks", "cidwatch", "streams", "rules",
            "dashboards"} <= set(sources)
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "LICENSE", "cidwatch", "streams", "rules", "dashboards"):
        assert needed not in ignored
    assert "docs" not in ignored and "!docs/runbooks" in ignored
    assert compose["services"]["worker"]["build"] == "."


def dockerfile_healthcheck() -> str:
    """The shell command of the Dockerfile's HEALTHCHECK (tests/test_worker_web.py runs it on a worker)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (command,) = re.findall(r"^HEALTHCHECK .*? CMD (.+)$", text, re.M)
    return command


def test_the_image_and_compose_check_health(compose: dict[str, Any]) -> None:
    assert "/readyz" in dockerfile_healthcheck()
    services = compose["services"]
    for name in ONE_SHOTS:
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert "healthcheck" not in services["worker"]  # the image's: the worker's /readyz
    assert "8066/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    for name in ("kafka", "prometheus", "alertmanager", "grafana"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for other, how in depends.items():
            assert how["condition"] in ("service_healthy", "service_completed_successfully"), (name, other)
            if how["condition"] == "service_healthy":
                assert other == "worker" or "test" in services[other]["healthcheck"], (name, other)
            else:
                assert other in ONE_SHOTS, (name, other)
    assert services["simulator"]["depends_on"]["worker"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_the_hardened_defaults(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith(PUBLISH), f"{name}: {port} must bind to CIDWATCH_PUBLISH_ADDRESS (127.0.0.1)"
    assert "--web.enable-lifecycle" not in services["prometheus"]["command"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert services["api"]["environment"]["CIDWATCH_API_TOKEN"].startswith("${CIDWATCH_API_TOKEN:?")
    assert services["worker"]["environment"]["CIDWATCH_HASH_KEY"].startswith("${CIDWATCH_HASH_KEY:?")
    example = ENV_EXAMPLE.read_text()
    for name in REQUIRED:
        assert re.search(rf"^{name}=$", example, re.M), f".env.example lists {name}, empty"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_kafka_keeps_its_data_and_the_worker_keeps_none(compose: dict[str, Any]) -> None:
    """The worker's state is its changelog in Kafka: a worker volume could outlive the cluster's data."""
    kafka, worker = compose["services"]["kafka"], compose["services"]["worker"]
    assert f"kafka-data:{kafka['environment']['KAFKA_LOG_DIRS']}" in kafka["volumes"]
    assert "volumes" not in worker
    store = worker["environment"].get("CIDWATCH_STORE", "memory")
    assert store == "memory" and "--store" not in worker["command"]  # rebuilt from the changelog at start


def test_alertmanager_secrets_are_mounted(compose: dict[str, Any]) -> None:
    targets = {t: s for s, t in bind_sources(compose["services"]["alertmanager"])}
    assert targets["/etc/alertmanager/secrets"] == ROOT / "deploy" / "secrets"
    config = (ROOT / "deploy" / "alertmanager.yml").read_text()
    files = re.findall(r"_file:\s*(\S+)", config)
    assert files and all(f.startswith("/etc/alertmanager/secrets/") for f in files)
    readme = (ROOT / "deploy" / "secrets" / "README.md").read_text()
    for path in files:
        assert f"`{Path(path).name}`" in readme, path


def test_runbook_links_point_at_the_api_that_serves_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("worker", "api"):
        url = services[name]["environment"]["CIDWATCH_RUNBOOK_BASE_URL"]
        assert url == "${CIDWATCH_RUNBOOK_BASE_URL:-http://localhost:8066}", name
    assert services["api"]["ports"] == [f"{PUBLISH}8066:8066"]
    assert "--port" in services["api"]["command"] and "8066" in services["api"]["command"]
