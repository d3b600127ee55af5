"""Scale-out benchmark (issue #14): what an HAProxy pair and server pools cost next to the lab of
one node and one server a colour, in the same run, in interleaved rounds.

Three labs of the single layout, each its own prefix (`<prefix>-one`, `-pair`, `-pool`):
  one   1 HAProxy node, 1 server a colour: the baseline of both comparisons
  pair  2 HAProxy nodes (same cfg), 1 server a colour
  pool  1 HAProxy node, 3 servers a colour
The switch section runs `one` and `pair` (then `pair` goes down), the deploy section `one` and
`pool`, so at most two labs run at a time on the machine; `--only switch` or `--only deploy` runs
one section.

switch   the approved switch of bench.switch (t0 = the approval) under a steady load of 4 threads:
         on `pair` spread over both nodes' frontends (half the threads each, keep-alive and fresh
         connections on each), on `one` through its frontend. Time to 100% on the new LIVE is
         from t0 to the first request after which every request through every frontend is
         answered by the new LIVE (bench/cutover.py). Target: pair <= 1.3x one.
failed   requests without a 200 answer in the switch windows of `pair`. Target: 0.
nodes    the window in which the pair's frontends answered with different colours, seen by the
         load: the spread of the instants each frontend reached 100% on the new LIVE.
deploy   Service.deploy(app) of a fresh commit to STANDBY (every server of the pool on `pool`),
         checked on each STANDBY server's own port. Target: pool <= 1.3x one.
by hand  the same host work with no tool (fetch, checkout, build, restart, until the new commit
         answers), in every STANDBY server at once over `docker exec`: the floor the lab's
         containers, sharing the machine's CPUs, put under the pool's ratio (info).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    APP,
    Comparison,
    Measured,
    Series,
    add_lab_arguments,
    capture_logs,
    failure_notes,
    finish,
    fmt_ms,
    format_grid,
    format_table,
    interleave,
    lab_session,
    machine_facts,
    median,
    ms_since,
    now,
    print_header,
    say,
)
from bench.cutover import cutover, wait_settled
from bench.switch import OTHER, approved_switch
from bluegreen.lab.controller import Lab
from bluegreen.lab.layouts import APP_DIR
from bluegreen.lab.load import Load, Sample
from bluegreen.lab.topology import Topology
from bluegreen.service import Service

SCALE_PREFIX = "bluegreen-bench3"
LABS = {
    "one": Topology(),
    "pair": Topology(haproxy_nodes=2),
    "pool": Topology(servers_per_colour=3),
}
SWITCH_TARGET = 1.3
DEPLOY_TARGET = 1.3
LOAD_THREADS = 4
SECTIONS = ("switch", "deploy")


def nodes_apart_ms(samples: Sequence[Sample], t0: float, new: str, returned: float) -> float:
    """How long the frontends answered with different colours: the spread of the instants each
    frontend (the samples' `url`) reached 100% on `new`; nan when one never did."""
    reached = []
    for url in sorted({s.url for s in samples if s.url}):
        cut = cutover([s for s in samples if s.url == url], t0, new, returned)
        reached.append(cut.reached_at)
    if len(reached) < 2 or any(math.isnan(r) for r in reached):
        return math.nan
    return (max(reached) - min(reached)) * 1000.0


def failed_verdict(failed: Sequence[int], attempts_failed: int) -> str:
    """The pair's target: rounds were measured, none failed, and every request was answered."""
    ok = bool(failed) and not any(failed) and attempts_failed == 0
    return ("PASS" if ok else "FAIL") + " (target: 0 failed)"


@dataclass
class Rounds:
    """What the switch rounds of one lab saw."""

    failed: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    apart_ms: list[float] = field(default_factory=list)
    call_ms: list[float] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


# $1 the app dir, $2 its supervisor program: what bench.deploy's baseline runs on STANDBY.
BY_HAND = """set -e
cd "$1"
git fetch -q --prune --tags origin
git checkout -q --force --detach origin/main
git clean -qfd
python3 build.py >/dev/null
supervisorctl restart "$2" >/dev/null
"""


def wait_for_commit(url: str, sha: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(url, timeout=2).json().get("commit") == sha:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered {sha[:12]}")


class LabArm:
    """One lab of the benchmark: its Service, the URLs its users reach, its switch and deploy."""

    def __init__(self, name: str, info: Any, settle_s: float) -> None:
        self.name = name
        self.info = info
        self.settle_s = settle_s
        self.lab = Lab(info.prefix, Path(info.state_dir))
        self.service = Service.from_path(info.config_path)
        self.service.status(APP)  # the pool is open before any round
        self.rounds = Rounds()

    def close(self) -> None:
        self.service.close()

    def load(self) -> Load:
        urls = [url + "/health" for url in self.info.frontends.values()]
        return Load(urls[0], threads=LOAD_THREADS, more_urls=tuple(urls[1:]))

    def switch(self) -> float:
        with self.load() as load:
            switch = approved_switch(self.service, load)
            wait_settled(load, switch.new, switch.t0, switch.returned, self.settle_s)
        samples = load.snapshot()
        cut = cutover(samples, switch.t0, switch.new, switch.returned)
        apart = nodes_apart_ms(samples, switch.t0, switch.new, switch.returned)
        rounds = self.rounds
        rounds.failed.append(cut.failed)
        rounds.requests.append(cut.requests)
        rounds.call_ms.append((switch.returned - switch.t0) * 1000.0)
        if not math.isnan(apart):
            rounds.apart_ms.append(apart)
        apart_json = None if math.isnan(apart) else round(apart, 1)
        rounds.records.append(
            {"lab": self.name, "from": switch.old, **cut.to_json(), "nodes_apart_ms": apart_json}
        )
        switch.check()
        if math.isnan(cut.to_100_ms):
            raise RuntimeError(f"{self.name}: the load never saw 100% on {switch.new.upper()}")
        return cut.to_100_ms

    def deploy(self) -> float:
        live = self.live_color()
        sha = self.lab.commit()  # a fresh good commit on the origin, not timed
        start = now()
        result = self.service.deploy(APP)
        ms = ms_since(start)
        if not result.ok:
            raise RuntimeError(f"{self.name}: deploy failed: {result.error}")
        for role in self.info.topology.server_roles(OTHER[live]):
            url = f"{self.info.hosts[role].app}/health"
            commit = httpx.get(url, timeout=5).json().get("commit", "")
            if commit != sha:
                raise RuntimeError(f"{self.name}: {role} runs {commit[:12]}, not {sha[:12]}")
        return ms

    def by_hand(self) -> float:
        """The deploy's host work alone (fetch, checkout, build, restart, until the new commit
        answers), by hand in every STANDBY server at once over `docker exec`: what the servers of
        a pool cost each other on this machine, with no tool around it."""
        standby = self.info.topology.server_roles(OTHER[self.live_color()])
        sha = self.lab.commit()
        errors: list[str] = []

        def deploy(role: str) -> None:
            try:
                self.lab.exec(role, ["sh", "-c", BY_HAND, "by-hand", APP_DIR, APP])
                wait_for_commit(f"{self.info.hosts[role].app}/health", sha)
            except Exception as exc:  # reported below, after every thread ended
                errors.append(f"{role}: {exc}")

        start = now()
        threads = [threading.Thread(target=deploy, args=(role,)) for role in standby]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ms = ms_since(start)
        if errors:
            raise RuntimeError(f"{self.name}: by hand: {errors[0]}")
        return ms

    def live_color(self) -> str:
        return str(httpx.get(self.info.frontend + "/health", timeout=5).json()["color"])


def run(args: argparse.Namespace, labs: contextlib.ExitStack) -> dict[str, Any]:
    def lab(name: str, stack: contextlib.ExitStack) -> LabArm:
        arm = LabArm(name, stack.enter_context(_session(args, name)), args.settle)
        stack.callback(arm.close)
        return arm

    one = lab("one", labs)
    rows: list[Comparison] = []
    switch_labs: dict[str, tuple[Rounds, Series]] = {}
    if "switch" in args.only:
        switch_one = Series("switch, 1 HAProxy node: approval -> 100% on new LIVE")
        switch_pair = Series("switch, 2 HAProxy nodes: approval -> 100% on new LIVE (both)")
        with contextlib.ExitStack() as pair_lab:  # down before the pool comes up
            pair = lab("pair", pair_lab)
            say(f"scale-out: {args.rounds} switch rounds on one and pair")
            arms = [(switch_pair, pair.switch), (switch_one, one.switch)]
            interleave(args.rounds, arms, progress=say)
        rows += [
            Comparison("switch to 100%, 2 nodes vs 1", switch_pair, switch_one, SWITCH_TARGET),
            Comparison(
                "  info: switch t0 -> return (incl. drain, watch)",
                Series("pair: t0 -> return", pair.rounds.call_ms),
                Series("one: t0 -> return", one.rounds.call_ms),
                None,
            ),
        ]
        switch_labs = {"pair": (pair.rounds, switch_pair), "one": (one.rounds, switch_one)}
    if "deploy" in args.only:
        pool = lab("pool", labs)
        deploy_one = Series("deploy to 1 server a colour")
        deploy_pool = Series("deploy to 3 servers a colour")
        hand_one = Series("by hand on 1 server")
        hand_pool = Series("by hand on 3 servers at once")
        say(f"scale-out: {args.rounds} deploy rounds on one and pool")
        arms = [
            (deploy_pool, pool.deploy),
            (deploy_one, one.deploy),
            (hand_pool, pool.by_hand),
            (hand_one, one.by_hand),
        ]
        interleave(args.rounds, arms, progress=say)
        rows += [
            Comparison("deploy, 3 servers a colour vs 1", deploy_pool, deploy_one, DEPLOY_TARGET),
            Comparison(
                "  info: the same host work by hand, 3 at once vs 1", hand_pool, hand_one, None
            ),
        ]
    for row in rows:
        failed = len(row.tool.failures) + len(row.baseline.failures)
        row.errors, row.checked = failed, row.tool.n + row.baseline.n + failed
    return {"rows": rows, "switch_labs": switch_labs}


def _session(args: argparse.Namespace, name: str) -> contextlib.AbstractContextManager[Any]:
    return lab_session(
        f"{args.prefix}-{name}",
        args.state_dir / name if args.state_dir else None,
        reuse=args.reuse,
        keep=args.keep,
        topology=LABS[name],
    )


def requests_table(labs: dict[str, tuple[Rounds, Series]]) -> str:
    body = []
    for name, (rounds, series) in labs.items():
        verdict = failed_verdict(rounds.failed, len(series.failures)) if name == "pair" else "info"
        body.append(
            [
                name,
                str(len(rounds.failed)),
                str(sum(rounds.requests)),
                str(sum(rounds.failed)),
                fmt_ms(median(rounds.apart_ms)),
                fmt_ms(max(rounds.apart_ms, default=math.nan)),
                verdict,
            ]
        )
    header = [
        "lab",
        "rounds",
        "requests in window",
        "failed",
        "nodes apart ms (med)",
        "(max)",
        "verdict",
    ]
    return format_grid(header, body, free_last=True)


LEGEND = """\
one/pair/pool  the benchmark's three labs (single layout): 1 node 1 server a colour; 2 HAProxy
               nodes; 3 servers a colour
switch         Service.switch approved by the callback (t0 = the approval), load 4 threads spread
               over every frontend of the lab; 100% = every request through every frontend
               answered by the new LIVE from then on
failed         requests of the switch windows without a 200 answer (refused, reset, timed out)
nodes apart    the spread of the instants the pair's two frontends reached 100% (the window in
               which users could get either colour depending on the node)
deploy         Service.deploy of a fresh commit to STANDBY (every server of a pool), checked on
               each STANDBY server's own app port
by hand        the same host work without the tool, in every STANDBY server at once (docker
               exec): the pool ratio's floor on this machine, whose CPUs the containers share
ratio          pair or pool median / one median; PASS when <= target"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale_out", description=(__doc__ or "").split("\n")[0]
    )
    add_lab_arguments(parser)
    parser.set_defaults(prefix=SCALE_PREFIX)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default %(default)s)")
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds of all-new answers to observe after each switch (default %(default)s)",
    )
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable; default: both)",
    )
    args = parser.parse_args(argv)
    args.only = args.only or list(SECTIONS)
    if args.rounds < 1 or args.settle <= 0:
        parser.error("--rounds must be at least 1, --settle positive")

    logs = capture_logs("paramiko")
    facts = machine_facts()
    started = time.monotonic()
    with contextlib.ExitStack() as labs:
        measuring = time.monotonic()
        result = run(args, labs)
        measuring_s = time.monotonic() - measuring
    measured = Measured(
        result, facts, machine_facts()["loadavg_1/5/15"], started, measuring_s, logs
    )
    rows: list[Comparison] = result["rows"]
    print_header("bluegreen scale-out benchmark (HAProxy pair, server pools)", measured)
    print()
    print(format_table(rows))
    print()
    if result["switch_labs"]:
        print(f"requests during the switches (load: {LOAD_THREADS} threads over every frontend)")
        print(requests_table(result["switch_labs"]))
        print()
    print(LEGEND)
    notes = failure_notes([s for row in rows for s in (row.tool, row.baseline)], measured)
    if notes:
        print()
        print("\n".join(notes))
    finish(
        "scale_out",
        args,
        measured,
        rows,
        switch_rounds=[record for r, _ in result["switch_labs"].values() for record in r.records],
    )
    failed_ok = True
    if "pair" in result["switch_labs"]:
        pair_rounds, pair_series = result["switch_labs"]["pair"]
        failed_ok = failed_verdict(pair_rounds.failed, len(pair_series.failures)).startswith("PASS")
    return 0 if failed_ok and all(not math.isnan(r.ratio) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
