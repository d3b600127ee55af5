"""Switch benchmark: the tool's approved switch against a naive hand switch (sed on haproxy.cfg +
a restart of HAProxy), under the same steady load, in the same run, in alternating rounds that
switch back and forth.

Time to 100% on the new LIVE (the headline number), defined on the load generator's samples:
  t0   the moment execution starts: for the tool, when the approval callback says yes (the CLI's
       y/N and MCP elicitation path; the plan was read and shown before); for the naive switch,
       when the operator's sed command is sent.
  T    the first instant after which EVERY request sent through the frontend is answered by the
       new LIVE: the send time of the first request after the last request (sent after t0) that
       failed or was answered by the old LIVE.
  time to 100% = T - t0. Failed requests are those of the switch window (still open at t0 or
  sent after it, sent until 1 s after the later of T and the action's return) that got no 200
  answer: refused, reset, timed out.
  A stale keep-alive connection closed by the old HAProxy worker is retried once by the load
  generator (as browsers do) and counted apart.

tool   Service.switch("jw-attendant", approver=Approver(ask=yes)) with the lab's real settings (drain_s=1,
       watch_s=3): re-plan under the lock, target health, cfg backup, `haproxy -c`, atomic
       replace, seamless master-worker reload, verify through the frontend, drain, state file,
       indicators, history, post-switch watch. Its call returns after the watch, so the call's
       wall time is reported apart from the time to 100%.
naive  what a hurried operator does: `sed -i` flips `default_backend` in haproxy.cfg over an
       open SSH connection (connected before t0), then restarts HAProxy (stop, then start: not a
       reload). The lab runs HAProxy's master as the container's PID 1 (no systemd), so
       "systemctl restart haproxy" is emulated by restarting the HAProxy container with no stop
       grace (`docker restart -t 0`): the HAProxy process is killed at once (for clients the same
       as the hard stop HAProxy does on systemd's SIGTERM: open connections cut, new ones refused)
       and a new one starts from the edited cfg. Why no grace: the lab's master, as PID 1, also
       parents the container's sshd and only exits when it has no children left, so a SIGTERM
       stop hangs for the whole grace period: a lab artifact, not HAProxy behaviour. What remains
       unfair to the naive side: the start includes Docker's container start and the entrypoint
       (sshd), slower than `systemctl start haproxy` on a real host, so its outage here is an
       upper bound; its failed requests are not an artifact (every request in the gap fails).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
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
    print_header,
    raw_check,
    raw_connect,
    say,
    wait_for_ssh,
)
from bench.cutover import Cutover, cutover, wait_settled, warm_color
from bluegreen.domain.config import load_config
from bluegreen.engine.context import StepEvent
from bluegreen.lab.controller import Lab
from bluegreen.lab.load import Load
from bluegreen.models import SwitchPlan, SwitchResult
from bluegreen.service import Approver, Service

LOAD_THREADS = 4
OTHER = {"blue": "green", "green": "blue"}
TOOL_STEPS = (
    "plan",
    "target",
    "backup-cfg",
    "check-cfg",
    "replace-cfg",
    "reload",
    "verify",
    "drain",
    "state-file",
    "indicators",
    "watch",
)


class Arms:
    def __init__(self, info: Any, settle_s: float) -> None:
        self.info = info
        self.settle_s = settle_s
        self.lab = Lab(info.prefix, Path(info.state_dir))
        self.config = load_config(info.config_path)
        self.app = self.config.app(APP)
        self.url = info.frontend + self.app.health.path
        ssh = self.config.ssh
        self.hp_ssh = self.config.haproxy.ssh
        self.hp_target = RawTarget.of(
            self.hp_ssh, key_path=str(ssh.identity_file), known_hosts=str(ssh.known_hosts)
        )
        self.service = Service(self.config)
        self.service.status(APP)  # the pool is open before any round
        self.rounds: list[dict[str, Any]] = []
        self.steps: dict[str, list[float]] = defaultdict(list)
        self.extra: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def close(self) -> None:
        self.service.close()

    def _record(self, arm: str, old: str, cut: Cutover, load: Load, **more: Any) -> None:
        entry = {"arm": arm, "from": old, "to": cut.new_color, **cut.to_json(), **more}
        entry["stale_retries"] = load.stale_retries
        self.rounds.append(entry)
        if math.isnan(cut.to_100_ms):
            raise RuntimeError(f"{arm}: the load never saw 100% on {cut.new_color.upper()}")

    # -- the tool ---------------------------------------------------------------------------

    def tool(self) -> float:
        wait_for_ssh(self.hp_ssh)  # after a naive round, sshd may still be starting
        with Load(self.url, threads=LOAD_THREADS) as load:
            switch = approved_switch(self.service, load)
            wait_settled(load, switch.new, switch.t0, switch.returned, self.settle_s)
        result, t0, returned = switch.result, switch.t0, switch.returned
        cut = cutover(load.snapshot(), t0, switch.new, returned)
        reload_start = switch.step_time("reload", "start")
        reload_end = switch.step_time("reload", "ok")
        wall_ms = (returned - t0) * 1000.0
        self._record(
            "tool", switch.old, cut, load,
            ok=result.ok, error=result.error,
            call_ms=round((returned - switch.called) * 1000.0, 1), wall_ms=round(wall_ms, 1),
            reload_start_ms=round((reload_start - t0) * 1000.0, 1),
            reload_end_ms=round((reload_end - t0) * 1000.0, 1),
            steps={s.name: s.duration_s for s in result.steps},
        )  # fmt: skip
        switch.check()
        for step in result.steps:
            self.steps[step.name].append(step.duration_s * 1000.0)
        self.extra["tool"]["wall"].append(wall_ms)
        self.extra["tool"]["from cut"].append((cut.reached_at - reload_start) * 1000.0)
        self.extra["tool"]["pre"].append((reload_start - t0) * 1000.0)
        self.extra["tool"]["failed"].append(cut.failed)
        self.extra["tool"]["requests"].append(cut.requests)
        self.extra["tool"]["old"].append(cut.old_answers)
        self.extra["tool"]["stale"].append(load.stale_retries)
        self.extra["tool"]["outside"].append(cut.failed_outside)
        self.extra["tool"]["outage"].append(cut.outage_ms)
        return cut.to_100_ms

    # -- the naive hand switch --------------------------------------------------------------

    def naive(self) -> float:
        wait_for_ssh(self.hp_ssh)  # after an earlier restart, sshd may still be starting
        client = raw_connect(self.hp_target)  # the operator's open terminal, before t0
        cfg = self.config.haproxy.config_path
        try:
            raw_check(client, "true")
            with Load(self.url, threads=LOAD_THREADS) as load:
                old = warm_color(load)
                new = OTHER[old]
                sed = (
                    f"sed -i -E 's/^([[:space:]]*default_backend[[:space:]]+)bk_{old}"
                    f"([[:space:]]*)$/\\1bk_{new}\\2/' {cfg}"
                    f" && grep -Eq '^[[:space:]]*default_backend[[:space:]]+bk_{new}' {cfg}"
                )
                t0 = time.monotonic()
                raw_check(client, sed)
                restart_start = time.monotonic()
                # Stop at once, then start (see the module's docstring: a 10 s grace would only
                # measure the lab's PID 1 waiting for the sshd it parents).
                self.lab.container("haproxy").restart(timeout=0)
                returned = time.monotonic()
                wait_settled(load, new, t0, returned, self.settle_s)
        finally:
            client.close()
        cut = cutover(load.snapshot(), t0, new, returned)
        wall_ms = (returned - t0) * 1000.0
        self._record(
            "naive", old, cut, load,
            wall_ms=round(wall_ms, 1),
            restart_start_ms=round((restart_start - t0) * 1000.0, 1),
        )  # fmt: skip
        self.extra["naive"]["wall"].append(wall_ms)
        self.extra["naive"]["from cut"].append((cut.reached_at - restart_start) * 1000.0)
        self.extra["naive"]["pre"].append((restart_start - t0) * 1000.0)
        self.extra["naive"]["failed"].append(cut.failed)
        self.extra["naive"]["requests"].append(cut.requests)
        self.extra["naive"]["old"].append(cut.old_answers)
        self.extra["naive"]["stale"].append(load.stale_retries)
        self.extra["naive"]["outside"].append(cut.failed_outside)
        self.extra["naive"]["outage"].append(cut.outage_ms)
        return cut.to_100_ms


@dataclass
class ApprovedSwitch:
    """One approved switch of the lab's app under a running load, as the load's clock saw it."""

    result: SwitchResult
    old: str
    new: str
    called: float  # service.switch called
    t0: float  # the approval said yes: execution starts
    returned: float
    events: list[tuple[float, str, str]]  # (when, step, status) of every progress event

    def step_time(self, step: str, status: str) -> float:
        """When the step reported `status` (t0 when it never did)."""
        return next((t for t, name, st in self.events if name == step and st == status), self.t0)

    def check(self) -> None:
        if not self.result.ok or self.result.to_live != self.new:
            raise RuntimeError(
                f"switch to {self.new} not ok: {self.result.error or self.result.message}"
            )


def approved_switch(service: Service, load: Load) -> ApprovedSwitch:
    """Switch the app to the colour the load does not see, approving only that plan; t0 is the
    approval (the CLI's y/N and MCP elicitation path: the plan was read and shown before)."""
    marks: dict[str, float] = {}
    events: list[tuple[float, str, str]] = []
    expected: dict[str, str] = {}

    def approve(plan: SwitchPlan) -> bool:
        if plan.to_live != expected.get("new"):
            return False  # not the switch this round measures: nothing changes
        marks["t0"] = time.monotonic()
        return True

    def progress(event: StepEvent) -> None:
        events.append((time.monotonic(), event.step, event.status))

    old = warm_color(load)
    expected["new"] = new = OTHER[old]
    called = time.monotonic()
    result = service.switch(APP, approver=Approver(ask=approve), progress=progress)
    returned = time.monotonic()
    if "t0" not in marks:
        raise RuntimeError(f"the tool planned {result.to_live}, expected {new}")
    return ApprovedSwitch(result, old, new, called, marks["t0"], returned, events)


def run(args: argparse.Namespace, info: Any) -> dict[str, Any]:
    arms = Arms(info, args.settle)
    tool = Series("tool switch: approval -> 100% on new LIVE")
    naive = Series("naive sed + HAProxy restart: sed sent -> 100% on new LIVE")
    try:
        say(f"switch: {args.rounds} rounds, load {LOAD_THREADS} threads on {arms.url}")
        interleave(args.rounds, [(tool, arms.tool), (naive, arms.naive)], progress=say)
    finally:
        arms.close()
        # A naive round that failed mid-way may leave HAProxy restarting: let sshd come back so
        # the lab's own teardown (or a reuse) finds it as usual.
        try:
            wait_for_ssh(arms.hp_ssh, 30)
        except RuntimeError as exc:
            say(f"switch: {exc}")

    def series(arm: str, key: str, name: str) -> Series:
        return Series(name, list(arms.extra[arm][key]))

    rows = [
        Comparison("time to 100% on new LIVE (from t0)", tool, naive, None),
        Comparison(
            "  reload/restart start -> 100%",
            series("tool", "from cut", "tool: reload step start -> 100%"),
            series("naive", "from cut", "naive: docker restart call -> 100%"),
            None,
        ),
        Comparison(
            "  t0 -> reload/restart start",
            series("tool", "pre", "tool: re-plan, lock, checks, backup, haproxy -c, replace"),
            series("naive", "pre", "naive: the sed over SSH"),
            None,
        ),
        Comparison(
            "  time with failed requests",
            series("tool", "outage", "tool: first failed request -> last (0: none)"),
            series("naive", "outage", "naive: first failed request -> last"),
            None,
        ),
        Comparison(
            "call wall time, t0 -> return",
            series("tool", "wall", "tool: execute incl. verify, drain 1 s, watch 3 s"),
            series("naive", "wall", "naive: sed + docker restart -t 0 returned"),
            None,
        ),
    ]
    for row in rows[:1]:
        failed = len(row.tool.failures) + len(row.baseline.failures)
        row.errors, row.checked = failed, row.tool.n + row.baseline.n + failed
    return {"rows": rows, "arms": arms, "tool": tool, "naive": naive}


def _requests_table(arms: Arms, tool: Series, naive: Series) -> str:
    body = []
    for arm, series in (("tool", tool), ("naive", naive)):
        extra = arms.extra[arm]
        failed = [int(v) for v in extra["failed"]]
        total = [int(v) for v in extra["requests"]]
        if arm == "tool":
            verdict = "PASS" if failed and not any(failed) and not series.failures else "FAIL"
            verdict += " (target: 0 failed)"
        else:
            verdict = "info"
        body.append(
            [
                arm,
                str(len(total)),
                str(sum(total)),
                str(sum(failed)),
                str(max(failed, default=0)),
                fmt_ms(median(extra["outage"])),
                str(int(sum(extra["old"]))),
                str(int(sum(extra["stale"]))),
                str(int(sum(extra["outside"]))),
                verdict,
            ]
        )
    header = [
        "arm",
        "rounds",
        "requests in window",
        "failed",
        "max failed/round",
        "outage ms (med)",
        "old LIVE answers",
        "stale retries",
        "failed outside",
        "verdict",
    ]
    return format_grid(header, body)


def _rounds_table(arms: Arms) -> str:
    body = []
    for index, r in enumerate(arms.rounds, start=1):
        body.append(
            [
                str(index),
                r["arm"],
                f"{r['from']}->{r['to']}",
                fmt_ms(r["to_100_ms"] if r["to_100_ms"] is not None else math.nan),
                fmt_ms(r["wall_ms"]),
                str(r["requests"]),
                str(r["failed"]),
                fmt_ms(r["outage_ms"]),
                str(r["old_answers"]),
                str(r["stale_retries"]),
                "; ".join(r["errors"])[:60],
            ]
        )
    header = [
        "#",
        "arm",
        "switch",
        "to 100% ms",
        "wall ms",
        "requests",
        "failed",
        "outage ms",
        "old",
        "stale",
        "example error",
    ]
    return format_grid(header, body)


def _steps_table(arms: Arms) -> str:
    body = [[name, fmt_ms(median(arms.steps.get(name, [])))] for name in TOOL_STEPS]
    return format_grid(["tool step", "median ms"], body)


LEGEND = """\
t0        tool: the approval (the elicit callback said yes; planning and the diff came before);
          naive: the operator's sed command is sent
100%      the first instant after which every request sent through the frontend is answered
          by the new LIVE (from the load samples); time to 100% = that instant - t0
window    requests still open at t0 or sent after it, until 1 s after the later of 100% and
          the call's return
failed    requests in the window without a 200 answer (refused, reset, timed out); a stale
          keep-alive connection retried once is counted under `stale retries`, not failed.
          The load's 4 threads send the next request as soon as one ends, and a refused
          connection ends in microseconds: the naive count is large because the loop spins
outage    first failed request sent -> last failed request over (the time users see errors)
old LIVE  answers from the old LIVE after t0 (expected before the cut-over: not failures)
naive     sed flips default_backend + restart of the HAProxy process, emulated by a container
          restart with no stop grace (the lab's HAProxy master is PID 1; no systemd); Docker's
          start overhead makes its outage an upper bound of a real host's
ratio     tool median / naive median (info rows: no target; the tool's target is 0 failed)"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.switch", description=(__doc__ or "").split("\n")[0]
    )
    add_lab_arguments(parser)
    parser.set_defaults(prefix=BENCH_PREFIX)
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds, each one switch per arm (default 5)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds of all-new answers to observe after each switch (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.settle <= 0:
        parser.error("--rounds must be at least 1, --settle positive")

    measured = measure_in_lab(args, run)
    result = measured.result
    rows: list[Comparison] = result["rows"]
    arms: Arms = result["arms"]
    print_header("bluegreen switch benchmark", measured)
    print()
    print(format_table(rows))
    print()
    print(f"requests during the switches (load: {LOAD_THREADS} threads through the frontend)")
    print(_requests_table(arms, result["tool"], result["naive"]))
    print()
    print("every round")
    print(_rounds_table(arms))
    print()
    print("the tool's steps")
    print(_steps_table(arms))
    print()
    print(LEGEND)
    notes = failure_notes([result["tool"], result["naive"]], measured)
    if notes:
        print()
        print("\n".join(notes))
    finish(
        "switch",
        args,
        measured,
        rows,
        rounds=arms.rounds,
        tool_steps_median_ms={k: round(median(v), 1) for k, v in arms.steps.items()},
    )
    tool_failed = sum(int(v) for v in arms.extra["tool"]["failed"])
    return 0 if tool_failed == 0 and not result["tool"].failures else 1


if __name__ == "__main__":
    sys.exit(main())
