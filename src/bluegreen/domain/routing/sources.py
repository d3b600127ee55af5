"""Every file HAProxy loads, read as one configuration. Pure, no I/O.

HAProxy reads its `-f` arguments in order; a directory stands for its `*.cfg` files in lexical
order. The tool learns that list from the running process (`/proc/<pid>/cmdline` of the master,
read over SSH: `config_args`) or from the config (`config_files`); the caller reads the files and
passes them here in load order. Lines are numbered through all files, so one line number names one
line; `where` turns it back into a file and its own line number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bluegreen.domain.haproxy_cfg import HAProxyConfig, parse
from bluegreen.errors import HAProxyConfigError

DEFAULT_PATH = "haproxy.cfg"


@dataclass(frozen=True)
class SourceFile:
    path: str
    first: int  # number of its first line in the combined configuration
    count: int  # its number of lines
    newline_added: bool  # its text did not end with "\n": one was added to keep files apart


@dataclass(frozen=True)
class LoadedConfig:
    """The combined configuration (`cfg`) and where each file's lines sit in it."""

    cfg: HAProxyConfig
    files: tuple[SourceFile, ...]

    @property
    def locations(self) -> tuple[tuple[str, int], ...]:
        return tuple((f.path, f.first) for f in self.files)

    def file_of(self, number: int) -> SourceFile:
        for source in self.files:
            if source.first <= number < source.first + source.count:
                return source
        raise IndexError(f"no file holds line {number}")

    def text(self, path: str) -> str:
        """The text of one file, exactly as it is (or would be) on disk."""
        source = next((f for f in self.files if f.path == path), None)
        if source is None:
            raise KeyError(path)
        lines = self.cfg.lines[source.first - 1 : source.first - 1 + source.count]
        text = "".join(line.render() for line in lines)
        return text[:-1] if source.newline_added else text

    def with_cfg(self, cfg: HAProxyConfig) -> LoadedConfig:
        """The same files after an edit that kept every line count."""
        if len(cfg.lines) != len(self.cfg.lines):
            raise ValueError("an edit of a loaded configuration must keep its line count")
        return LoadedConfig(cfg, self.files)


def load(files: Sequence[tuple[str, str]]) -> LoadedConfig:
    """Read (path, text) pairs, in HAProxy's load order, as one configuration."""
    if not files:
        raise HAProxyConfigError("No configuration file to read.", hint="give at least one file")
    parts: list[str] = []
    sources: list[SourceFile] = []
    first = 1
    for path, text in files:
        added = bool(text) and not text.endswith("\n")
        body = text + "\n" if added else text
        count = len(parse(body).lines)
        sources.append(SourceFile(path, first, count, added))
        parts.append(body)
        first += count
    return LoadedConfig(parse("".join(parts)), tuple(sources))


def single(cfg: HAProxyConfig, path: str = DEFAULT_PATH) -> LoadedConfig:
    """One file (the layout before several files were understood)."""
    count = len(cfg.lines)
    return LoadedConfig(cfg, (SourceFile(path, 1, count, False),))


def config_args(argv: Sequence[str]) -> tuple[str, ...]:
    """The `-f` paths of an HAProxy command line, in order (files or directories)."""
    paths: list[str] = []
    words = iter(argv[1:])
    for word in words:
        if word == "-f":
            path = next(words, None)
            if path is not None:
                paths.append(path)
        elif word.startswith("-f") and len(word) > 2:
            paths.append(word[2:])
        elif word == "--":
            paths.extend(words)  # HAProxy reads every word after `--` as a config file
    return tuple(paths)


def load_order(paths: Sequence[str], listings: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The files HAProxy reads: each path in order, a directory (a key of `listings`, mapping to
    the names in it) replaced by its `*.cfg` files in lexical order (HAProxy skips dot-files)."""
    out: list[str] = []
    for path in paths:
        if path in listings:
            names = sorted(
                n
                for n in listings[path]
                if n.endswith(".cfg") and not n.startswith(".") and "/" not in n
            )
            out.extend(f"{path.rstrip('/')}/{name}" for name in names)
        else:
            out.append(path)
    return tuple(out)
