"""The Dockerfile, parsed: a target per service, non-root, runtime requirements only, HEALTHCHECK, SIGTERM."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"booking": 8001, "notifier": 8002, "audit": 8003}
PACKAGES = ["contracts", "services/runtime", "services/booking", "services/notifier", "services/audit"]


def stages() -> dict[str, list[dict[str, Any]]]:
    """Instructions per named stage, each stage starting with its FROM."""
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            current = [instruction]
            match = re.search(r"\bAS\s+(\S+)\s*$", instruction["value"], re.IGNORECASE)
            out[match.group(1) if match else f"stage{len(out)}"] = current
        elif current:
            current.append(instruction)
    return out


def chain(name: str) -> list[dict[str, Any]]:
    """A stage's instructions with those of the stages it is built FROM, base first."""
    all_stages = stages()
    instructions = all_stages[name]
    parent = instructions[0]["value"].split()[0]
    return (chain(parent) if parent in all_stages else [instructions[0]]) + instructions[1:]


def last(instructions: list[dict[str, Any]], kind: str) -> str | None:
    values = [i["value"] for i in instructions if i["instruction"] == kind]
    return values[-1] if values else None


def test_there_is_a_target_per_service() -> None:
    assert set(SERVICES) <= set(stages())


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_image_runs_as_a_non_root_user(service: str) -> None:
    user = last(chain(service), "USER")
    assert user is not None
    assert user.split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_image_has_an_exec_form_healthcheck_probing_its_port(service: str) -> None:
    instructions = chain(service)
    healthcheck = last(instructions, "HEALTHCHECK")
    assert healthcheck is not None and "CMD" in healthcheck
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "/opt/healthcheck.py"]
    assert "--start-period" in healthcheck
    assert last(instructions, "ENV") is not None
    envs = " ".join(i["value"] for i in instructions if i["instruction"] == "ENV")
    assert f"HTTP_PORT={SERVICES[service]}" in envs
    assert "HTTP_HOST=0.0.0.0" in envs
    assert last(instructions, "EXPOSE") == str(SERVICES[service])


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_stops_on_sigterm_and_runs_its_console_script_as_pid_1(service: str) -> None:
    instructions = chain(service)
    assert last(instructions, "STOPSIGNAL") == "SIGTERM"
    entrypoint = last(instructions, "ENTRYPOINT")
    assert entrypoint is not None
    assert json.loads(entrypoint) == [service]  # exec form: the signal reaches uvicorn, not a shell
    assert json.loads(last(instructions, "CMD") or "null") == ["serve"]


def test_base_images_are_a_pinned_slim_python_311() -> None:
    structure = DockerfileParser(path=str(ROOT / "Dockerfile")).structure
    global_args = [
        i["value"] for i in structure[: next(n for n, i in enumerate(structure) if i["instruction"] == "FROM")]
    ]
    default = dict(arg.split("=", 1) for arg in global_args if "=" in arg).get("PYTHON_IMAGE")
    assert default is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", default), default
    for instructions in stages().values():
        image = instructions[0]["value"].split()[0]
        assert image in {"${PYTHON_IMAGE}", *stages()}, image


def test_the_build_installs_only_the_compiled_runtime_requirements() -> None:
    runs = [i["value"] for i in DockerfileParser(path=str(ROOT / "Dockerfile")).structure if i["instruction"] == "RUN"]
    installs = [cmd for run in runs for cmd in run.split("&&") if "pip install" in cmd or "pip wheel" in cmd]
    assert installs
    for cmd in installs:
        assert "--no-deps" in cmd, cmd  # every version comes from a compiled file
        assert "requirements.txt" not in cmd.split(), cmd  # the dev/test set
    requirement_files = {arg for cmd in installs for arg in re.findall(r"-r\s+(\S+)", cmd)}
    assert requirement_files == {"requirements-build.txt", "requirements-runtime.txt"}
    runtime = (ROOT / "requirements-runtime.txt").read_text()
    assert not re.search(r"^(pytest|ruff|mypy|testcontainers|playwright)==", runtime, re.M)
    assert "--no-build-isolation" in " ".join(installs)


def pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    return {m[0].lower(): m[1] for m in re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", text, re.M)}


def test_runtime_pins_are_the_pins_the_tests_run_with() -> None:
    runtime, dev = pins(ROOT / "requirements-runtime.txt"), pins(ROOT / "requirements.txt")
    assert {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v} == {}


def test_runtime_requirements_cover_every_dependency_of_the_packages() -> None:
    runtime = pins(ROOT / "requirements-runtime.txt")
    local = {"booking-contracts", "service-runtime"}
    for package in PACKAGES:
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()
            assert name in local or name in runtime, f"{package} needs {name}: add it to requirements-runtime.in"


def test_docker_context_holds_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text()
    for path in ("requirements-runtime.txt", "requirements-build.txt", "deploy/docker/healthcheck.py"):
        assert f"!{path}" in ignore
    for package in PACKAGES:
        assert f"!{package}/src/" in ignore and f"!{package}/pyproject.toml" in ignore


class _Status(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def healthcheck(port: int, *args: str) -> int:
    script = ROOT / "deploy" / "docker" / "healthcheck.py"
    env = {"HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, timeout=10).returncode


def test_healthcheck_script_passes_on_200_and_fails_otherwise(status_server: int) -> None:
    assert healthcheck(status_server) == 0
    assert healthcheck(status_server, "/other") == 1
    server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
    free_port = server.server_address[1]
    server.server_close()
    assert healthcheck(free_port) == 1
