#!/usr/bin/env python3
"""Build step of the sample app: compile the sources and render the page into dist/.

A syntax error anywhere under src/ fails the build (exit 1), which is how the lab makes a commit
whose build breaks. The commit being built is baked into dist/build-info.json, so /health reports
what was built, not what happens to be checked out.
"""

import json
import py_compile
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist.new"


def main() -> int:
    shutil.rmtree(DIST, ignore_errors=True)
    shutil.copytree(ROOT / "src", DIST)
    for source in sorted(DIST.glob("*.py")):
        try:
            py_compile.compile(str(source), doraise=True)
        except py_compile.PyCompileError as exc:
            print(f"build failed: {exc.msg}", file=sys.stderr)
            shutil.rmtree(DIST, ignore_errors=True)
            return 1
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    template = (ROOT / "templates" / "index.html").read_text()
    (DIST / "index.html").write_text(template.replace("{{commit}}", commit))
    info = {"commit": commit, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (DIST / "build-info.json").write_text(json.dumps(info) + "\n")
    shutil.copy(ROOT / "settings.json", DIST / "settings.json")
    # Swap the finished build in whole, so a failed build never leaves a half-written dist/.
    old = ROOT / "dist"
    if old.exists():
        shutil.rmtree(old)
    DIST.rename(old)
    print(f"built {commit[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
