#!/usr/bin/env bash
# Validate contracts/asyncapi.json offline against the AsyncAPI 3.0.0 JSON Schema of @asyncapi/specs.
# The npm package is installed once into a cache outside the repository; later runs need no network.
set -euo pipefail

SPECS_VERSION="6.11.1"          # npm @asyncapi/specs
CHECK_JSONSCHEMA_VERSION="0.39.0"  # PyPI check-jsonschema, tested with

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
document="${1:-$repo/contracts/asyncapi.json}"
cache="${ASYNCAPI_SPECS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/booking-contracts/asyncapi-specs-$SPECS_VERSION}"
schema="$cache/node_modules/@asyncapi/specs/schemas/3.0.0.json"

if [[ ! -f "$schema" ]]; then
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    "@asyncapi/specs@$SPECS_VERSION" >&2
fi

check_jsonschema="${CHECK_JSONSCHEMA:-$repo/.venv/bin/check-jsonschema}"
if [[ ! -x "$check_jsonschema" ]]; then
  check_jsonschema="$(command -v check-jsonschema || true)"
fi
if [[ -z "$check_jsonschema" ]]; then
  echo "check-jsonschema not found: pip install check-jsonschema==$CHECK_JSONSCHEMA_VERSION" >&2
  exit 2
fi

exec "$check_jsonschema" --schemafile "$schema" "$document"
