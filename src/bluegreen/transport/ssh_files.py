"""Atomic file writes over SFTP for SSHRunner: a temp file beside the target, fsync, owner and
mode kept, then a rename (posix-rename where the server has it)."""

from __future__ import annotations

import logging
import posixpath
import secrets
import stat
from contextlib import suppress

import paramiko
from paramiko.sftp import CMD_EXTENDED

from bluegreen.errors import TransportError

log = logging.getLogger("bluegreen.transport")


def sftp_write_atomic(
    sftp: paramiko.SFTPClient, host: str, path: str, data: bytes, new_mode: int
) -> None:
    target = path
    try:
        if stat.S_ISLNK(sftp.lstat(path).st_mode or 0):
            target = sftp.normalize(path)  # keep the link, replace what it points to
    except FileNotFoundError:
        pass
    try:
        current: paramiko.SFTPAttributes | None = sftp.stat(target)
    except FileNotFoundError:
        current = None
    if current is not None and not stat.S_ISREG(current.st_mode or 0):
        raise TransportError(f"{path} on {host} is not a regular file", host=host)
    directory, name = posixpath.split(target)
    temp = posixpath.join(directory, f".{name}.bluegreen-tmp-{secrets.token_hex(6)}")
    try:
        # 'x' (O_EXCL): never write through a file someone else put at our temp name.
        with sftp.open(temp, "wbx") as handle:
            if current is not None:
                copy_owner(sftp, host, path, temp, current)
            # Owner and mode are set before the data arrives, so secrets never sit in a file
            # with looser permissions than the one they replace.
            mode = stat.S_IMODE(current.st_mode or 0) if current is not None else new_mode
            sftp.chmod(temp, mode)
            handle.write(data)
            handle.flush()
            fsync(sftp, handle)
        sftp.posix_rename(temp, target)
    except BaseException:
        with suppress(OSError):
            sftp.remove(temp)
        raise


def copy_owner(
    sftp: paramiko.SFTPClient, host: str, path: str, temp: str, current: paramiko.SFTPAttributes
) -> None:
    if current.st_uid is None or current.st_gid is None:
        return
    mine = sftp.stat(temp)
    if (mine.st_uid, mine.st_gid) == (current.st_uid, current.st_gid):
        return
    try:
        sftp.chown(temp, current.st_uid, current.st_gid)
    except PermissionError as exc:
        raise TransportError(
            f"cannot give the new {path} on {host} its owner {current.st_uid}:{current.st_gid}",
            host=host,
            hint="connect as root or as the file's owner, or set sudo = true",
        ) from exc


def fsync(sftp: paramiko.SFTPClient, handle: paramiko.SFTPFile) -> None:
    """Best effort `fsync@openssh.com`; paramiko has no public call for it. Without it the rename
    is still atomic, only not yet durable."""
    request = getattr(sftp, "_request", None)
    raw = getattr(handle, "handle", None)
    if request is None or not isinstance(raw, bytes):
        return
    try:
        request(CMD_EXTENDED, "fsync@openssh.com", raw)
    except (OSError, paramiko.SSHException):
        log.debug("fsync@openssh.com not available; renaming without fsync")
