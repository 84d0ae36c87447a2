"""docker-compose.yml and the Dockerfile: they parse, and everything they point at exists and agrees
with the configs in deploy/ and dashboards/provisioning/.

Which checks run (no Docker engine is available on these machines, so nothing is started):
- `docker-compose config` (Debian's docker-compose 1.29.2, which parses and validates the file
  against the Compose schema without an engine) when that binary or the `docker compose` plugin is
  installed; skipped otherwise. On the machine this was written on, docker-compose 1.29.2 ran.
- Always: the file read with PyYAML and its structure checked here: services, pinned images, build
  context, mounted paths, ports, profiles, and the host names the mounted configs expect.
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
SERVICES = {"kafka", "topics", "worker", "simulator", "prometheus", "alertmanager", "grafana"}


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


def test_compose_config_validates() -> None:
    cli = compose_cli()
    if cli is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed; ./dev test installs Debian's docker-compose")
        pytest.skip("neither docker-compose nor the docker compose plugin is installed; the PyYAML checks ran")
    base = [*cli, "-f", str(COMPOSE)]
    done = subprocess.run([*base, "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([*base, "config", "--services"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    # docker-compose 1.29 lists profiled services too; the `demo` profile is checked with PyYAML below.
    assert set(listed.stdout.split()) == SERVICES, listed.stderr


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
    assert built == {"topics", "worker", "simulator"}
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
    for name in ("topics", "worker", "simulator"):
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
    assert scrape["cidwatch"] == ["worker:6066"] and "6066:6066" in services["worker"]["ports"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "9093:9093" in services["alertmanager"]["ports"]
    datasource = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"]
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/cidwatch.yaml").read_text())
    grafana_targets = {t: s for s, t in bind_sources(services["grafana"])}
    assert grafana_targets[provider["providers"][0]["options"]["path"]] == ROOT / "dashboards" / "generated"


def test_dockerfile_builds_the_package(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), copied
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "cidwatch", "streams", "rules", "dashboards"):
        assert needed not in ignored
    assert compose["services"]["worker"]["build"] == "."
