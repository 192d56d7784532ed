"""Extract JSON Schemas from CustomResourceDefinition YAML files into deploy/schemas/crds/ (run by hand, offline after).

Usage: python deploy/tools/crd_schemas.py CRD.yaml [CRD.yaml ...]

Where the CRDs came from (the Go module proxy, `go mod download -json MODULE@VERSION`, then the files below):
  github.com/kedacore/keda/v2@v2.18.0
      config/crd/bases/keda.sh_{scaledobjects,triggerauthentications}.yaml
  github.com/rabbitmq/messaging-topology-operator@v1.16.0
      config/crd/bases/rabbitmq.com_{exchanges,queues,bindings,policies}.yaml
  github.com/prometheus-operator/prometheus-operator@v0.85.0
      example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml

Each served version's openAPIV3Schema becomes `<group>/<kind>_<version>.json` (kind lower-case). Objects that list their
properties and do not preserve unknown fields get `additionalProperties: false`, as the API server prunes unknown
fields silently: a misspelt field fails the check instead of vanishing in the cluster.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parents[1] / "schemas" / "crds"


def strict(schema: Any) -> Any:
    """Return the schema with unknown fields forbidden where Kubernetes would prune them."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if isinstance(out.get("pattern"), str):
            # Go's RE2 takes `^(?i)...`; Python (and so jsonschema) wants global flags first.
            out["pattern"] = re.sub(r"^\^\(\?(\w+)\)", r"(?\1)^", out["pattern"])
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def extract(path: Path) -> list[Path]:
    """Write one JSON Schema per served version of the CRD at path; return the files written."""
    crd = yaml.safe_load(path.read_text())
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    written = []
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
        schema["properties"]["kind"] = {"const": kind}
        schema["properties"]["metadata"] = {"type": "object"}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        target = OUT / group / f"{kind.lower()}_{version['name']}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(target)
    return written


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        for out in extract(Path(arg)):
            print(out)
