"""The wheel runs without the repository: built from a copy of the sources, installed into a new venv,
and run from a folder outside the checkout (`rules list`, `replay --example`, `dashboards build`, and on
the session's broker `worker`, `produce` and `api`, whose runbook links open).

To stay fast and offline, the wheel is built without build isolation (the dev venv's setuptools, which
must be one pyproject.toml's `build-system` accepts), and the new venv borrows the dev venv's
installed dependencies through a path entry, added after the wheel is installed without them;
`pip check` then holds the wheel's declared requirements satisfied. The dev venv's editable install
of cidwatch is never active there (its .pth hook is not run for a path entry), and each test checks
that cidwatch's packages are imported from the new venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from stream_fixtures import write_jsonl
from stream_harness import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What a build reads; the rest of the checkout (tests, local state) stays out of the copy.
NOT_BUILT = shutil.ignore_patterns(".git", ".venv", ".cache", ".ci", "out", "build", "*.egg-info", "__pycache__",
                                   ".pytest_cache", ".ruff_cache", ".hypothesis", "tests", "bench")


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    cwd: Path  # outside the checkout

    @property
    def cidwatch(self) -> str:
        return str(self.venv / "bin" / "cidwatch")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CIDWATCH_", "VIRTUAL_ENV"))}
        env.update(PATH=f"{self.venv / 'bin'}:{env.get('PATH', '')}", PYTHONUNBUFFERED="1", **extra)
        return env

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run([self.cidwatch, *args], cwd=self.cwd, env=self.env(**env), capture_output=True,
                              text=True, timeout=180)
        if check:
            assert done.returncode == 0, done.stderr[-3000:]
        return done


def test_the_build_requirement_reads_the_spdx_license() -> None:
    """PEP 639's `license = "SPDX"` string and `license-files` are read from setuptools 77 on."""
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    setuptools = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    assert "76.1" not in setuptools.specifier and "77.0.0" in setuptools.specifier
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("package")
    assert ROOT not in base.parents
    from importlib.metadata import version

    build_req = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    assert SpecifierSet(str(build_req.specifier)).contains(version("setuptools")), \
        "the dev venv's setuptools cannot build this project: run ./dev test (it installs .[dev])"
    source = base / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_BUILT)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(base / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (base / "dist").glob("cidwatch-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # Only now the dependencies: the dev venv's site-packages as a plain path entry, after the new venv's own.
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-dev-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    checked = subprocess.run([*pip, "--python", str(python), "check"], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    cwd = base / "elsewhere"
    cwd.mkdir()
    return Installed(venv, wheel, cwd)


def test_the_wheel_carries_the_packs_runbooks_examples_dashboards_and_license(installed: Installed) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for pack in (ROOT / "rules" / "packs").glob("*.yaml"):
        assert f"rules/packs/{pack.name}" in names
    for runbook in (ROOT / "docs" / "runbooks").glob("*.md"):
        assert f"cidwatch/runbooks/{runbook.name}" in names
    for dashboard in (ROOT / "dashboards" / "generated").glob("*.json"):
        assert f"dashboards/generated/{dashboard.name}" in names
    assert {"cidwatch/examples/cdrs.jsonl", "cidwatch/examples/inventory.yaml",
            "rules/packs/tables/spoof_countries.yaml", "cidwatch-0.1.0.dist-info/licenses/LICENSE"} <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_it_runs_from_the_venv_not_the_checkout(installed: Installed) -> None:
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import json, cidwatch, rules, streams, dashboards;"
         "print(json.dumps([m.__file__ for m in (cidwatch, rules, streams, dashboards)]))"],
        cwd=installed.cwd, env=installed.env(), capture_output=True, text=True, check=True)
    for path in json.loads(where.stdout):
        assert Path(path).is_relative_to(installed.venv), path
    assert installed.run("--version").stdout.strip() == f"cidwatch {PYPROJECT['project']['version']}"


def test_rules_list_and_the_shipped_example(installed: Installed, tmp_path: Path) -> None:
    listing = installed.run("rules", "list").stdout
    assert "fr.daily_limit" in listing and "source:" in listing
    replayed = installed.run("replay", "--example", "--out", str(tmp_path / "installed")).stdout
    example = replayed.splitlines()[0]
    assert example.startswith("example: ") and str(installed.venv) in example  # the file is printed, and shipped
    # The same decisions as the checkout's replay of examples/ (the README's walk-through).
    subprocess.run([sys.executable, "-m", "cidwatch", "replay", "examples/cdrs.jsonl", "--inventory",
                    "examples/inventory.yaml", "--out", str(tmp_path / "checkout")], cwd=ROOT, check=True,
                   capture_output=True, timeout=180)
    got = (tmp_path / "installed" / "decisions.jsonl").read_text()
    assert got and got == (tmp_path / "checkout" / "decisions.jsonl").read_text()


def test_dashboards_build_writes_where_it_is_told_only(installed: Installed, tmp_path: Path) -> None:
    site = next(installed.venv.glob("lib/python*/site-packages"))
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*.json")}
    refused = installed.run("dashboards", "build", check=False)
    assert refused.returncode == 2 and "--out" in refused.stderr
    installed.run("dashboards", "build", "--out", str(tmp_path / "dash"))
    built = {p.name: p.read_text() for p in (tmp_path / "dash").iterdir()}
    assert built == {p.name: p.read_text() for p in (ROOT / "dashboards" / "generated").glob("*.json")}
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*.json")} == before  # site-packages untouched


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.kafka
def test_worker_and_api_run_from_the_wheel(installed: Installed, kafka_bootstrap, topic_prefix, tmp_path):
    broker = {"CIDWATCH_BROKER": f"kafka://{kafka_bootstrap}", "CIDWATCH_TOPIC_PREFIX": topic_prefix}
    installed.run("topics", "create", "--partitions", "2", **broker)
    web, api_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    log = (tmp_path / "processes.log").open("w")
    processes = [
        subprocess.Popen([installed.cidwatch, "worker", "--partitions", "2", "--workdir", str(tmp_path / "w"),
                          "--web-port", str(web)], cwd=installed.cwd,
                         env=installed.env(**broker, CIDWATCH_HASH_KEY="package-test-key"), stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([installed.cidwatch, "api", "--port", str(api_port), "--runbook-base-url", api_url],
                         cwd=installed.cwd, env=installed.env(**broker), stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{web}/readyz")[0] == 200, 90, "worker never ready")
        record = {"call_id": "pkg-1", "started_at": "2026-03-29T10:00:00Z", "caller_id": "+448701234567",
                  "destination": "+442079460000"}
        installed.run("produce", str(write_jsonl(tmp_path / "one.jsonl", [record])), **broker)
        def blocked() -> list[dict] | None:
            status, body = http_get(f"{api_url}/v1/check?cli=%2B448701234567")
            return json.loads(body)["blocks"] if status == 200 and not json.loads(body)["allowed"] else None

        (block,) = wait_for(blocked, 90, "the API never answered the worker's block")
        assert block["rule"] == "uk.cli_not_permitted"
        assert block["runbook"] == f"{api_url}/docs/runbooks/uk.cli_not_permitted.md"
        status, text = http_get(block["runbook"])  # the link an on-call clicks opens the shipped runbook
        assert status == 200 and text == (ROOT / "docs" / "runbooks" / "uk.cli_not_permitted.md").read_text()
        assert http_get(f"{api_url}/docs/runbooks/no.such_rule.md")[0] == 404
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
