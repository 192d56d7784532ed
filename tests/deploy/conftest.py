"""Fixtures of the deployment checks: the repository paths and a kustomize binary (installed when missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZE_VERSION = "v5.5.0"
TOOLS = Path(os.environ.get("PETSIT_TOOLS", Path.home() / ".cache" / "petsit-tools" / "bin"))
GO = shutil.which("go") or "/usr/local/go/bin/go"


def kustomize_command() -> list[str]:
    """A kustomize that builds the same way here, on a developer's machine and in CI (never a silent skip)."""
    if explicit := os.environ.get("KUSTOMIZE"):
        return [explicit]
    cached = TOOLS / "kustomize"
    if not cached.exists() and Path(GO).exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [GO, "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
            env={**os.environ, "GOBIN": str(TOOLS), "GOFLAGS": "-mod=mod"},
            check=True,
            timeout=600,
        )
    if cached.exists():
        return [str(cached)]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    raise RuntimeError("no kustomize: install Go (to build it) or kubectl, or set KUSTOMIZE")


@pytest.fixture(scope="session")
def kustomize_build() -> Callable[[str], list[dict[str, Any]]]:
    """Build a kustomization under deploy/k8s and return its documents."""
    command = kustomize_command()

    def build(directory: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            [*command, "build", str(DEPLOY / "k8s" / directory)], capture_output=True, text=True, check=True
        )
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    return build
