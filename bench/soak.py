"""Soak benchmark: many approved switches back and forth under load, then the same operations on a
slow, lossy network. Not a timing race: what it measures is whether anything fails, leaks or hangs.

Phase 1, soak: `--switches` approved switches (`Service.switch` with the lab's real settings:
drain, verify, watch) alternating BLUE <-> GREEN while `--threads` clients send requests through
the frontend, one load window per switch. Afterwards, read from the lab's containers directly
(not through the tool): HAProxy's master lists no old worker (after the last drain, within 30 s),
the history holds exactly one `switch` entry per switch, the cfg backups directory holds exactly
`cfg_backups` files.

Phase 2, slow network (`--slow`): the tool's SSH connections to every lab host go through a relay
that adds `--delay-ms` one way (200) and stalls `--loss` (2%) of the chunks as long as a TCP
retransmission would (bench/slow_link.py; this machine's kernel has no `tc netem`), then
`--slow-rounds` rounds of status, deploy of a new commit, and an approved switch. Each call must end
(with a result or an error that says why) within a bound derived from the configured timeouts; a
deploy or switch must complete or roll back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import add_lab_arguments, measure_in_lab, print_header, say
from bench.slow_link import LinkShape, SlowLink
from bluegreen.domain.config import Config, load_config
from bluegreen.domain.runtime import parse_show_proc
from bluegreen.errors import BlueGreenError
from bluegreen.lab.controller import Lab
from bluegreen.lab.load import Load
from bluegreen.models import SwitchPlan
from bluegreen.service import Approver, Service

APP = "jw-attendant"
SOAK_PREFIX = "bluegreen-bench-soak"


def _yes(_plan: SwitchPlan) -> bool:
    return True


YES = Approver(who="bench.soak", ask=_yes)


@dataclass
class Soak:
    switches: int = 0
    ok: int = 0
    requests: int = 0
    failed: int = 0
    stale_retries: int = 0
    durations_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    old_workers: int = -1
    history_switches: int = -1
    backups: int = -1
    backups_expected: int = -1


@dataclass
class Call:
    what: str
    seconds: float
    bound_s: float
    outcome: str

    @property
    def hung(self) -> bool:
        return self.seconds > self.bound_s


def _exec(lab: Lab, role: str, command: str) -> str:
    return lab.exec(role, ["sh", "-c", command])


def _count_history_switches(lab: Lab, work_dir: str) -> int:
    text = _exec(lab, "haproxy", f"cat {work_dir}/history/{APP}.jsonl 2>/dev/null || true")
    count = 0
    for line in text.split("\n"):
        with contextlib.suppress(ValueError):
            count += json.loads(line).get("operation") == "switch"
    return count


def _old_workers(lab: Lab, master_socket: str, wait_s: float = 30.0) -> int:
    deadline = time.monotonic() + wait_s
    while True:
        out = _exec(lab, "haproxy", f"echo 'show proc' | socat stdio {master_socket}")
        old = parse_show_proc(out).old_worker_pids
        if not old or time.monotonic() >= deadline:
            return len(old)
        time.sleep(0.5)


def soak(args: argparse.Namespace, info: Any, config: Config, service: Service) -> Soak:
    lab = Lab(info.prefix, Path(info.state_dir))
    app = config.app(APP)
    hp = config.haproxy
    url = info.frontend + app.health.path
    out = Soak(backups_expected=hp.cfg_backups)
    before = _count_history_switches(lab, hp.work_dir)
    for index in range(args.switches):
        started = time.monotonic()
        with Load(url, threads=args.threads) as load:
            time.sleep(0.2)
            try:
                result = service.switch(APP, approver=YES)
                good = result.ok
                error = result.error or ""
            except BlueGreenError as exc:
                good, error = False, str(exc)
            time.sleep(0.3)  # requests after the call returned count too
        samples = load.snapshot()
        out.switches += 1
        out.ok += int(good)
        out.requests += len(samples)
        out.failed += sum(1 for s in samples if s.error)
        out.stale_retries += load.stale_retries
        out.durations_s.append(time.monotonic() - started)
        if not good:
            out.errors.append(f"switch {index + 1}: {error}")
        if (index + 1) % 10 == 0 or not good:
            say(f"soak: {index + 1}/{args.switches} switches, {out.failed} failed requests "
                f"of {out.requests}, {out.switches - out.ok} failed switches")  # fmt: skip
    assert hp.master_socket is not None
    out.old_workers = _old_workers(lab, hp.master_socket)
    out.history_switches = _count_history_switches(lab, hp.work_dir) - before
    listing = _exec(lab, "haproxy", f"ls -1 {hp.work_dir}/cfg-backups 2>/dev/null || true")
    out.backups = sum(1 for name in listing.split() if name.startswith("haproxy.cfg."))
    return out


@contextlib.contextmanager
def slow_service(info: Any, shape: LinkShape) -> Iterator[tuple[Service, list[SlowLink]]]:
    """A Service whose SSH connections to every lab host go through a slow link: the lab's config
    and known_hosts, with each host's address replaced by its relay's."""
    state = Path(info.state_dir)
    text = Path(info.config_path).read_text()
    known = (state / "known_hosts").read_text()
    with contextlib.ExitStack() as stack:
        links = []
        for role in ("haproxy", "blue", "green"):
            address = info.hosts[role].ssh
            link = stack.enter_context(SlowLink(address, shape))
            links.append(link)
            text = text.replace(f'@{address}"', f'@{link.address}"')
            host, _, port = address.rpartition(":")
            for line in known.splitlines():
                if line.startswith(f"[{host}]:{port} "):
                    known += line.replace(f"[{host}]:{port} ", f"[{host}]:{link.port} ", 1) + "\n"
        (state / "known_hosts.slow").write_text(known)
        text = text.replace(str(state / "known_hosts"), str(state / "known_hosts.slow"))
        slow_config = state / "bluegreen.slow.toml"
        slow_config.write_text(text)
        with Service(load_config(str(slow_config))) as service:
            yield service, links


def _timed(what: str, bound_s: float, action: Callable[[], str]) -> Call:
    started = time.monotonic()
    try:
        outcome = action()
    except BlueGreenError as exc:
        outcome = f"error: {exc}"
    seconds = time.monotonic() - started
    call = Call(what, round(seconds, 2), bound_s, outcome[:160])
    say(f"slow link: {what}: {call.seconds:.1f}s (bound {bound_s:.0f}s): {call.outcome}")
    return call


def slow_network(args: argparse.Namespace, info: Any, config: Config) -> list[Call]:
    lab = Lab(info.prefix, Path(info.state_dir))
    ssh = config.ssh
    app = config.app(APP)
    # What each call may take at most by its configured timeouts (each host's connect, then the
    # longest command it may wait for), with room for the retries a lossy link causes.
    status_bound = 2 * ssh.connect_timeout_s + 3 * app.health.timeout_s + 30
    deploy_bound = 2 * ssh.connect_timeout_s + ssh.command_timeout_s
    switch_bound = 2 * ssh.connect_timeout_s + 60 + 60 + 15 + app.drain_s + app.watch_s + 30 + 60
    shape = LinkShape(delay_s=args.delay_ms / 1000, loss=args.loss)
    calls: list[Call] = []
    with slow_service(info, shape) as (service, links):

        def status() -> str:
            s = service.status(APP)
            return f"certain={s.certain} live={s.live.color if s.live else None}"

        def deploy() -> str:
            r = service.deploy(APP)
            return f"ok={r.ok} restored={r.restored} {r.error or ''}"

        def switch() -> str:
            r = service.switch(APP, approver=YES)
            return f"ok={r.ok} rolled_back={r.rolled_back or r.auto_rollback} {r.error or ''}"

        for _ in range(args.slow_rounds):
            calls.append(_timed("status", status_bound, status))
            lab.commit()
            calls.append(_timed("deploy", deploy_bound, deploy))
            calls.append(_timed("switch", switch_bound, switch))
        stalls = sum(link.stalls for link in links)
        chunks = sum(link.chunks for link in links)
        say(f"slow link: {chunks} chunks relayed, {stalls} stalled ({shape.stall_s:.1f}s each)")
    return calls


def run(args: argparse.Namespace, info: Any) -> dict[str, Any]:
    config = load_config(info.config_path)
    with Service(config) as service:
        service.status(APP)
        result: dict[str, Any] = {"soak": soak(args, info, config, service)}
    if args.slow:
        result["slow"] = slow_network(args, info, config)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=(__doc__ or "").split("\n")[0]
    )
    add_lab_arguments(parser)
    parser.set_defaults(prefix=SOAK_PREFIX)
    parser.add_argument("--switches", type=int, default=200, help="switches (default 200)")
    parser.add_argument("--threads", type=int, default=4, help="load threads (default 4)")
    parser.add_argument("--slow", action="store_true", help="also run the slow-network phase")
    parser.add_argument("--slow-rounds", type=int, default=3, help="status/deploy/switch rounds")
    parser.add_argument("--delay-ms", type=float, default=200.0, help="one-way delay (200)")
    parser.add_argument("--loss", type=float, default=0.02, help="fraction of chunks stalled")
    args = parser.parse_args(argv)
    if args.switches < 1 or args.threads < 1 or args.slow_rounds < 1:
        parser.error("--switches, --threads and --slow-rounds must be at least 1")

    measured = measure_in_lab(args, run)
    s: Soak = measured.result["soak"]
    print_header("bluegreen soak benchmark", measured)
    durations = sorted(s.durations_s)
    checks = [
        ("switches ok", f"{s.ok}/{s.switches}", s.ok == s.switches),
        ("failed requests", f"{s.failed} of {s.requests} ({s.stale_retries} stale retries)",
         s.failed == 0),
        ("old HAProxy workers after the last drain", str(s.old_workers), s.old_workers == 0),
        ("history switch entries", f"{s.history_switches} (expected {s.switches})",
         s.history_switches == s.switches),
        ("cfg backups kept", f"{s.backups} (expected {min(s.backups_expected, s.switches)})",
         s.backups == min(s.backups_expected, s.switches)),
        ("switch round median / max", f"{durations[len(durations) // 2]:.1f}s / "
         f"{durations[-1]:.1f}s", True),
    ]  # fmt: skip
    calls: list[Call] = measured.result.get("slow", [])
    for call in calls:
        settled = call.what == "status" or "ok=True" in call.outcome or "rolled_back=True" in (
            call.outcome) or "restored=True" in call.outcome  # fmt: skip
        checks.append((f"slow link {call.what}", f"{call.seconds:.1f}s <= {call.bound_s:.0f}s: "
                       f"{call.outcome[:70]}", not call.hung and settled))  # fmt: skip
    width = max(len(name) for name, _, _ in checks)
    for name, value, passed in checks:
        print(f"{name:<{width}}  {'PASS' if passed else 'FAIL'}  {value}")
    for error in s.errors[:5]:
        print(f"  {error}")
    return 0 if all(passed for _, _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
