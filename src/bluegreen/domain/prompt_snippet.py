"""The shell prompt that knows its role: a bash snippet for /etc/profile.d/ on each app host that
puts the host's colour and role (LIVE or STANDBY, read from the app dir's `.env.display`, which
every switch rewrites) at the start of the prompt. Pure: the text and where it goes."""

from __future__ import annotations

import re
import shlex

PROFILE_DIR = "/etc/profile.d"

# Read at every prompt, so a switch shows without a new login. Only LIVE / STANDBY and a plain
# colour name reach the terminal, whatever else the file holds. \001 \002 tell bash's line
# editor that the colour codes take no room.
_SNIPPET = """\
# Written by `bluegreen prompt`: this host's colour and role for the app in {app_dir}
# (its .env.display, rewritten by every switch) at the start of bash's prompt.
[ -n "${{BASH_VERSION:-}}" ] || return 0
{function}() {{
  local line role= color= code=33 weight=
  [ -r {env_file} ] || return 0
  while IFS= read -r line; do
    case "$line" in
      ROLE=LIVE|ROLE=STANDBY) role=${{line#ROLE=}} ;;
      COLOR=*) color=${{line#COLOR=}} ;;
    esac
  done < {env_file}
  case "$color" in ''|*[!a-z0-9_-]*) return 0 ;; esac
  [ -n "$role" ] || return 0
  case "$color" in blue) code=34 ;; green) code=32 ;; esac
  [ "$role" = LIVE ] && weight='1;'
  printf '\\001\\033[%s%sm\\002[%s %s]\\001\\033[0m\\002 ' "$weight" "$code" \\
    "$(printf %s "$color" | tr '[:lower:]' '[:upper:]')" "$role"
}}
case "${{PS1:-}}" in
  *{function}*) ;;
  *) PS1='$({function})'"${{PS1:-\\u@\\h:\\w\\$ }}" ;;
esac
"""


def _name(app_dir: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", app_dir).strip("-") or "root"


def snippet_path(app_dir: str) -> str:
    """One snippet per app dir: its `.env.display` is what the snippet shows."""
    return f"{PROFILE_DIR}/bluegreen-{_name(app_dir)}.sh"


def snippet(app_dir: str) -> bytes:
    env_file = shlex.quote(f"{app_dir.rstrip('/')}/.env.display")
    function = "_bluegreen_prompt_" + _name(app_dir).replace("-", "_")
    return _SNIPPET.format(app_dir=app_dir, env_file=env_file, function=function).encode()
