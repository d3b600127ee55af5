from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bluegreen.domain.state_file import (
    StateFile,
    format_timestamp,
    parse_state,
    parse_timestamp,
    repaired,
    updated_for_switch,
)
from bluegreen.errors import StateFileError

REFERENCE = (
    b'{"prod": "blue", "live": "blue", "standby": "green", '
    b'"lastSwitch": "2025-12-21T10:00:00Z", "switchCount": 3}'
)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_reference_file_parses() -> None:
    reading = parse_state(REFERENCE)
    assert reading.ok and reading.status == "ok"
    assert reading.problems == () and reading.message is None
    state = reading.state
    assert (state.prod, state.live, state.standby) == ("blue", "blue", "green")
    assert state.last_switch == datetime(2025, 12, 21, 10, 0, tzinfo=UTC)
    assert state.switch_count == 3
    assert state.extra == {}
    assert reading.as_error() is None


def test_missing_file() -> None:
    reading = parse_state(None)
    assert reading.status == "missing"
    assert reading.state == StateFile()
    assert reading.describe() == ["the state file does not exist"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "it is empty"),
        (b"  \n", "it is empty"),
        (b'{"live": "blue",\n "standby": }', "invalid JSON at line 2, column 13: Expecting value"),
        (b'{"live": "blue"', "invalid JSON at line 1, column 16"),
        (b"live=blue", "invalid JSON at line 1, column 1"),
        (b'["blue", "green"]', "expected a JSON object, got an array"),
        (b'"blue"', "expected a JSON object, got a string"),
        (b"null", "expected a JSON object, got null"),
        (b"42", "expected a JSON object, got a number"),
        (b'{"live": "bl\xffue"}', "not UTF-8 (bad byte at offset 12)"),
    ],
)
def test_corrupt_files_are_reported_not_raised(raw: bytes, expected: str) -> None:
    reading = parse_state(raw)
    assert reading.status == "corrupt"
    assert reading.message is not None and expected in reading.message
    assert reading.state == StateFile()
    error = reading.as_error()
    assert isinstance(error, StateFileError) and expected in error.message


@pytest.mark.parametrize(
    ("document", "key", "expected"),
    [
        ({"live": 1}, "live", "'live' is 1, expected a colour name"),
        ({"live": None}, "live", "'live' is null, expected a colour name"),
        ({"live": ""}, "live", "'live' is \"\", expected a colour name"),
        ({"live": ["blue"]}, "live", "'live' is [\"blue\"]"),
        ({"standby": {"c": "g"}}, "standby", '\'standby\' is {"c": "g"}'),
        ({"prod": True}, "prod", "'prod' is true"),
        ({"lastSwitch": "yesterday"}, "lastSwitch", "'lastSwitch' is \"yesterday\""),
        ({"lastSwitch": 1766311200}, "lastSwitch", "expected an ISO 8601 time"),
        ({"switchCount": "3"}, "switchCount", "'switchCount' is \"3\""),
        ({"switchCount": -1}, "switchCount", "expected a whole number >= 0"),
        ({"switchCount": 2.5}, "switchCount", "'switchCount' is 2.5"),
        ({"switchCount": True}, "switchCount", "'switchCount' is true"),
    ],
)
def test_wrong_types_are_reported_per_field(
    document: dict[str, object], key: str, expected: str
) -> None:
    base: dict[str, object] = json.loads(REFERENCE)
    reading = parse_state(json.dumps({**base, **document}).encode())
    assert reading.status == "invalid"
    problem = reading.problem(key)
    assert problem is not None and expected in problem.message
    assert [p.key for p in reading.problems] == [key]
    # every other field is still read
    valid = {"prod": "blue", "live": "blue", "standby": "green", "switchCount": 3}
    for field, value in valid.items():
        if field != key:
            attr = "switch_count" if field == "switchCount" else field
            assert getattr(reading.state, attr) == value
    assert getattr(reading.state, _attr(key)) is None


def _attr(key: str) -> str:
    return {"lastSwitch": "last_switch", "switchCount": "switch_count"}.get(key, key)


def test_absent_colour_fields_are_problems_but_absent_history_is_not() -> None:
    reading = parse_state(b'{"live": "green"}')
    assert reading.status == "invalid"
    assert [p.key for p in reading.problems] == ["prod", "standby"]
    assert reading.state.live == "green"
    assert reading.state.last_switch is None and reading.state.switch_count is None


def test_null_last_switch_means_never_switched() -> None:
    reading = parse_state(b'{"prod":"blue","live":"blue","standby":"green","lastSwitch":null}')
    assert reading.ok
    assert reading.state.last_switch is None


def test_colours_are_normalised_and_checked_against_known_names() -> None:
    raw = b'{"prod": "BLUE", "live": " Blue ", "standby": "purple"}'
    assert parse_state(raw).state.live == "blue"
    reading = parse_state(raw, colors=("blue", "green"))
    assert reading.state.live == "blue"
    assert reading.state.standby is None
    problem = reading.problem("standby")
    assert problem is not None and "not one of blue, green" in problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-21T10:00:00Z", datetime(2025, 12, 21, 10, tzinfo=UTC)),
        ("2025-12-21T10:00:00.000Z", datetime(2025, 12, 21, 10, tzinfo=UTC)),  # JS toISOString
        ("2025-12-21T11:00:00+01:00", datetime(2025, 12, 21, 10, tzinfo=UTC)),
        ("2025-12-21T10:00:00", datetime(2025, 12, 21, 10, tzinfo=UTC)),  # no offset: UTC
        ("not a date", None),
        ("", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_format_timestamp_is_utc_z_whole_seconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_timestamp(datetime(2026, 1, 2, 4, 4, 5, 999, tzinfo=paris)) == (
        "2026-01-02T03:04:05Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 2))


# ---- writing ---------------------------------------------------------------------------------


def test_switch_update_matches_the_reference_shape() -> None:
    state = parse_state(REFERENCE).state
    out = updated_for_switch(state, "green", "blue", NOW)
    assert out == (
        b"{\n"
        b'  "prod": "green",\n'
        b'  "live": "green",\n'
        b'  "standby": "blue",\n'
        b'  "lastSwitch": "2026-01-02T03:04:05Z",\n'
        b'  "switchCount": 4\n'
        b"}\n"
    )
    again = parse_state(out)
    assert again.ok and again.state.switch_count == 4


def test_unknown_keys_survive_a_round_trip_in_their_order() -> None:
    raw = (
        b'{"owner": "ops", "live": "blue", "notes": {"why": ["x", 1]}, "prod": "blue",'
        b' "standby": "green", "switchCount": 7, "lastSwitch": null, "z": 1.5}'
    )
    state = parse_state(raw).state
    assert list(state.extra) == ["owner", "notes", "z"]
    out = json.loads(updated_for_switch(state, "green", "blue", NOW))
    assert list(out) == [
        "owner",
        "live",
        "notes",
        "prod",
        "standby",
        "switchCount",
        "lastSwitch",
        "z",
    ]
    assert out["notes"] == {"why": ["x", 1]}
    assert out["z"] == 1.5
    assert out["switchCount"] == 8


def test_switch_appends_fields_the_file_lacked() -> None:
    state = parse_state(b'{"live": "blue", "standby": "green", "team": "jw"}').state
    out = json.loads(updated_for_switch(state, "green", "blue", NOW))
    assert list(out) == ["live", "standby", "team", "prod", "lastSwitch", "switchCount"]
    assert out["switchCount"] == 1


def test_switch_from_a_missing_or_corrupt_file_starts_fresh() -> None:
    for raw in (None, b"{oops"):
        out = json.loads(updated_for_switch(parse_state(raw).state, "blue", "green", NOW))
        assert out == {
            "prod": "blue",
            "live": "blue",
            "standby": "green",
            "lastSwitch": "2026-01-02T03:04:05Z",
            "switchCount": 1,
        }


def test_repair_fixes_colours_and_keeps_history_and_extras() -> None:
    raw = (
        b'{"prod": "green", "live": "green", "standby": "blue",'
        b' "lastSwitch": "2025-12-21T10:00:00.000Z", "switchCount": 3, "x": [1]}'
    )
    out = repaired(parse_state(raw).state, "blue", "green")
    assert json.loads(out) == {
        "prod": "blue",
        "live": "blue",
        "standby": "green",
        "lastSwitch": "2025-12-21T10:00:00.000Z",  # kept exactly as written
        "switchCount": 3,
        "x": [1],
    }
    assert out.endswith(b"}\n") and b'\n  "prod"' in out


def test_repair_resets_malformed_history_so_the_file_becomes_valid() -> None:
    raw = b'{"prod": 1, "live": "blue", "standby": "green", "lastSwitch": "?", "switchCount": "x"}'
    out = repaired(parse_state(raw).state, "blue", "green")
    reading = parse_state(out)
    assert reading.ok
    assert json.loads(out)["lastSwitch"] is None
    assert json.loads(out)["switchCount"] == 0


def test_repair_of_missing_file_writes_a_complete_one() -> None:
    out = json.loads(repaired(parse_state(None).state, "green", "blue"))
    assert out == {
        "prod": "green",
        "live": "green",
        "standby": "blue",
        "lastSwitch": None,
        "switchCount": 0,
    }


@pytest.mark.parametrize(("live", "standby"), [("blue", "blue"), ("", "green"), ("blue", "")])
def test_writers_refuse_a_nonsense_pair(live: str, standby: str) -> None:
    state = parse_state(REFERENCE).state
    with pytest.raises(ValueError, match="two different servers"):
        updated_for_switch(state, live, standby, NOW)
    with pytest.raises(ValueError, match="two different servers"):
        repaired(state, live, standby)


def test_switch_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        updated_for_switch(parse_state(REFERENCE).state, "green", "blue", datetime(2026, 1, 1))


def test_non_ascii_extras_are_written_as_utf8() -> None:
    state = parse_state('{"live": "blue", "note": "déployé"}'.encode()).state
    out = updated_for_switch(state, "green", "blue", NOW)
    assert "déployé".encode() in out


def test_state_is_immutable() -> None:
    state = parse_state(REFERENCE).state
    with pytest.raises(AttributeError):
        state.live = "green"  # type: ignore[misc]
    with pytest.raises(TypeError):
        state.document["live"] = "green"  # type: ignore[index]
