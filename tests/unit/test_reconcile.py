from __future__ import annotations

import pytest

from bluegreen.domain.reconcile import FILE, Drift, reconcile
from bluegreen.domain.state_file import parse_state, repaired


def state(live: str = "blue", standby: str = "green", prod: str = "blue", extra: str = "") -> bytes:
    body = f'"prod": "{prod}", "live": "{live}", "standby": "{standby}", "switchCount": 3{extra}'
    return ("{" + body + "}").encode()


def fields(drifts: list[Drift]) -> list[str]:
    return [d.field for d in drifts]


def test_agreement_means_no_drift() -> None:
    assert reconcile("blue", "green", parse_state(state())) == []


@pytest.mark.parametrize(
    ("raw", "truth", "expected"),
    [
        # the whole file on the other side: every colour field drifts
        (state("green", "blue", "green"), ("blue", "green"), ["live", "standby", "prod"]),
        # switched by hand in haproxy.cfg, state file not updated
        (state(), ("green", "blue"), ["live", "standby", "prod"]),
        # only prod is stale (an old tool wrote live/standby but not prod)
        (state(prod="green"), ("blue", "green"), ["prod"]),
        # live and standby equal in the file
        (state("blue", "blue"), ("blue", "green"), ["standby"]),
    ],
)
def test_field_by_field(raw: bytes, truth: tuple[str, str], expected: list[str]) -> None:
    assert fields(reconcile(*truth, parse_state(raw))) == expected


def test_drift_values_and_message() -> None:
    (live, *_rest) = reconcile("green", "blue", parse_state(state()))
    assert live == Drift(
        field="live",
        state_file_value="blue",
        haproxy_value="green",
        message=live.message,
    )
    assert "the state file says live is blue" in live.message
    assert "haproxy.cfg makes green LIVE" in live.message
    assert "haproxy.cfg wins" in live.message
    assert "next deploy or switch repairs the state file" in live.message


def test_prod_message_explains_prod() -> None:
    drifts = reconcile("blue", "green", parse_state(state(prod="green")))
    assert "prod names the LIVE server" in drifts[0].message


@pytest.mark.parametrize("raw", [None, b"{not json", b"[]", b""])
def test_missing_or_corrupt_file_is_one_file_drift(raw: bytes | None) -> None:
    drifts = reconcile("blue", "green", parse_state(raw))
    assert fields(drifts) == [FILE]
    drift = drifts[0]
    assert drift.state_file_value is None and drift.haproxy_value is None
    assert "LIVE is blue and STANDBY is green" in drift.message
    assert "haproxy.cfg wins" in drift.message
    assert "repairs the state file" in drift.message


def test_corrupt_file_drift_keeps_the_json_position() -> None:
    (drift,) = reconcile("blue", "green", parse_state(b'{"live": "blue",}'))
    assert "line 1, column 17" in drift.message


def test_absent_and_malformed_fields() -> None:
    raw = b'{"live": 7, "standby": "green", "lastSwitch": "soon", "switchCount": -2}'
    drifts = reconcile("blue", "green", parse_state(raw))
    assert fields(drifts) == ["live", "prod", "lastSwitch", "switchCount"]
    live, prod, last, count = drifts
    assert (live.state_file_value, live.haproxy_value) == ("7", "blue")
    assert "'live' is 7" in live.message
    assert (prod.state_file_value, prod.haproxy_value) == (None, "blue")
    assert "has no 'prod'" in prod.message
    assert (last.state_file_value, last.haproxy_value) == ('"soon"', None)
    assert (count.state_file_value, count.haproxy_value) == ("-2", None)
    assert "rewrites it" in count.message


def test_unknown_truth_skips_that_field() -> None:
    raw = parse_state(state("green", "blue", "green"))
    assert fields(reconcile(None, None, raw)) == []
    assert fields(reconcile("blue", None, raw)) == ["live", "prod"]


def test_unknown_truth_with_missing_file_says_repair_must_wait() -> None:
    (drift,) = reconcile(None, None, parse_state(None))
    assert "routing is unclear" in drift.message
    assert "repairs" not in drift.message


def test_repair_clears_every_drift() -> None:
    for raw in (None, b"{", state("green", "blue", "green"), b'{"live": 1, "switchCount": "x"}'):
        reading = parse_state(raw)
        assert reconcile("blue", "green", reading) != []
        fixed = parse_state(repaired(reading.state, "blue", "green"))
        assert reconcile("blue", "green", fixed) == []


def test_unknown_keys_never_drift() -> None:
    raw = parse_state(state(extra=', "owner": "ops", "lastDeploy": {"sha": "abc"}'))
    assert reconcile("blue", "green", raw) == []
