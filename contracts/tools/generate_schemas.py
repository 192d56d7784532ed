"""Write the JSON Schemas and the AsyncAPI document of booking's events; `--check` only reports stale files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from booking_contracts.schemas import generated_files

CONTRACTS_DIR = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"


def stale_files(root: Path = CONTRACTS_DIR) -> list[str]:
    """Return the generated files under root that are missing, out of date or no longer generated."""
    expected = generated_files()
    stale = [
        relative
        for relative, text in expected.items()
        if not (root / relative).is_file() or (root / relative).read_text(encoding="utf-8") != text
    ]
    stale += [relative for relative in _committed_schemas(root) if relative not in expected]
    return sorted(stale)


def write_files(root: Path = CONTRACTS_DIR) -> list[str]:
    """Write every generated file under root, delete schemas no model generates; return what changed."""
    changed = stale_files(root)
    expected = generated_files()
    for relative in changed:
        path = root / relative
        if relative in expected:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(expected[relative], encoding="utf-8", newline="\n")
        else:
            path.unlink()
    return changed


def _committed_schemas(root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in sorted((root / "schemas").glob("*.json"))]


def main(argv: list[str] | None = None) -> int:
    """Generate the files, or with --check exit 1 listing the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for relative in stale:
            print(f"stale: contracts/{relative}", file=sys.stderr)
        if stale:
            print("run: python contracts/tools/generate_schemas.py", file=sys.stderr)
        return 1 if stale else 0
    expected = generated_files()
    for relative in write_files():
        print(f"{'updated' if relative in expected else 'removed'}: contracts/{relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
