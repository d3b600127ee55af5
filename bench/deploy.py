"""Deploy benchmark: `service.deploy(app)` against the same commands run by hand over open SSH
connections, in the same run, in alternating rounds, each round deploying a fresh commit.

tool      Service.deploy("jw-attendant") with the defaults (pull + backup), on a Service whose
          connection pool is already open (a status ran first). It runs preflight (HEAD, local
          changes, free disk, LIVE's health), a tar backup, git fetch + resolve + checkout + clean,
          the build, the restart and the health probe from the HAProxy host, re-reading
          haproxy.cfg before each change, under the app's lock, with a history line.
tool, no backup
          the same with backup=False: the same work as the hand-run baseline plus the checks.
baseline  an operator's open terminals: one plain paramiko connection to STANDBY and one to the
          HAProxy host, both connected before timing (the tool's pool is warm too). On STANDBY,
          one command after the other: git fetch --prune --tags origin, git checkout --force
          --detach origin/main, git clean -fd, the build, the restart; then curl /health from the
          HAProxy host until it reports the new commit (the tool's probe, the tool's back-off).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import (
    APP,
    BENCH_PREFIX,
    Comparison,
    RawTarget,
    Series,
    add_lab_arguments,
    failure_notes,
    finish,
    fmt_ms,
    format_grid,
    format_table,
    interleave,
    measure_in_lab,
    median,
    ms_since,
    now,
    print_header,
    raw_check,
    raw_connect,
    raw_run,
    say,
)
from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.config import load_config
from bluegreen.domain.probe import health_url
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.lab.controller import Lab
from bluegreen.service import Service

TARGET = 1.10


class Arms:
    def __init__(self, info: Any) -> None:
        self.lab = Lab(info.prefix, Path(info.state_dir))
        self.config = load_config(info.config_path)
        self.app = self.config.app(APP)
        self.service = Service(self.config)
        status = self.service.status(APP)  # opens the pool: HAProxy host, BLUE, GREEN
        if status.standby is None or status.live is None:
            raise SystemExit(f"the lab's routing is not certain: {status.problems}")
        self.standby = status.standby.color
        self.live = status.live.color
        ssh = self.config.ssh
        key = str(ssh.identity_file)

        def target(spec: str) -> RawTarget:
            return RawTarget.of(spec, key_path=key, known_hosts=str(ssh.known_hosts))

        # The operator's two open terminals, connected before any timing.
        (self.std,) = self.app.members(self.standby)
        self.std_client = raw_connect(target(self.std.ssh))
        self.hp_client = raw_connect(target(self.config.haproxy.ssh))
        raw_check(self.std_client, "true")
        raw_check(self.hp_client, "true")
        self.tool_steps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.base_steps: dict[str, list[float]] = defaultdict(list)
        self.results: list[dict[str, Any]] = []

    def close(self) -> None:
        self.std_client.close()
        self.hp_client.close()
        self.service.close()

    # -- the tool ---------------------------------------------------------------------------

    def tool(self, key: str, *, backup: bool) -> Any:
        def arm() -> float:
            sha = self.lab.commit()  # a fresh good commit on the origin, not timed
            start = now()
            result = self.service.deploy(APP, DeployOptions(backup=backup))
            ms = ms_since(start)
            self.results.append({"arm": key, "ms": round(ms, 1), "commit": sha,
                                 "ok": result.ok, "steps": [s.model_dump() for s in result.steps]})  # fmt: skip
            if not result.ok:
                raise RuntimeError(f"deploy failed at {result.failed_step}: {result.error}")
            if result.commit_after != sha or result.color != self.standby:
                raise RuntimeError(
                    f"deployed {result.commit_after} to {result.color}, expected {sha} on "
                    f"{self.standby}"
                )
            inside = 0.0
            for step in result.steps:
                if step.status == "ok":
                    self.tool_steps[key][step.name].append(step.duration_s * 1000.0)
                    inside += step.duration_s * 1000.0
            self.tool_steps[key]["outside steps"].append(ms - inside)
            return ms

        return arm

    # -- the baseline -----------------------------------------------------------------------

    def by_hand(self) -> float:
        sha = self.lab.commit()
        d = shlex.quote(self.app.app_dir)
        build = self.app.build or "true"
        commands = [
            ("fetch", f"git -C {d} fetch --prune --tags origin"),
            ("fetch", f"git -C {d} checkout --force --detach origin/{self.app.branch}"),
            ("fetch", f"git -C {d} clean -fd"),
            ("build", f"cd {d} && {build}"),
            ("restart", f"cd {d} && {self.app.restart}"),
        ]
        probe = self._probe_line()
        health = self.app.health
        timings: dict[str, float] = defaultdict(float)
        start = now()
        for step, command in commands:
            began = now()
            raw_check(self.std_client, command)
            timings[step] += ms_since(began)
        began = now()
        delays = dc.backoff_delays(health.attempts, health.interval_s)
        for attempt in range(health.attempts):
            status, output = raw_run(self.hp_client, probe, timeout=health.timeout_s + 10)
            if status == 0 and _reports(output, sha):
                break
            if attempt == health.attempts - 1:
                raise RuntimeError(f"STANDBY never reported {sha[:12]}: {output[-200:]}")
            time.sleep(delays[attempt])
        timings["health"] = ms_since(began)
        ms = ms_since(start)
        for step, value in timings.items():
            self.base_steps[step].append(value)
        self.results.append({"arm": "by hand", "ms": round(ms, 1), "commit": sha,
                             "steps_ms": {k: round(v, 1) for k, v in timings.items()}})  # fmt: skip
        return ms

    def _probe_line(self) -> str:
        url = health_url(dc.probe_address(self.app, self.std), self.app.health.path)
        timeout = f"{self.app.health.timeout_s:g}"
        return shlex.join(["curl", "-sS", "--max-time", timeout, "--noproxy", "*", url])


def _reports(body: str, sha: str) -> bool:
    try:
        commit = json.loads(body).get("commit") or ""
    except (ValueError, AttributeError):
        return False
    return bool(commit) and dc.same_commit(commit, sha)


def run(args: argparse.Namespace, info: Any) -> dict[str, Any]:
    arms = Arms(info)
    try:
        say(f"deploy: STANDBY is {arms.standby.upper()}, LIVE {arms.live.upper()}")
        tool = Series("service.deploy (pull + backup, defaults)")
        lean = Series("service.deploy (pull, backup=False)")
        base = Series("by hand: fetch/checkout/clean/build/restart + health poll")
        plan = [
            (tool, arms.tool("tool", backup=True)),
            (base, arms.by_hand),
            (lean, arms.tool("tool, no backup", backup=False)),
        ]
        if args.warmup:
            say(f"deploy: {args.warmup} warm-up round(s), not recorded")
            scratch = [(Series(s.name), fn) for s, fn in plan]
            interleave(args.warmup, scratch, progress=say, label="warm-up ")
        say(f"deploy: {args.rounds} rounds")
        interleave(args.rounds, plan, progress=say)
    finally:
        arms.close()
    rows = [
        Comparison("deploy (pull+backup) vs by hand", tool, base, TARGET),
        Comparison("  info: deploy backup=False vs by hand", lean, base, None),
        Comparison("  info: deploy (pull+backup) vs backup=False", tool, lean, None),
    ]
    for row in rows:
        failed = len(row.tool.failures) + len(row.baseline.failures)
        row.errors = failed
        row.checked = row.tool.n + row.baseline.n + failed
    return {
        "rows": rows,
        "steps": _breakdown(arms),
        "steps_json": {
            "tool": {
                k: {s: round(median(v), 1) for s, v in d.items()}
                for k, d in arms.tool_steps.items()
            },
            "by hand": {s: round(median(v), 1) for s, v in arms.base_steps.items()},
        },
        "results": arms.results,
        "standby": arms.standby,
    }


def _breakdown(arms: Arms) -> str:
    names = ["preflight", "backup", "fetch", "build", "restart", "health", "outside steps"]
    tool, lean, base = arms.tool_steps["tool"], arms.tool_steps["tool, no backup"], arms.base_steps
    body = []
    for name in names:
        body.append(
            [
                name,
                fmt_ms(median(tool.get(name, []))),
                fmt_ms(median(lean.get(name, []))),
                fmt_ms(median(base.get(name, []))),
            ]
        )
    return format_grid(["step (median ms)", "tool", "tool no backup", "by hand"], body)


LEGEND = """\
tool      Service.deploy over its warm SSHRunner pool: preflight, backup (tar), fetch (git fetch,
          resolve, re-read haproxy.cfg, checkout, clean), build, restart, health (a GET from the
          HAProxy host, over its direct-tcpip channel, until the new commit answers), under the
          lock, with a history line
baseline  the same git/build/restart commands by hand, one after the other, over one plain
          paramiko connection to STANDBY opened before timing; the health poll over one to the
          HAProxy host, also open; the same probe schedule as the tool
ratio     tool median / baseline median; PASS when <= target
steps     fetch by hand = fetch + checkout + clean; `outside steps` = lock, reading haproxy.cfg,
          probing LIVE after the deploy, the history line (all the tool's own bookkeeping)"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.deploy", description=(__doc__ or "").split("\n")[0]
    )
    add_lab_arguments(parser)
    parser.set_defaults(prefix=BENCH_PREFIX)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default %(default)s)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="unrecorded rounds first (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1, --warmup at least 0")

    measured = measure_in_lab(args, run)
    result = measured.result
    rows: list[Comparison] = result["rows"]
    print_header("bluegreen deploy benchmark", measured)
    print()
    print(format_table(rows))
    print()
    print(f"where the time goes (deploys to {result['standby'].upper()}):")
    print(result["steps"])
    print()
    print(LEGEND)
    notes = failure_notes([s for row in rows for s in (row.tool, row.baseline)], measured)
    if notes:
        print()
        print("\n".join(notes))
    finish(
        "deploy",
        args,
        measured,
        rows,
        steps_median_ms=result["steps_json"],
        rounds=result["results"],
    )
    ok = all(not math.isnan(r.ratio) for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
