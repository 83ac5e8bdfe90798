"""Walking the paths to scan: folders recursively, then inside archives.

Symlinks are followed (to files and to folders), but a folder is entered once: a link back
to a folder being walked is reported as a symlink loop, a second way into a folder already
walked is skipped. Files are opened read-only, only to sniff their type (and to read inside
archives); nothing is ever written next to them. Only regular files are opened: FIFOs,
sockets and devices are skipped (opening a FIFO would hang the scan).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from amparo.media.sniff import ARCHIVE_TYPES, HEAD_BYTES, sniff
from amparo.scan.archives import ExpansionBudget, Previous, WalkItem, expand
from amparo.scan.model import ArchiveLimits, HashTask, Problem, Resumed


@dataclass(frozen=True)
class _Dir:
    path: str
    ancestors: frozenset[tuple[int, int]]


def open_readonly(path: str) -> BinaryIO:
    """Open a file to scan. One place, so tests can simulate unreadable files even as root."""
    return open(path, "rb")


def walk_paths(
    paths: Iterable[str],
    limits: ArchiveLimits,
    previous: Previous | None = None,
) -> Iterator[WalkItem]:
    """Yield a hashing task, a problem, or a record from an earlier run, for every file under
    ``paths`` and every member of every archive among them."""
    visited: set[tuple[int, int]] = set()
    for root in paths:
        st = yield from _stat(root)
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_tree(root, st, visited, limits, previous)
        else:
            yield from _entry(root, st, limits, previous)


def count_files(paths: Iterable[str]) -> int:
    """Count regular files under ``paths`` (not archive members) the way :func:`walk` finds
    them; for progress bars. Problems are ignored here; :func:`walk_paths` reports them."""
    count = 0
    for item in _files_only(paths):
        count += item
    return count


def _files_only(paths: Iterable[str]) -> Iterator[int]:
    visited: set[tuple[int, int]] = set()
    stack: list[_Dir] = []
    for root in paths:
        try:
            st = os.stat(root)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            stack.append(_Dir(root, frozenset()))
            visited.add((st.st_dev, st.st_ino))
        elif stat.S_ISREG(st.st_mode):
            yield 1
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d.path) as it:
                    entries = list(it)
            except OSError:
                continue
            for entry in entries:
                try:
                    est = os.stat(entry.path)
                except OSError:
                    continue
                if stat.S_ISREG(est.st_mode):
                    yield 1
                elif stat.S_ISDIR(est.st_mode) and (est.st_dev, est.st_ino) not in visited:
                    visited.add((est.st_dev, est.st_ino))
                    stack.append(_Dir(entry.path, frozenset()))


def _walk_tree(
    root: str,
    st: os.stat_result,
    visited: set[tuple[int, int]],
    limits: ArchiveLimits,
    previous: Previous | None,
) -> Iterator[WalkItem]:
    key = (st.st_dev, st.st_ino)
    if key in visited:
        yield Problem(root, "skipped", "duplicate", "folder already scanned", is_file=False)
        return
    visited.add(key)
    stack = [_Dir(root, frozenset({key}))]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current.path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Problem(
                current.path,
                "error",
                "unreadable",
                f"cannot list the folder: {exc.strerror or exc}",
                is_file=False,
            )
            continue
        subdirs: list[_Dir] = []
        for entry in entries:
            est = yield from _stat(entry.path)
            if est is None:
                continue
            if not stat.S_ISDIR(est.st_mode):
                yield from _entry(entry.path, est, limits, previous)
                continue
            ekey = (est.st_dev, est.st_ino)
            if ekey in current.ancestors:
                yield Problem(
                    entry.path,
                    "error",
                    "symlink_loop",
                    "symlink loop: leads back to a folder that contains it (not followed)",
                    is_file=False,
                )
            elif ekey in visited:
                yield Problem(
                    entry.path,
                    "skipped",
                    "duplicate",
                    "folder already scanned through another path (symlink)",
                    is_file=False,
                )
            else:
                visited.add(ekey)
                subdirs.append(_Dir(entry.path, current.ancestors | {ekey}))
        stack.extend(reversed(subdirs))


def _stat(path: str) -> Generator[Problem, None, os.stat_result | None]:
    """Stat through symlinks; a failure is yielded as a problem and gives None."""
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            yield Problem(path, "error", "symlink_loop", "symlink loop: the link never resolves")
        elif exc.errno == errno.ENOENT and os.path.islink(path):
            yield Problem(path, "error", "broken_symlink", "symlink to something that is gone")
        elif exc.errno == errno.ENOENT:
            yield Problem(path, "error", "not_found", "no such file or folder")
        else:
            yield Problem(path, "error", "unreadable", f"cannot stat: {exc.strerror or exc}")
        return None


def _entry(
    path: str, st: os.stat_result, limits: ArchiveLimits, previous: Previous | None
) -> Iterator[WalkItem]:
    if not stat.S_ISREG(st.st_mode):
        yield Problem(path, "skipped", "not_regular", "not a regular file (device, FIFO, socket)")
        return
    size, mtime_ns = st.st_size, st.st_mtime_ns
    done = previous(path, size, mtime_ns) if previous else None
    if done is not None and done.media_type not in ARCHIVE_TYPES:
        yield Resumed(done)
        return
    if size == 0:
        yield Problem(path, "skipped", "empty", "empty file (0 bytes)")
        return
    try:
        fh = open_readonly(path)
    except OSError as exc:
        yield Problem(path, "error", "unreadable", f"cannot read: {exc.strerror or exc}")
        return
    with fh:
        try:
            media_type = sniff(fh.read(HEAD_BYTES))
        except OSError as exc:
            yield Problem(path, "error", "unreadable", f"cannot read: {exc.strerror or exc}")
            return
        if done is not None:
            yield Resumed(done)
        else:
            yield HashTask(path, size, mtime_ns, media_type, fs_path=path)
        if media_type in ARCHIVE_TYPES:
            try:
                fh.seek(0)
            except OSError as exc:
                yield Problem(path, "error", "unreadable", f"cannot read: {exc.strerror}", False)
                return
            budget = ExpansionBudget(size, limits.max_ratio)
            yield from expand(
                path,
                fh,
                media_type,
                limits=limits,
                budget=budget,
                mtime_ns=mtime_ns,
                previous=previous,
            )
            if budget.exhausted:
                yield Problem(
                    path,
                    "error",
                    "archive_bomb",
                    f"expands past {budget.total:,} bytes (max_archive_ratio times its size): "
                    "the rest of the archive was not checked",
                    is_file=False,
                )
