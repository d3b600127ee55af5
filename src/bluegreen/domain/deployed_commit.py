"""What an app host has deployed: the read (HEAD's commit and when HEAD last moved, from the
reflog) and its parser, side by side."""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.domain.command import Command

# The reflog says when HEAD moved (the deploy); a clone without one falls back to the commit date.
_DEPLOYED = (
    'git -C "$1" log -g -1 --date=iso-strict --format="%H %gd" 2>/dev/null'
    ' || git -C "$1" log -1 --format="%H HEAD@{%cI}"'
)
# With a second argument, the same read says whether that file (the prompt snippet) is there: a
# last line, so that status learns it without a command more per host. The exit status stays git's.
PROMPT_PRESENT = "bluegreen-prompt: installed"
PROMPT_ABSENT = "bluegreen-prompt: absent"
_WITH_PROMPT = (
    f"{{ {_DEPLOYED}; }}; s=$?; "
    f"if [ -r \"$2\" ]; then echo '{PROMPT_PRESENT}'; else echo '{PROMPT_ABSENT}'; fi; exit $s"
)
_NOT_A_REPOSITORY = 128  # git's exit status


@dataclass(frozen=True)
class Deployed:
    commit: str | None
    since: str | None  # ISO 8601
    error: str | None = None
    prompt: bool | None = None  # the prompt snippet is installed (None: not asked)


def deployed_command(app_dir: str, prompt_file: str | None = None) -> Command:
    if prompt_file is None:
        return Command.of("sh", "-c", _DEPLOYED, "bluegreen-deployed", app_dir, mutating=False)
    return Command.of("sh", "-c", _WITH_PROMPT, "bluegreen-deployed", app_dir, prompt_file,
                      mutating=False)  # fmt: skip


def parse_deployed(exit_status: int, stdout: str) -> Deployed:
    lines = stdout.strip().splitlines()
    prompt = None
    if lines and lines[-1] in (PROMPT_PRESENT, PROMPT_ABSENT):
        prompt = lines.pop() == PROMPT_PRESENT
    if exit_status != 0:
        error = "app dir is not a git checkout" if exit_status == _NOT_A_REPOSITORY else None
        return Deployed(None, None, error, prompt)
    words = (lines[0] if lines else "").strip().split(" ", 1)
    commit = words[0] if words and len(words[0]) >= 7 else None
    since = None
    if len(words) == 2 and "@{" in words[1]:
        since = words[1].split("@{", 1)[1].rstrip("}")
    return Deployed(commit, since, prompt=prompt)
