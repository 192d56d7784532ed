"""Container HEALTHCHECK without curl: exit 0 when the service's `/readyz` (or the path given) answers 200."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    """Probe http://127.0.0.1:$HTTP_PORT<path>; 0 healthy, 1 not."""
    path = argv[1] if len(argv) > 1 else "/readyz"
    url = f"http://127.0.0.1:{os.environ.get('HTTP_PORT', '8000')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
