from __future__ import annotations

import pytest

from bluegreen.domain.validate import validate_app_name, validate_color, validate_ref
from bluegreen.errors import ValidationError

# ---- refs ------------------------------------------------------------------------------------

GOOD_REFS = [
    "main",
    "release/2025-12",
    "v1.4.2",
    "feature/add_login",
    "hotfix-1",
    "0123456789abcdef0123456789abcdef01234567",  # full sha-1
    "a" * 200,
]


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_ref_accepted(ref: str) -> None:
    assert validate_ref(ref) == ref


BAD_REFS = [
    ("", "empty"),
    ("a" * 201, "longer than 200"),
    ("-x", "starts with '-'"),
    ("--upload-pack=touch /tmp/pwned", "starts with '-'"),
    ("--output=/etc/passwd", "starts with '-'"),
    ("main;rm -rf /", "';'"),
    ("main && reboot", "a space"),
    ("$(reboot)", "'$'"),
    ("`reboot`", "'`'"),
    ("main\nreboot", "a newline"),
    ("main\treboot", "a tab"),
    ("main|cat", "'|'"),
    ("main>out", "'>'"),
    ("ma'in", '"\'"'),
    ('ma"in', "'\"'"),
    ("main\\x", "'\\\\'"),
    ("main@{1}", "'@{'"),
    ("HEAD@{yesterday}", "'@{'"),
    ("feature..main", "'..'"),
    ("../../etc/passwd", "'..'"),
    ("main.lock", "'.lock'"),
    ("release/", "'/'"),
    ("/main", "'/'"),
    ("a//b", "'//'"),
    ("main.", "ends with '.'"),
    (".hidden", "starts with '.'"),
    ("feature/.x", "starts with '.'"),
    ("main~1", "'~'"),
    ("main^", "'^'"),
    ("ma:in", "':'"),
    ("ma*in", "'*'"),
    ("ma?in", "'?'"),
    ("ma[in", "'['"),
    ("mäin", "'ä'"),
]


@pytest.mark.parametrize(("ref", "why"), BAD_REFS)
def test_ref_refused_with_reason(ref: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_ref(ref)
    assert why in caught.value.message
    assert caught.value.hint  # says what to give instead


@pytest.mark.parametrize("value", [None, 42, ["main"], b"main"])
def test_ref_must_be_a_string(value: object) -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        validate_ref(value)


def test_ref_message_shows_control_characters_escaped() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_ref("main\nreboot")
    assert "\n" not in caught.value.message
    assert "\\n" in caught.value.message


def test_ref_message_truncates_long_values() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_ref("x" * 500)
    assert len(caught.value.message) < 200


# ---- app names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jw-attendant", "app", "a", "0day", "my_app-2", "a" * 63])
def test_app_name_accepted(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "JW",
        "-app",
        "_app",
        "app name",
        "app;reboot",
        "$(id)",
        "`id`",
        "app\n",
        "../etc",
        "app.name",
        "app/x",
        "a" * 64,
        "--help",
    ],
)
def test_app_name_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_app_name(name)
    assert "app name" in caught.value.message
    assert caught.value.hint and "lowercase" in caught.value.hint


def test_app_name_must_be_a_string() -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        validate_app_name(7)


# ---- colours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("color", "expected"), [("blue", "blue"), ("GREEN", "green"), ("Blue", "blue")]
)
def test_color_accepted_case_insensitively(color: str, expected: str) -> None:
    assert validate_color(color) == expected


@pytest.mark.parametrize("color", ["red", "", " blue", "blue;id", "blue\n", "bluegreen"])
def test_color_refused(color: str) -> None:
    with pytest.raises(ValidationError, match="not one of blue, green"):
        validate_color(color)


def test_color_against_configured_servers() -> None:
    assert validate_color("A", allowed=("a", "b")) == "a"
    with pytest.raises(ValidationError, match="not one of a, b"):
        validate_color("blue", allowed=("a", "b"))


def test_color_must_be_a_string() -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        validate_color(None)
