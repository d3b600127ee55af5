"""`bluegreen demo`: the README's first command, run against a fresh lab."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import httpx

from bluegreen.lab.controller import Lab

Say = Callable[[str], None]


def count_colors(frontend: str, requests: int) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    with httpx.Client(timeout=5) as client:
        for _ in range(requests):
            response = client.get(frontend + "/health")
            seen[response.json().get("color", "?") if response.status_code == 200 else "error"] += 1
    return seen


def run_demo(say: Say, keep: bool = False, prefix: str = "bluegreen-lab") -> int:
    lab = Lab(prefix)
    started = time.monotonic()
    say("1. lab up: HAProxy + BLUE + GREEN + git origin, on 127.0.0.1")
    info = lab.up(progress=lambda msg: say(f"   {msg}"))
    say(f"   ready in {time.monotonic() - started:.1f}s; config {info.config_path}")
    say("2. who serves traffic? 20 requests through the HAProxy frontend")
    seen = count_colors(info.frontend, 20)
    say("   " + ", ".join(f"{color.upper()}: {n}" for color, n in seen.items()))
    if keep:
        say(
            f"lab kept: export BLUEGREEN_CONFIG={info.config_path}; `bluegreen lab down` removes it"
        )
    else:
        lab.down()
        say("3. lab down: every container, network and key removed")
    return 0 if set(seen) == {"blue"} else 1
