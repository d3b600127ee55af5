"""Status benchmark: `python -m bench.status [--reuse] [--keep] [--json PATH] [--profile]`.

Brings up its own lab (prefix bluegreen-bench), then measures in interleaved rounds:

1. warm status: `service.status(app)` on a warm connection pool, vs one raw SSH round trip
   (`true` over an open plain-paramiko connection to the HAProxy host). Target <= 1.5x.
2. cold first status: a fresh Service (new runner, empty pool) doing its first status, vs one raw
   paramiko connect (known_hosts, RejectPolicy, the lab key) plus one command. Target <= 1.5x.
3. scale: status of N apps (default 10, same hosts, own state files) with `status_many` (what the
   CLI and MCP tool do) vs 1 app. Target <= 2x.
4. shared frontend: the same on the users' layout, N apps routed by Host on one frontend
   (bench/shared_frontend.py, added to the lab's haproxy.cfg for the run), vs 1 of them. Target
   <= 1.5x.

Informational rows show what the baseline and the status are made of: the runner's own `true`,
and "the same reads, raw": the status' remote work done with plain paramiko and nothing around it
(the snapshot script on the HAProxy host, the two health GETs over its direct-tcpip channels and
the two `git log`s, all at once), so `status / raw reads` is what the tool adds; and the OpenSSH
client's `ssh host true` over a warm ControlMaster, what asking the host by hand costs. Every status
result is checked: a status whose reads failed (an unreachable host, a refused channel) is
counted as an error, because a fast wrong answer is not a fast answer.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import shared_frontend
from bench.common import (
    APP,
    Comparison,
    RawTarget,
    Series,
    ThreadProfiler,
    add_lab_arguments,
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
    raw_connect,
    raw_exec,
    say,
)
from bench.shared_frontend import toml_table
from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, load_config
from bluegreen.domain.deploy_commands import server_health_url
from bluegreen.domain.deployed_commit import deployed_command
from bluegreen.domain.lock import holder_path
from bluegreen.domain.probe import http_get_request, parse_http_url
from bluegreen.domain.snapshot import snapshot_command
from bluegreen.models import AppStatus
from bluegreen.service import Service, ssh_runner_for
from bluegreen.transport.base import CommandResult, Exchange, Runner, TcpRequest

# --- checking results ------------------------------------------------------------------------


def status_errors(status: AppStatus) -> list[str]:
    """What in a status says a read failed (as opposed to what the lab really looks like).

    The fresh lab has no state file, so the drift it reports is expected; anything else that is
    not drift (unreachable host, failed probe, runtime API error, unreadable cfg) is an error.
    """
    expected = {d.message for d in status.drift}
    errors = [p for p in status.problems if p not in expected]
    if status.runtime_error and status.runtime_error not in errors:
        errors.append(status.runtime_error)
    if not status.certain and not errors:
        errors.append("routing is not certain")
    return errors


@dataclass
class ErrorLog:
    """Bad status results per metric, with a few distinct messages to show."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    messages: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def check(self, metric: str, results: list[AppStatus]) -> None:
        for status in results:
            self.checked[metric] += 1
            errors = status_errors(status)
            if errors:
                self.counts[metric] += 1
                for message in errors:
                    short = message.splitlines()[0][:160]
                    if short not in self.messages[metric] and len(self.messages[metric]) < 3:
                        self.messages[metric].append(short)


# --- the 10-app config -----------------------------------------------------------------------


def write_multi_app_config(lab_config: str, apps: int, directory: Path) -> tuple[Path, list[str]]:
    """The lab's config with its one app copied `apps` times as jw-attendant-0..N-1, each with its
    own state file, all on the same hosts and frontend."""
    data = tomllib.loads(Path(lab_config).read_text())
    template = data["apps"][APP]
    names = [f"{APP}-{i}" for i in range(apps)]
    lines = [f"# {apps} copies of the lab's {APP}, written by bench.status"]
    lines += toml_table("ssh", data["ssh"])
    lines += toml_table("haproxy", data["haproxy"])
    for name in names:
        app = {k: v for k, v in template.items() if k != "servers"}
        state = Path(template["state_file"])
        app["state_file"] = str(state.with_name(f"{state.stem}-{name}{state.suffix}"))
        lines += toml_table(f"apps.{name}", app)
        for color, server in template["servers"].items():
            lines += toml_table(f"apps.{name}.servers.{color}", server)
    path = directory / f"bluegreen-{apps}-apps.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, names


# --- where the time of one status goes -------------------------------------------------------


class TimingRunner:
    """A Runner that records how long each call of the wrapped runner took (wall clock)."""

    def __init__(
        self, inner: Runner, names: dict[str, str] | None = None, *, serial: bool = False
    ) -> None:
        self.inner = inner
        self.names = names or {}  # ssh target -> short name for labels
        self.calls: list[tuple[str, float]] = []
        self._serial = threading.Lock() if serial else None

    def _host(self, host: str) -> str:
        return self.names.get(host, host)

    def _record(self, label: str, fn: Callable[[], Any]) -> Any:
        with self._serial or contextlib.nullcontext():
            start = now()
            try:
                return fn()
            finally:
                self.calls.append((label, ms_since(start)))

    def run(self, host: str, command: Command, *, timeout: float | None = None) -> CommandResult:
        label = f"{self._host(host)}: {_command_label(command)}"
        result: CommandResult = self._record(
            label, lambda: self.inner.run(host, command, timeout=timeout)
        )
        return result

    def read_file(self, host: str, path: str) -> bytes | None:
        data: bytes | None = self._record(
            f"{self._host(host)}: sftp read {Path(path).name}",
            lambda: self.inner.read_file(host, path),
        )
        return data

    def exchange(self, host: str, request: TcpRequest) -> Exchange:
        data: Exchange = self._record(
            f"{self._host(host)}: tcp GET via ssh {request.where}",
            lambda: self.inner.exchange(host, request),
        )
        return data

    def write_file_atomic(
        self, host: str, path: str, data: bytes, *, mode: int | None = None
    ) -> None:
        self._record(
            f"{self._host(host)}: write {Path(path).name}",
            lambda: self.inner.write_file_atomic(host, path, data, mode=mode),
        )

    def close(self) -> None:
        self.inner.close()


def _command_label(command: Command) -> str:
    argv = command.argv
    if argv[:1] == ("socat",) and command.stdin:
        return "socat " + command.stdin.decode().strip()
    if argv[:2] == ("sh", "-c") and len(argv) > 3:
        if argv[3] == "bluegreen-snapshot":
            return "snapshot (cfg, state, lock, runtime API, clocks)"
        if "git" in argv[2]:
            return "git log (deployed)"
    if argv[:1] == ("curl",):
        return f"curl {argv[-1]}"
    return " ".join(argv[:2]) or "sh -c snippet"


BREAKDOWN_VARIANTS = (
    # label, seconds between statuses, reads one at a time
    ("back to back", 0.0, False),
    ("0.1s apart", 0.1, False),
    ("serial", 0.1, True),
)


def breakdown(config: Config, rounds: int) -> tuple[str, dict[str, Any]]:
    """Median wall time of each read inside a warm status, under a few conditions: back to back
    or spaced, and with the
    reads serialized (each read alone: its own cost, without the others competing)."""
    names = {config.haproxy.ssh: "haproxy"}
    for app in config.apps.values():
        names.update({m.ssh: color for color in app.servers for m in app.members(color)})
    columns: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    cpu_ms: dict[str, float] = {}
    for label, gap, serial in BREAKDOWN_VARIANTS:
        runner = TimingRunner(ssh_runner_for(config), names, serial=serial)
        service = Service(config, runner=runner)
        per_call: dict[str, list[float]] = defaultdict(list)
        elapsed: list[float] = []
        cpu: list[float] = []
        try:
            service.status(APP)  # warm the pool
            for _ in range(rounds):
                time.sleep(gap)
                runner.calls.clear()
                cpu_start = time.process_time()
                ms, _status = _timed_status(service, APP)
                cpu.append((time.process_time() - cpu_start) * 1000)
                elapsed.append(ms)
                for read, took in runner.calls:
                    per_call[read].append(took)
        finally:
            service.close()
        columns[label] = {read: median(v) for read, v in per_call.items()}
        totals[label] = median(elapsed)
        cpu_ms[label] = median(cpu)
    first = columns[BREAKDOWN_VARIANTS[0][0]]
    reads = sorted(first, key=lambda read: -first[read])
    heads = [v[0] for v in BREAKDOWN_VARIANTS]
    body = [[read, *(fmt_ms(columns[h].get(read, math.nan), 1) for h in heads)] for read in reads]
    body.append(["status total", *(fmt_ms(totals[h], 1) for h in heads)])
    body.append(["local CPU, all threads", *(fmt_ms(cpu_ms[h], 1) for h in heads)])
    payload = {
        "rounds": rounds,
        "variants": [
            {"label": label, "gap_s": gap, "serial": serial}
            for label, gap, serial in BREAKDOWN_VARIANTS
        ],
        "status_median_ms": {h: round(totals[h], 3) for h in heads},
        "local_cpu_median_ms": {h: round(cpu_ms[h], 3) for h in heads},
        "reads_median_ms": {
            h: {read: round(ms, 3) for read, ms in columns[h].items()} for h in heads
        },
    }
    return format_grid(["read (median ms)", *heads], body), payload


def _timed_status(service: Service, app: str) -> tuple[float, AppStatus]:
    start = now()
    status = service.status(app)
    return ms_since(start), status


# --- the benchmark ---------------------------------------------------------------------------


class Arms:
    """The measured things of one run: each method times itself and returns milliseconds."""

    def __init__(self, config: Config, lab_config: str, targets: dict[str, RawTarget]) -> None:
        self.config = config
        self.lab_config = lab_config
        self.targets = targets
        self.hp = config.haproxy.ssh
        self.results: dict[str, list[AppStatus]] = defaultdict(list)
        self.closers: list[Callable[[], object]] = []
        self.true = Command.of("true", mutating=False)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()

    def service(self, config: Config, runner: Runner | None = None) -> Service:
        service = Service(config, runner=runner)
        self.closers.append(service.close)
        return service

    def raw_client(self, role: str, nodelay: bool = False) -> Any:
        client = raw_connect(self.targets[role], nodelay=nodelay)
        self.closers.append(client.close)
        return client

    def pool(self, workers: int) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench")
        self.closers.append(pool.shutdown)
        return pool

    # -- arms ----------------------------------------------------------------------------------

    def status(self, key: str, service: Service, app: str = APP) -> Callable[[], float]:
        def arm() -> float:
            start = now()
            status = service.status(app)
            elapsed = ms_since(start)
            self.results[key].append(status)
            return elapsed

        return arm

    def raw_true(self, client: Any) -> Callable[[], float]:
        def arm() -> float:
            start = now()
            raw_exec(client)
            return ms_since(start)

        return arm

    def openssh_true(self, control_dir: Path) -> Callable[[], float]:
        """`ssh host true` with the OpenSSH client over a warm ControlMaster connection: what
        a person asking the host by hand waits for (the client process included)."""
        target = self.targets["haproxy"]
        argv = [
            "ssh", "-p", str(target.port), "-i", target.key_path,
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={target.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/cm-%C",
            "-o", "ControlPersist=300", f"{target.username}@{target.hostname}", "true",
        ]  # fmt: skip
        self.closers.append(
            lambda: subprocess.run(
                [*argv[:-1], "-O", "exit"], capture_output=True, timeout=10, check=False
            )
        )

        def arm() -> float:
            start = now()
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
            return ms_since(start)

        return arm

    def raw_reads(self, clients: dict[str, Any], pool: ThreadPoolExecutor) -> Callable[[], float]:
        """The status' remote work with plain paramiko and nothing around it: the snapshot
        script on the HAProxy host, a health GET to each server over the HAProxy host's
        direct-tcpip channels, and `git log` on each app host, all at once."""
        hp = self.config.haproxy
        app = self.config.app(APP)
        files = [hp.config_path, app.state_file, holder_path(hp.work_dir, APP)]
        snapshot = snapshot_command(hp.config_path, hp.runtime_socket, files).render()
        git = deployed_command(app.app_dir).render()
        gets = []
        for color in app.servers:
            (member,) = app.members(color)
            target = parse_http_url(server_health_url(app, member))
            assert target is not None
            gets.append((target, http_get_request(target)))

        def get(item: tuple[Any, bytes]) -> None:
            target, request = item
            transport = clients["haproxy"].get_transport()
            channel = transport.open_channel(
                "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=10
            )
            try:
                channel.sendall(request)
                answer = b""
                while chunk := channel.recv(65536):
                    answer += chunk
            finally:
                channel.close()
            if not answer.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"health GET answered {answer[:40]!r}")

        jobs: list[Callable[[], None]] = [
            lambda: raw_exec(clients["haproxy"], snapshot),
            *(lambda item=item: get(item) for item in gets),
            *(lambda c=c: raw_exec(clients[c], git) for c in app.servers),
        ]

        def arm() -> float:
            start = now()
            for future in [pool.submit(job) for job in jobs]:
                future.result()
            return ms_since(start)

        return arm

    def runner_true(self, service: Service) -> Callable[[], float]:
        def arm() -> float:
            start = now()
            result = service.runner.run(self.hp, self.true)
            elapsed = ms_since(start)
            if not result.ok:
                raise RuntimeError(f"`true` exited {result.exit_status}")
            return elapsed

        return arm

    def cold_status(self, key: str) -> Callable[[], float]:
        def arm() -> float:
            start = now()
            service = Service.from_path(self.lab_config)
            try:
                status = service.status(APP)
                elapsed = ms_since(start)
            finally:
                service.close()
            self.results[key].append(status)
            return elapsed

        return arm

    def cold_raw(self) -> Callable[[], float]:
        def arm() -> float:
            start = now()
            client = raw_connect(self.targets["haproxy"])
            try:
                raw_exec(client)
                elapsed = ms_since(start)
            finally:
                client.close()
            return elapsed

        return arm

    def many(
        self,
        key: str,
        service: Service,
        apps: list[str],
        pool: ThreadPoolExecutor | None,
        *,
        batched: bool = False,
    ) -> Callable[[], float]:
        def arm() -> float:
            start = now()
            if batched:
                results = service.status_many(apps)  # the CLI's `bluegreen status`: shared reads
            elif pool is None:
                results = [service.status(a) for a in apps]  # one after the other
            else:
                results = list(pool.map(service.status, apps))
            elapsed = ms_since(start)
            self.results[key] += results
            return elapsed

        return arm


def run(args: argparse.Namespace, info: Any) -> dict[str, Any]:
    lab_config = info.config_path
    config = load_config(lab_config)
    state = Path(info.state_dir)
    app = config.app(APP)
    ssh_of = {"haproxy": config.haproxy.ssh, **{c: app.members(c)[0].ssh for c in app.servers}}
    targets = {
        role: RawTarget.of(ssh, key_path=state / "id_ed25519", known_hosts=state / "known_hosts")
        for role, ssh in ssh_of.items()
    }
    arms = Arms(config, lab_config, targets)
    rows: list[Comparison] = []
    workdir = Path(tempfile.mkdtemp(prefix="bluegreen-bench-status-"))
    try:
        # -- 1. warm --------------------------------------------------------------------------
        warm = arms.service(config)
        raw = arms.raw_client("haproxy")
        # The raw reads get connections of their own: channels of the other raw arm may still
        # hold sshd session slots.
        # TCP_NODELAY as the tool's transport has: this arm is the floor of the same work.
        readers = {role: arms.raw_client(role, nodelay=True) for role in ("haproxy", *app.servers)}
        pool = arms.pool(8)
        raw_reads = arms.raw_reads(readers, pool)
        openssh = arms.openssh_true(workdir)
        for _ in range(3):  # warm-up, not recorded: pools connected, first-channel costs paid
            warm.status(APP)
            warm.runner.run(config.haproxy.ssh, arms.true)
            raw_exec(raw)
            raw_reads()
            openssh()

        s_status = Series("warm service.status")
        s_raw = Series("raw paramiko `true` on an open connection (HAProxy host)")
        s_runner = Series("SSHRunner.run(`true`), warm pool")
        s_reads = Series("raw paramiko: the status' reads at once (snapshot, 2 GETs, 2 git log)")
        s_openssh = Series("OpenSSH client `ssh host true`, warm ControlMaster")
        say(f"warm: {args.warm} rounds")
        interleave(
            args.warm,
            [
                (s_status, arms.status("warm", warm)),
                (s_raw, arms.raw_true(raw)),
                (s_runner, arms.runner_true(warm)),
                (s_reads, raw_reads),
                (s_openssh, openssh),
            ],
        )
        arms.close()
        rows += [
            Comparison("warm status vs raw `true`", s_status, s_raw, 1.5, ("warm",)),
            Comparison("  info: runner `true` vs raw `true`", s_runner, s_raw, None),
            Comparison("  info: the same reads, raw, vs raw `true`", s_reads, s_raw, None),
            Comparison(
                "  info: warm status vs the same reads, raw", s_status, s_reads, None, ("warm",)
            ),
            Comparison("  info: OpenSSH `ssh host true` vs raw `true`", s_openssh, s_raw, None),
            Comparison(
                "  info: warm status vs OpenSSH `ssh host true`",
                s_status,
                s_openssh,
                None,
                ("warm",),
            ),
        ]

        # -- 2. cold --------------------------------------------------------------------------
        c_status = Series("fresh Service.from_path + first status")
        c_raw = Series("raw paramiko connect + `true` (HAProxy host)")
        say(f"cold: {args.cold} rounds")
        interleave(
            args.cold,
            [(c_status, arms.cold_status("cold")), (c_raw, arms.cold_raw())],
        )
        rows.append(
            Comparison("cold first status vs raw connect+`true`", c_status, c_raw, 1.5, ("cold",))
        )

        # -- 3. scale -------------------------------------------------------------------------
        multi_path, names = write_multi_app_config(lab_config, args.apps, workdir)
        multi_config = load_config(str(multi_path))
        multi = arms.service(multi_config)
        app_pool = arms.pool(len(names))
        n = args.apps
        one = Series(f"status of 1 app ({names[0]})")
        many = Series(f"status of {n} apps with Service.status_many (the CLI, MCP): one read round")
        seq = Series(f"status of {n} apps, one after the other")
        conc = Series(f"status of {n} apps at once, one thread per app, one Service")
        multi.status_many(names)  # warm-up, not recorded
        say(f"scale: {args.scale} rounds of 1 / {n} with status_many / sequential / concurrent")
        interleave(
            args.scale,
            [
                (one, arms.status("1 app", multi, names[0])),
                (many, arms.many("status_many", multi, names, None, batched=True)),
                (seq, arms.many("sequential", multi, names, None)),
                (conc, arms.many("concurrent", multi, names, app_pool)),
            ],
        )
        arms.close()
        rows += [
            Comparison(
                f"scale: {n} apps status_many (the CLI) vs 1",
                many,
                one,
                2.0,
                ("status_many", "1 app"),
            ),
            Comparison(
                f"  info: {n} apps one after the other vs 1",
                seq,
                one,
                None,
                ("sequential", "1 app"),
            ),
            Comparison(
                f"  info: {n} apps, a thread each, vs 1", conc, one, None, ("concurrent", "1 app")
            ),
        ]

        # -- 4. shared frontend ----------------------------------------------------------------
        rows.append(_shared_row(args, info, arms, workdir))

        errors = ErrorLog()
        for key, results in arms.results.items():
            errors.check(key, results)
        for row in rows:
            failed = len(row.tool.failures) + len(row.baseline.failures)
            row.errors = sum(errors.counts.get(k, 0) for k in row.sources) + failed
            row.checked = sum(errors.checked.get(k, 0) for k in row.sources) + failed
            if not row.sources:  # raw rows: every attempt counts
                row.checked += row.tool.n + row.baseline.n

        where, where_json = breakdown(config, args.breakdown)
        profile_text = _profile(config, args.profile) if args.profile else None
    finally:
        arms.close()
        shutil.rmtree(workdir, ignore_errors=True)

    series = {s.name: s for row in rows for s in (row.tool, row.baseline)}
    return {
        "rows": rows,
        "series": series,
        "errors": errors,
        "breakdown": where,
        "breakdown_json": where_json,
        "profile": profile_text,
    }


def _shared_row(args: argparse.Namespace, info: Any, arms: Arms, workdir: Path) -> Comparison:
    from bluegreen.lab.controller import Lab

    apps = shared_frontend.names(args.apps)
    config = load_config(str(shared_frontend.write_shared_config(info.config_path, apps, workdir)))
    with shared_frontend.added_to_lab(Lab(info.prefix, Path(info.state_dir)), apps):
        service = arms.service(config)
        one = Series(f"status of 1 app on the shared frontend ({apps[0]})")
        many = Series(f"status of {len(apps)} apps on the shared frontend, status_many")
        service.status_many(apps)  # warm-up, not recorded
        say(f"shared frontend: {args.scale} rounds of 1 / {len(apps)} apps with status_many")
        interleave(
            args.scale,
            [
                (one, arms.status("shared 1 app", service, apps[0])),
                (many, arms.many("shared status_many", service, apps, None, batched=True)),
            ],
        )
        arms.close()
    return Comparison(
        f"shared frontend: {len(apps)} apps status_many vs 1",
        many,
        one,
        1.5,
        ("shared status_many", "shared 1 app"),
    )


def _profile(config: Config, rounds: int) -> str:
    service = Service(config)
    try:
        service.status(APP)
        with ThreadProfiler() as profiler:
            for _ in range(rounds):
                service.status(APP)
    finally:
        service.close()
    return profiler.report(top=25, sort="tottime")


# --- output and entry point ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.status", description=(__doc__ or "").split("\n")[0]
    )
    add_lab_arguments(parser)
    parser.add_argument("--warm", type=int, default=30, help="warm rounds (default %(default)s)")
    parser.add_argument("--cold", type=int, default=8, help="cold rounds (default %(default)s)")
    parser.add_argument("--scale", type=int, default=10, help="scale rounds (default %(default)s)")
    parser.add_argument("--apps", type=int, default=10, help="apps in the scale test (default 10)")
    parser.add_argument(
        "--breakdown", type=int, default=10, help="warm statuses timed per read (default 10)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=20,
        default=0,
        metavar="N",
        help="cProfile N (default 20) warm statuses across threads and print the top costs",
    )
    args = parser.parse_args(argv)
    if min(args.warm, args.cold, args.scale, args.breakdown) < 1 or args.apps < 2:
        parser.error("rounds and --breakdown must be at least 1, --apps at least 2")

    measured = measure_in_lab(args, run)
    result = measured.result
    rows: list[Comparison] = result["rows"]
    errors: ErrorLog = result["errors"]
    notes = _notes(rows, errors, measured.logs.summary())
    print_header("bluegreen status benchmark", measured)
    print()
    print(format_table(rows))
    print()
    print(LEGEND)
    if notes:
        print()
        print("\n".join(notes))
    print()
    print(
        "where a warm status spends its time: each read timed inside the runner (all reads run "
        "at once;\n'serial' runs them one at a time, so each column entry there is that read alone)"
    )
    print(result["breakdown"])
    if result["profile"]:
        print()
        print(f"cProfile of {args.profile} warm statuses, all threads (sorted by own time):")
        print(result["profile"].rstrip())
    finish(
        "status",
        args,
        measured,
        rows,
        series={name: s.to_json() for name, s in result["series"].items()},
        error_messages=dict(errors.messages),
        notes=notes,
        breakdown=result["breakdown_json"],
    )
    return 0


LEGEND = """\
tool      bluegreen Service.status over its SSHRunner (pooled paramiko) on the bench lab
baseline  plain paramiko to the lab's HAProxy host: `true` on an open connection (warm rows),
          connect + `true` (cold rows); the 1-app status of the same Service (scale rows)
ratio     tool median / baseline median; PASS when <= target
ERROR     some status results of that row reported failed reads: its timing is not valid
info      context, no target: what the baseline and the status are made of"""


def _notes(rows: list[Comparison], errors: ErrorLog, logged: list[str]) -> list[str]:
    notes: list[str] = []
    for row in rows:
        if row.verdict == "MISS":
            notes.append(f"MISS   {row.metric.strip()}: {row.ratio:.2f}x, target {row.target:g}x")
    for metric, messages in errors.messages.items():
        notes.append(
            f"ERROR  {errors.counts[metric]}/{errors.checked[metric]} '{metric}' status results "
            "reported failed reads, e.g.:"
        )
        notes += [f"       - {m}" for m in messages]
    seen: set[int] = set()
    for row in rows:
        for series in (row.tool, row.baseline):
            if series.failures and id(series) not in seen:
                seen.add(id(series))
                notes.append(
                    f"FAILED {len(series.failures)} attempts of '{series.name}', e.g. "
                    f"{series.failures[0]}"
                )
    if logged:
        notes.append("paramiko logged (warnings and errors, counted):")
        notes += [f"       {line}" for line in logged]
    return notes


if __name__ == "__main__":
    sys.exit(main())
