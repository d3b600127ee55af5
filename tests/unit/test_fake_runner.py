"""FakeRunner and the parallel helpers."""

from __future__ import annotations

import re
import threading

import pytest

from bluegreen.domain.command import Command
from bluegreen.errors import TransportError
from bluegreen.transport.base import CommandResult, Runner
from bluegreen.transport.fake import Call, FakeRunner, Reply
from bluegreen.transport.parallel import parallel, run_parallel

STATUS = Command.of("systemctl", "is-active", "app", mutating=False)
RESTART = Command.of("systemctl", "restart", "app")


def test_is_a_runner() -> None:
    runner: Runner = FakeRunner()
    assert runner is not None


def test_exact_line_match_returns_scripted_result() -> None:
    fake = FakeRunner()
    fake.on("systemctl is-active app", host="blue", stdout="active\n")
    result = fake.run("blue", STATUS)
    assert result == CommandResult("blue", "systemctl is-active app", 0, "active\n", "", 0.0)
    assert result.ok


def test_command_regex_and_predicate_matchers() -> None:
    fake = FakeRunner()
    fake.on(RESTART, stdout="by command")
    fake.on(re.compile(r"^git "), stdout="by regex")
    fake.on(lambda c: c.argv[:1] == ("curl",), stdout="by predicate")
    assert fake.run("x", RESTART).stdout == "by command"
    assert fake.run("x", Command.of("git", "fetch")).stdout == "by regex"
    assert fake.run("x", Command.of("curl", "-fsS", "http://a")).stdout == "by predicate"


def test_host_scoping() -> None:
    fake = FakeRunner()
    fake.on(STATUS.render(), host="blue", stdout="blue")
    fake.on(STATUS.render(), stdout="anyone")
    assert fake.run("blue", STATUS).stdout == "blue"
    assert fake.run("green", STATUS).stdout == "anyone"


def test_first_rule_wins_and_times_scripts_a_sequence() -> None:
    fake = FakeRunner()
    fake.on(STATUS.render(), exit_status=3, stdout="activating", times=2)
    fake.on(STATUS.render(), stdout="active")
    statuses = [fake.run("blue", STATUS).exit_status for _ in range(4)]
    assert statuses == [3, 3, 0, 0]


def test_raises_and_respond() -> None:
    fake = FakeRunner()
    fake.on(RESTART, host="green", raises=TransportError("gone", host="green"))
    fake.on(STATUS, respond=lambda host, cmd: Reply(stdout=f"{host}:{cmd.argv[-1]}", exit_status=4))
    with pytest.raises(TransportError, match="gone"):
        fake.run("green", RESTART)
    result = fake.run("blue", STATUS)
    assert (result.stdout, result.exit_status) == ("blue:app", 4)


def test_unmatched_command_is_an_assertion_naming_it() -> None:
    fake = FakeRunner()
    fake.on("true", host="blue")
    with pytest.raises(AssertionError) as info:
        fake.run("green", Command.of("rm", "-rf", "/opt/app"))
    message = str(info.value)
    assert "green" in message
    assert "rm -rf /opt/app" in message
    assert "blue: 'true'" in message
    assert fake.commands() == ["rm -rf /opt/app"]  # recorded even though unmatched


def test_default_reply() -> None:
    fake = FakeRunner(default=Reply(exit_status=1, stderr="nope"))
    result = fake.run("blue", STATUS)
    assert (result.exit_status, result.stderr) == (1, "nope")


def test_result_masks_secrets_but_matching_uses_the_real_line() -> None:
    fake = FakeRunner()
    command = Command.of("curl", "-H", "token: s3cret", secrets=("s3cret",))
    fake.on(command.render(), stdout="ok")
    result = fake.run("blue", command)
    assert "s3cret" not in result.command
    assert fake.calls[0].command is command


def test_records_every_call_in_order_with_kind() -> None:
    fake = FakeRunner(default=Reply())
    fake.put_file("haproxy", "/etc/haproxy/haproxy.cfg", "cfg")
    fake.read_file("haproxy", "/etc/haproxy/haproxy.cfg")
    fake.run("blue", STATUS, timeout=5)
    fake.write_file_atomic("haproxy", "/state.json", b"{}")
    assert [(c.kind, c.host, c.line) for c in fake.calls] == [
        ("read", "haproxy", "/etc/haproxy/haproxy.cfg"),
        ("run", "blue", "systemctl is-active app"),
        ("write", "haproxy", "/state.json"),
    ]
    assert fake.calls[1].timeout == 5
    assert fake.calls[2].data == b"{}"
    assert fake.calls_to("haproxy", "write") == [fake.calls[2]]
    assert fake.commands("blue") == ["systemctl is-active app"]
    fake.reset_calls()
    assert fake.calls == []


def test_assert_read_only() -> None:
    fake = FakeRunner(default=Reply())
    fake.run("blue", STATUS)
    fake.read_file("blue", "/x")
    fake.assert_read_only("blue")
    fake.run("blue", RESTART)
    fake.write_file_atomic("blue", "/y", b"")
    with pytest.raises(AssertionError) as info:
        fake.assert_read_only("blue")
    assert "run: systemctl restart app" in str(info.value)
    assert "write: /y" in str(info.value)
    fake.assert_read_only("green")
    assert [c.kind for c in fake.mutating_calls("blue")] == ["run", "write"]


def test_call_mutating_flag() -> None:
    assert not Call("read", "h", "/p").mutating
    assert Call("write", "h", "/p").mutating
    assert Call("run", "h", "x", command=RESTART).mutating
    assert not Call("run", "h", "x", command=STATUS).mutating


def test_file_system_modes() -> None:
    fake = FakeRunner()
    assert fake.read_file("h", "/missing") is None
    fake.put_file("h", "/secret", b"a", mode=0o600)
    fake.write_file_atomic("h", "/secret", b"b", mode=0o644)
    assert (fake.file("h", "/secret"), fake.file_mode("h", "/secret")) == (b"b", 0o600)
    fake.write_file_atomic("h", "/new", b"n")
    assert fake.file_mode("h", "/new") == 0o644
    fake.write_file_atomic("h", "/new2", b"n", mode=0o640)
    assert fake.file_mode("h", "/new2") == 0o640
    assert fake.read_file("other", "/secret") is None
    fake.remove_file("h", "/secret")
    assert fake.file("h", "/secret") is None


def test_file_faults() -> None:
    fake = FakeRunner()
    fake.put_file("h", "/f", b"old")
    fake.fail_file("h", "/f", TransportError("disk full", host="h"), kind="write", times=1)
    with pytest.raises(TransportError):
        fake.write_file_atomic("h", "/f", b"new")
    assert fake.read_file("h", "/f") == b"old"  # reads unaffected, content unchanged
    fake.write_file_atomic("h", "/f", b"new")  # the fault was used up
    assert fake.file("h", "/f") == b"new"
    fake.fail_file("h", "/f", PermissionError("x"))
    with pytest.raises(PermissionError):
        fake.read_file("h", "/f")


def test_unused_rules_and_close() -> None:
    fake = FakeRunner()
    used = fake.on(STATUS)
    unused = fake.on(RESTART)
    fake.run("h", STATUS)
    assert used.hits == 1
    assert fake.unused_rules() == [unused]
    fake.close()
    assert fake.closed


def test_run_parallel_keeps_order_and_captures_exceptions() -> None:
    fake = FakeRunner()
    barrier = threading.Barrier(3, timeout=5)

    def together(host: str, command: Command) -> Reply:
        barrier.wait()  # proves the three calls really overlap
        return Reply(stdout=host)

    fake.on(STATUS, host="blue", respond=together)
    fake.on(STATUS, host="green", respond=together)
    fake.on(STATUS, host="haproxy", respond=together)
    fake.on(RESTART, raises=TransportError("down", host="blue"))
    calls = [("blue", STATUS), ("green", STATUS), ("haproxy", STATUS), ("blue", RESTART)]
    outcomes = run_parallel(fake, calls)
    assert [o.stdout if isinstance(o, CommandResult) else type(o) for o in outcomes] == [
        "blue",
        "green",
        "haproxy",
        TransportError,
    ]


def test_parallel_generic() -> None:
    def boom() -> int:
        raise ValueError("x")

    outcomes = parallel([lambda: 1, boom, lambda: 3])
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError)
    assert parallel([]) == []
