"""File reads and atomic writes as shell commands, for `SSHOptions(sudo=True)`.

SFTP runs as the login user and cannot escalate, so with sudo the runner reads with `cat` and
writes with mktemp + chown/chmod copied from the old file + mv (rename(2), atomic in one
directory), all under `sudo -n`. Needs POSIX sh and GNU or BusyBox coreutils (`stat -c`,
`readlink -f`, `mktemp`) on the host.
"""

from __future__ import annotations

from bluegreen.domain.command import Command

MISSING_STATUS = 44  # chosen to not collide with cat's own failure status (1)

_READ = f"""\
if [ ! -e "$1" ] && [ ! -L "$1" ]; then exit {MISSING_STATUS}; fi
exec cat -- "$1"
"""

# The temp file gets its owner and mode before any data is written to it, so a secret never
# sits in a file with looser permissions than the one it replaces.
_WRITE = """\
set -eu
p=$1 mode=$2
if [ -L "$p" ]; then p=$(readlink -f -- "$p"); fi
d=$(dirname -- "$p") n=$(basename -- "$p")
t=$(mktemp "$d/.$n.bluegreen-tmp-XXXXXXXX")
trap 'rm -f -- "$t"' EXIT
if [ -e "$p" ]; then
  chown "$(stat -c %u:%g -- "$p")" -- "$t"
  mode=$(stat -c %a -- "$p")
fi
chmod "$mode" -- "$t"
cat > "$t"
sync -- "$t" 2>/dev/null || true
mv -f -- "$t" "$p"
trap - EXIT
"""


def read_command(path: str) -> Command:
    return Command(argv=("sh", "-c", _READ, "bluegreen-read", path), sudo=True, mutating=False)


def write_command(path: str, data: bytes, mode: int) -> Command:
    """`mode` applies to a new file only; an existing file keeps its own mode and owner."""
    return Command(
        argv=("sh", "-c", _WRITE, "bluegreen-write", path, format(mode, "o")),
        sudo=True,
        stdin=data,
    )
