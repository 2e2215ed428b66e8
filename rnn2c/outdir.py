"""Output folders that lose nothing: rnn2c owns exactly the files its manifest lists.

Every command that writes a folder (`export`, `train`, ...) goes through :class:`OwnedFolder`:

* The folder itself is never renamed, replaced or deleted, so a symlink stays a symlink, a mount
  point works, and a user's other files (a firmware ``main.c``, the export's own inputs) stay.
* A write replaces the files the previous manifest lists and nothing else. It refuses, before any
  work, to overwrite a file rnn2c did not write, a file it wrote that was edited since, or a file
  that is one of the command's own inputs.
* Crash safety: the new files are written beside the old ones under temporary names and synced;
  then a journal (the list of renames, deletions and the new manifest) is renamed into place.
  That rename is the commit point: before it the old files are untouched (temporaries are swept
  up later), after it any rnn2c command that opens the folder finishes the renames first
  (:func:`recover`): the files' renames, the deletions of dropped files, the manifest's rename
  last. So a kill at any point leaves the old complete set or, once recovered, the new one;
  never a mixture, never a missing folder.
* The journal is untrusted input (anyone who can write the folder can craft one): recovery
  checks it whole before touching anything (temporary names rnn2c writes, renamed onto
  normalised paths inside the folder that are new or owned, deletions only of files the current
  manifest owns and the new one drops, bounded size) and refuses anything else in one line
  that says how to clear it. Nothing is written or deleted through a symbolic link or where a
  user's file stands in for a folder: the pre-check before the commit point sees every parent
  folder of every path the write creates or deletes.
* One writer at a time: a lock file held with ``flock`` for the whole command (``train`` holds it
  while training), so a second run into the same folder is refused at its start.
* Files and folders get the user's normal permissions (the umask), not private ones.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

TMP_PREFIX = ".rnn2c-tmp-"
LOCK_NAME = ".rnn2c.lock"
NAME_MAX = 255


class OutputError(ValueError):
    """An output location rnn2c cannot or must not write; the message is one line."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _os_reason(e: OSError) -> str:
    return e.strerror or errno.errorcode.get(e.errno or 0, type(e).__name__)


def check_output_path(path: str | os.PathLike[str], what: str, folder: bool = True) -> Path:
    """Refuse, before any long work, an output location that cannot be written.

    ``folder``: the path is a folder to create or reuse; otherwise a file to create or replace.
    Checks name lengths, that no ancestor is a file, and that the nearest existing folder takes
    a new file (read-only, immutable and permission problems show here).
    """
    p = Path(path)
    text = str(path)
    if not text:
        raise OutputError(f"{what}: empty path; give a {'folder' if folder else 'file'} path")
    for part in p.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputError(
                f"{what} {text!r}: the name {part[:24]!r}... is {len(os.fsencode(part))} bytes; "
                f"file systems allow at most {NAME_MAX}"
            )
    if folder and p.exists() and not p.is_dir():
        raise OutputError(f"{what} {text!r} is a file; give a folder path")
    if not folder and p.is_dir():
        raise OutputError(f"{what} {text!r} is a folder; give a file path")
    existing = p if folder else p.parent
    while not existing.exists():
        if existing.is_symlink():
            raise OutputError(f"{what} {text!r}: {str(existing)!r} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"{what} {text!r}: {str(existing)!r} is a file, not a folder; give a path whose "
            "parents are folders"
        )
    probe = existing / f"{TMP_PREFIX}probe-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(
            f"{what} {text!r}: cannot write in {str(existing)!r} ({_os_reason(e)}); "
            "choose a writable location"
        ) from None
    return p


def read_manifest(folder: Path, manifest_name: str) -> dict[str, Any] | None:
    """The folder's manifest, None if it has none; OutputError if it is broken or foreign."""
    path = folder / manifest_name
    if not path.exists() and not path.is_symlink():
        return None
    where = f"{str(path)!r}"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = _os_reason(e) if isinstance(e, OSError) else "not valid JSON"
        raise OutputError(
            f"{where} cannot be read ({reason}); it is not an rnn2c manifest: move it away or "
            "choose another folder"
        ) from None
    files = data.get("files") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or "rnn2c_version" not in data
        or not isinstance(files, list)
        or not all(_rnn2c_name(f) for f in files)
    ):
        raise OutputError(
            f"{where} is not an rnn2c manifest (it has an rnn2c_version and a files list of "
            "paths inside the folder); move it away or choose another folder"
        )
    hashes = data.get("sha256", {})
    if not isinstance(hashes, dict):
        raise OutputError(f"{where}: 'sha256' is not a mapping of file names to hashes")
    return data


def _safe_relative(rel: object) -> bool:
    """A normalised relative POSIX path: no absolute path, no '.', '..' or empty component."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    p = PurePosixPath(rel)
    return (
        not p.is_absolute()
        and str(p) == rel
        and bool(p.parts)
        and all(part not in (".", "..") for part in p.parts)
    )


def _rnn2c_name(rel: object) -> bool:
    """A path rnn2c may write inside a folder: safe, relative and normalised, no hidden component
    (rnn2c never writes one: no .git/, no journal, lock or temporary), names within NAME_MAX."""
    return _safe_relative(rel) and all(
        not part.startswith(".") and len(os.fsencode(part)) <= NAME_MAX
        for part in PurePosixPath(str(rel)).parts
    )


def _journal_name(manifest_name: str) -> str:
    return f".{manifest_name}.journal"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _writer_active(d: Path) -> bool:
    """Whether another rnn2c command holds the folder's lock right now."""
    try:
        fd = os.open(d / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # no lock file: no writer (it creates one before anything else)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


# -- the journal: untrusted input ------------------------------------------------------------

MAX_JOURNAL_BYTES = 1 << 20  # a real journal names a few dozen files: a few KiB
MAX_MANIFEST_BYTES = 16 << 20  # a manifest: its files' hashes, layers, class names
MAX_JOURNAL_ENTRIES = 4096
_TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r"([0-9a-f]{8})-(0|[1-9][0-9]{0,4})")


class _Refused(Exception):
    """Why a journal is not applied. ``move``: a path of the user's that blocks a journal rnn2c
    may well have written (moving it away lets the write finish); None: not rnn2c's journal."""

    def __init__(self, reason: str, move: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.move = move


@dataclass
class _Plan:
    """A validated journal: renames (temporary name -> path; the manifest last), deletions."""

    renames: list[tuple[str, str]]
    deletes: list[str]


_KIND_WORDS = {
    "file": "a file",
    "dir": "a folder",
    "link": "a symbolic link",
    "other": "not a regular file",
}


def _kind(path: Path) -> str:
    """'missing', 'file', 'dir', 'link' or 'other', without following a symbolic link."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def _blocked_way(d: Path, rel: str) -> tuple[str, str] | None:
    """(folder, what it is) for the first parent folder of ``rel`` inside ``d`` that is a
    symbolic link or not a folder; None when each is a real folder or missing (then created as
    one)."""
    parts = PurePosixPath(rel).parts[:-1]
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        kind = _kind(d / sub)
        if kind == "missing":
            return None
        if kind != "dir":
            return sub, _KIND_WORDS[kind]
    return None


def _way_problem(d: Path, rel: str) -> str | None:
    """Why rnn2c must not write or delete ``rel`` under ``d``: a parent folder of it inside
    ``d`` is a symbolic link (which rnn2c never follows) or a file."""
    blocked = _blocked_way(d, rel)
    if blocked is None:
        return None
    return f"{blocked[0]!r} is {blocked[1]} where rnn2c writes a folder"


def _read_capped(path: Path, what: str, limit: int = MAX_JOURNAL_BYTES) -> bytes:
    """A regular file's bytes (never through a symbolic link), at most ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise _Refused(f"{what} cannot be opened ({_os_reason(e)})") from None
    chunks: list[bytes] = []
    size = 0
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Refused(f"{what} is not a regular file")
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise _Refused(f"{what} cannot be read ({_os_reason(e)})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise _Refused(f"{what} is larger than {limit} bytes")
    return b"".join(chunks)


def _manifest_files(data: bytes, what: str) -> set[str]:
    """The files a manifest rnn2c wrote lists; _Refused if it is not one."""
    try:
        obj = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refused(f"{what} is not JSON") from None
    files = obj.get("files") if isinstance(obj, dict) else None
    if (
        not isinstance(obj, dict)
        or "rnn2c_version" not in obj
        or not isinstance(files, list)
        or not all(_rnn2c_name(f) for f in files)
        or not isinstance(obj.get("sha256", {}), dict)
    ):
        raise _Refused(f"{what} is not an rnn2c manifest")
    return set(files)


def _parse_journal(data: bytes, manifest_name: str) -> _Plan:
    """The journal's shape: the temporary names rnn2c writes, in order, renamed onto distinct
    paths rnn2c writes, the manifest last; deletions of other such paths."""
    try:
        obj = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refused("not JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"renames", "delete"}:
        raise _Refused("not an object with exactly 'renames' and 'delete'")
    renames, deletes = obj["renames"], obj["delete"]
    if not isinstance(renames, list) or not isinstance(deletes, list):
        raise _Refused("'renames' and 'delete' must be lists")
    if len(renames) + len(deletes) > MAX_JOURNAL_ENTRIES:
        raise _Refused(f"more than {MAX_JOURNAL_ENTRIES} entries")
    if not renames:
        raise _Refused("no renames (rnn2c's journal always renames the manifest into place)")
    pairs: list[tuple[str, str]] = []
    token = None
    for i, pair in enumerate(renames):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise _Refused(f"rename {i} is not a [temporary, path] pair of strings")
        src, dst = pair
        m = _TMP_NAME.fullmatch(src)
        if m is None or int(m.group(2)) != i or (token is not None and m.group(1) != token):
            raise _Refused(f"rename {i} moves {src[:80]!r}, not a temporary file rnn2c writes")
        token = m.group(1)
        if not _rnn2c_name(dst):
            raise _Refused(f"rename {i} writes {dst[:80]!r}, not a path rnn2c writes")
        pairs.append((src, dst))
    targets = [dst for _, dst in pairs]
    if targets[-1] != manifest_name:
        raise _Refused(f"its last rename does not put the manifest {manifest_name!r} in place")
    if len(set(targets)) != len(targets):
        raise _Refused("two renames write the same path")
    for rel in deletes:
        if not _rnn2c_name(rel):
            shown = rel[:80] if isinstance(rel, str) else type(rel).__name__
            raise _Refused(f"it deletes {shown!r}, not a path rnn2c writes")
    if len(set(deletes)) != len(deletes) or set(deletes) & set(targets):
        raise _Refused("it deletes a path twice, or one it also writes")
    return _Plan(pairs, list(deletes))


def _check_plan(d: Path, manifest_name: str, plan: _Plan) -> None:
    """The journal against the folder: the temporaries it still has to rename are plain files
    directly in the folder, each written path is new or one the current manifest owns, every
    deletion is a file the current manifest owns and the new one drops, unedited, and no
    symbolic link or file lies on the way of any of them."""
    present = [_kind(d / src) for src, _ in plan.renames]
    pending = next((i for i, k in enumerate(present) if k != "missing"), len(present))
    if any(k == "missing" for k in present[pending:]):
        raise _Refused("its renames were not finished in order")
    if any(k != "file" for k in present[pending:]):
        raise _Refused("a temporary file it renames is not a plain file")
    if pending == len(present):  # every rename done, the new manifest in place: nothing to delete
        current = _manifest_files(
            _read_capped(d / manifest_name, manifest_name, MAX_MANIFEST_BYTES), manifest_name
        )
        if current != {dst for _, dst in plan.renames[:-1]}:
            raise _Refused(f"its renames are not the files {manifest_name!r} lists")
        left = [rel for rel in plan.deletes if _kind(d / rel) != "missing"]
        if left:
            raise _Refused(f"it deletes {left[0]!r} after the manifest was already replaced")
        return
    new_tmp = plan.renames[-1][0]
    new = _manifest_files(
        _read_capped(d / new_tmp, "its new manifest", MAX_MANIFEST_BYTES), "its new manifest"
    )
    if new != {dst for _, dst in plan.renames[:-1]}:
        raise _Refused("its renames are not the files its new manifest lists")
    old = _old_manifest(d, manifest_name)
    owned = set(old["files"]) if old else set()
    for _, dst in plan.renames[pending:]:
        _check_way(d, dst)
        kind = _kind(d / dst)
        if kind not in ("missing", "file"):
            raise _Refused(f"{dst!r} is {_KIND_WORDS[kind]}", move=dst)
        if kind == "file" and dst not in owned and dst != manifest_name:
            raise _Refused(f"it overwrites {dst!r}, which {manifest_name!r} does not list")
    hashes = old.get("sha256", {}) if old else {}
    for rel in plan.deletes:
        if rel not in owned or rel in new:
            raise _Refused(f"it deletes {rel!r}, not a file the write drops from {manifest_name!r}")
        _check_way(d, rel)
        kind = _kind(d / rel)
        if kind == "missing":
            continue
        if kind != "file":
            raise _Refused(f"{rel!r}, which it deletes, is {_KIND_WORDS[kind]}", move=rel)
        if isinstance(hashes.get(rel), str) and file_sha256(d / rel) != hashes[rel]:
            raise _Refused(f"{rel!r}, which it deletes, was edited since rnn2c wrote it", move=rel)


def _check_way(d: Path, rel: str) -> None:
    blocked = _blocked_way(d, rel)
    if blocked is not None:
        sub, what = blocked
        raise _Refused(f"{sub!r} is {what} where rnn2c writes a folder", move=sub)


def _old_manifest(d: Path, manifest_name: str) -> dict[str, Any] | None:
    if _kind(d / manifest_name) == "missing":
        return None
    try:
        data = _read_capped(d / manifest_name, manifest_name, MAX_MANIFEST_BYTES)
        _manifest_files(data, manifest_name)
        obj: dict[str, Any] = json.loads(data.decode())
    except _Refused as e:
        raise _Refused(f"the folder's {e.reason}", move=manifest_name) from None
    return obj


def _journal_error(journal: Path, e: _Refused) -> OutputError:
    where, rm = str(journal), f"rm {shlex.quote(str(journal))}"
    if e.move is None:
        return OutputError(
            f"{where!r} is not a journal rnn2c wrote ({e.reason}); nothing was changed: "
            f"remove it ({rm}) and run again"
        )
    return OutputError(
        f"{where!r}: cannot finish the interrupted write ({e.reason}); nothing was changed: "
        f"move {e.move!r} away and run again, or remove the journal ({rm}) to give the write up"
    )


def _journal_failed(journal: Path, reason: str) -> OutputError:
    """A journal rnn2c can finish once the obstacle is gone (a permission, a full disk)."""
    rm = f"rm {shlex.quote(str(journal))}"
    return OutputError(
        f"{str(journal)!r}: finishing the interrupted write failed ({reason}); fix that and run "
        f"again, rnn2c then finishes it (or give the write up and keep the folder as it is: {rm})"
    )


def _os_text(e: OSError) -> str:
    return _os_reason(e) + (f": {str(e.filename)!r}" if e.filename else "")


def recover(folder: str | os.PathLike[str], manifest_name: str, locked: bool = False) -> bool:
    """Finish a write that was interrupted after its commit point; sweep stray temporaries.

    Returns True if an interrupted write was finished. Safe to call on any folder. The journal
    is untrusted input: it is checked whole (see _parse_journal, _check_plan) before anything is
    touched, and refused in one OutputError line otherwise; only the files it names inside the
    folder, never through a symbolic link, and temporaries are touched. A reader (locked=False)
    leaves a folder alone while another rnn2c command is writing it: that command finishes its
    own work.
    """
    d = Path(folder)
    if not locked and _writer_active(d):
        return False
    journal = d / _journal_name(manifest_name)
    done = False
    if _kind(journal) != "missing":
        plan = _valid_plan(d, manifest_name, journal)
        if plan is None:
            return False  # finished by another reader meanwhile
        try:
            _apply(d, plan)
            journal.unlink(missing_ok=True)
        except _Refused as e:  # the folder changed while it was being finished
            raise _journal_failed(journal, e.reason) from None
        except OSError as e:
            raise _journal_failed(journal, _os_text(e)) from None
        _fsync_dir(d)
        done = True
    _sweep(d)
    return done


def _valid_plan(d: Path, manifest_name: str, journal: Path) -> _Plan | None:
    """The journal, checked whole against the folder (OutputError, one line, if refused); None
    if another reader finished it meanwhile. A check that overlapped another reader's recovery
    (a temporary moved while it ran) is done again."""
    for _ in range(3):
        try:
            plan = _parse_journal(_read_capped(journal, "the journal"), manifest_name)
        except _Refused as e:
            if _kind(journal) == "missing":
                return None
            raise _journal_error(journal, e) from None
        except OSError as e:
            raise _journal_failed(journal, _os_text(e)) from None
        before = [_kind(d / src) for src, _ in plan.renames]
        try:
            _check_plan(d, manifest_name, plan)
            return plan
        except _Refused as e:
            if _kind(journal) == "missing":
                return None
            if [_kind(d / src) for src, _ in plan.renames] == before:
                raise _journal_error(journal, e) from None
        except OSError as e:
            raise _journal_failed(journal, _os_text(e)) from None
    raise OutputError(
        f"{str(journal)!r}: the folder keeps changing while rnn2c finishes its interrupted "
        "write; wait for the other command to finish and run again"
    )


def _sweep(d: Path) -> None:
    """Stray temporaries of a write killed before its commit point (best effort; a symbolic
    link by such a name is removed as a link, its target untouched)."""
    try:
        strays = [p for p in d.glob(f"{TMP_PREFIX}*") if _kind(p) in ("file", "link")]
        for stray in strays:
            stray.unlink(missing_ok=True)
    except OSError:
        pass  # a folder rnn2c may read but not write: the strays stay, harmless


def _apply(d: Path, plan: _Plan) -> None:
    """The files' renames, the deletions of dropped files, then the manifest's rename: the
    manifest names the new set only once every file is in place and every dropped file gone.
    Each step re-checks its way (no symbolic link, no file where a folder goes) just before."""
    for tmp, final in plan.renames[:-1]:
        _rename(d, tmp, final)
    for rel in plan.deletes:
        _check_way(d, rel)
        if _kind(d / rel) != "file":
            continue
        (d / rel).unlink(missing_ok=True)  # missing: another reader's recovery got there first
        parent = PurePosixPath(rel).parent
        while parent != PurePosixPath(".") and _kind(d / parent) == "dir":
            try:
                (d / parent).rmdir()  # a folder (src/) left empty by files rnn2c no longer writes
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    break  # not empty: the user's files, or files rnn2c still writes, are in it
                raise
            parent = parent.parent
    _rename(d, *plan.renames[-1])


def _rename(d: Path, tmp: str, final: str) -> None:
    if _kind(d / tmp) != "file":
        return  # renamed before the interruption
    _check_way(d, final)
    if _kind(d / final) not in ("missing", "file"):
        raise _Refused(f"{final!r} is {_KIND_WORDS[_kind(d / final)]}", move=final)
    parts = PurePosixPath(final).parts[:-1]
    for i in range(len(parts)):
        sub = d.joinpath(*parts[: i + 1])
        try:
            sub.mkdir()
        except FileExistsError:
            pass  # there already, or made by another reader's recovery meanwhile
    _check_way(d, final)  # a real folder each, made here or checked above
    try:
        os.replace(d / tmp, d / final)
    except FileNotFoundError:
        if _kind(d / tmp) != "missing":
            raise  # else finished by another reader's recovery in the meantime


class OwnedFolder:
    """A folder rnn2c writes, locked for the lifetime of the ``with`` block.

    ``inputs``: paths the command reads (model, calibration set, ...); the write refuses to
    replace or delete any of them. ``nested``: relative paths of manifests of other rnn2c
    outputs inside this one (a firmware project's model/rnn2c.json) that vouch for the files
    they list (see _vouched).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        manifest_name: str,
        what: str = "--out",
        inputs: Iterable[str | os.PathLike[str]] = (),
        nested: Iterable[str] = (),
    ) -> None:
        self.path = Path(path)
        self.nested = list(nested)
        self._nested_cache: dict[str, tuple[dict[str, str], bool] | None] = {}
        self.manifest_name = manifest_name
        self.what = what
        self.inputs = [Path(p) for p in inputs if p is not None]
        self._lock_fd: int | None = None
        self._created: list[Path] = []
        self.manifest: dict[str, Any] | None = None

    # -- locking -------------------------------------------------------------------------
    def __enter__(self) -> OwnedFolder:
        check_output_path(self.path, self.what)
        missing: list[Path] = []
        p = self.path.absolute()
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                d.mkdir()
                self._created.append(d)
        except OSError as e:
            self._remove_created()
            raise OutputError(
                f"{self.what} {str(self.path)!r}: cannot create the folder ({_os_reason(e)})"
            ) from None
        self._lock()
        try:
            recover(self.path, self.manifest_name, locked=True)
            self.manifest = read_manifest(self.path, self.manifest_name)
        except BaseException:
            self._unlock()
            self._remove_created()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._unlock()
        self._remove_created()

    def _remove_created(self) -> None:
        """Folders this command created and left empty (it failed before writing) go again."""
        for d in reversed(self._created):
            try:
                d.rmdir()
            except OSError:
                break
        self._created = []

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        for _ in range(5):
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
            except OSError as e:
                if _kind(lock) not in ("file", "missing"):
                    raise OutputError(
                        f"{self.what} {str(self.path)!r}: its lock {LOCK_NAME!r} is "
                        f"{_KIND_WORDS[_kind(lock)]}, not rnn2c's; remove it "
                        f"(rm {shlex.quote(str(lock))}) and run again"
                    ) from None
                raise OutputError(
                    f"{self.what} {str(self.path)!r}: cannot write there ({_os_reason(e)})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputError(
                    f"{self.what} {str(self.path)!r} is being written by another rnn2c command; "
                    "wait for it to finish or choose another folder"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)  # the lock file was replaced under us: take the new one
        raise OutputError(f"{self.what} {str(self.path)!r}: cannot take the folder's lock")

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None

    # -- ownership -----------------------------------------------------------------------
    @property
    def owned(self) -> dict[str, str | None]:
        """{relative path: sha256 when recorded} of the files the current manifest lists."""
        if self.manifest is None:
            return {}
        hashes = self.manifest.get("sha256", {})
        return {f: hashes.get(f) for f in self.manifest["files"]}

    def is_empty_of_user_files(self) -> bool:
        return not any(p.name != LOCK_NAME for p in self.path.iterdir())

    def _is_input(self, target: Path) -> Path | None:
        for inp in self.inputs:
            try:
                if target.exists() and inp.exists() and os.path.samefile(target, inp):
                    return inp
            except OSError:
                continue
        return None

    def check_replaceable(self, names: Iterable[str]) -> list[str]:
        """Refuse if writing ``names`` would overwrite what rnn2c does not own, or reach a path
        through a symbolic link or a file where a folder goes; return the previously owned files
        the write drops (to be deleted)."""
        owned = self.owned
        names = list(names)
        for rel in names:
            for part in PurePosixPath(rel).parts:
                if len(os.fsencode(part)) > NAME_MAX:
                    raise OutputError(
                        f"{self.what}: the file name {part[:24]!r}... would be "
                        f"{len(os.fsencode(part))} bytes; at most {NAME_MAX} (use a shorter name)"
                    )
            if not _rnn2c_name(rel):
                raise OutputError(f"internal: unsafe output file name {rel!r}")
        dropped = [rel for rel in owned if rel not in names and rel != self.manifest_name]
        for rel in [*names, self.manifest_name, *dropped]:
            self._check_target(rel, owned)
        return dropped

    def _check_target(self, rel: str, owned: dict[str, str | None]) -> None:
        """One path the write replaces, creates or deletes (see check_replaceable)."""
        where = f"{self.what} {str(self.path)!r}"
        blocked = _blocked_way(self.path, rel)
        if blocked is not None:
            raise OutputError(
                f"{where}: {blocked[0]!r} is {blocked[1]}; rnn2c writes or deletes {rel!r} only "
                f"inside a real folder (it never follows a symbolic link): move {blocked[0]!r} "
                "away or choose another folder"
            )
        target = self.path / rel
        inp = self._is_input(target)
        if inp is not None:
            raise OutputError(
                f"{where}: writing would replace {rel!r}, which is this command's own input "
                f"{str(inp)!r}; choose another --out or move it"
            )
        kind = _kind(target)
        if kind == "dir":
            raise OutputError(
                f"{where}: {rel!r} is a folder where rnn2c writes a file; move it away or choose "
                "another folder"
            )
        if kind == "missing":
            return
        if rel == self.manifest_name:
            if kind == "file":
                return  # read_manifest already vouched for it
            raise OutputError(
                f"{where}: its manifest {rel!r} is now {_KIND_WORDS[kind]}; rnn2c writes a file "
                "there. Move it away or choose another folder"
            )
        if rel not in owned:
            raise OutputError(
                f"{where}: {rel!r} exists and was not written by rnn2c; move it away or choose "
                f"another folder (rnn2c replaces only the files its {self.manifest_name} lists)"
            )
        if kind != "file":
            raise OutputError(
                f"{where}: {rel!r} is now {_KIND_WORDS[kind]}; rnn2c wrote a file there. Move it "
                "away or choose another folder"
            )
        recorded = owned[rel]
        if recorded is not None and file_sha256(target) != recorded and not self._vouched(rel):
            raise OutputError(
                f"{where}: {rel!r} was edited since rnn2c wrote it; move or delete it to keep or "
                "drop your changes, then run again"
            )

    def _vouched(self, rel: str) -> bool:
        """Whether rnn2c itself rewrote ``rel`` (not a user edit): a manifest nested in this
        folder (``nested``, e.g. a firmware project's model/rnn2c.json after `rnn2c export --out
        fw/model`), which this folder's manifest lists and rnn2c wrote (see _nested_files),
        records the file's current bytes. The nested manifest itself counts as rnn2c's while
        every file it lists matches it (a user edit anywhere in it is still refused)."""
        for nested in self.nested:
            base = PurePosixPath(nested).parent
            if nested not in self.owned or base not in PurePosixPath(rel).parents:
                continue
            found = self._nested_files(nested)
            if found is None:
                continue
            hashes, intact = found
            if rel == nested:
                return intact
            want = hashes.get(str(PurePosixPath(rel).relative_to(base)))
            if want is not None and file_sha256(self.path / rel) == want:
                return True
        return False

    def _nested_files(self, nested: str) -> tuple[dict[str, str], bool] | None:
        """({path relative to its folder: sha256}, whether every listed file matches) of a
        nested manifest rnn2c wrote: a plain file (no symbolic link on the way), a valid
        manifest byte for byte as rnn2c formats one, with no write of its own pending (no
        journal); None otherwise."""
        if nested in self._nested_cache:
            return self._nested_cache[nested]
        found: tuple[dict[str, str], bool] | None = None
        base = (self.path / nested).parent
        try:
            if (
                _blocked_way(self.path, nested) is None
                and _kind(self.path / nested) == "file"
                and _kind(base / _journal_name(PurePosixPath(nested).name)) == "missing"
            ):
                data = _read_capped(self.path / nested, nested, MAX_MANIFEST_BYTES)
                files = _manifest_files(data, nested)
                manifest = json.loads(data.decode())
                hashes = {f: h for f, h in manifest.get("sha256", {}).items() if f in files}
                if data == _json_bytes(manifest) and all(
                    isinstance(h, str) for h in hashes.values()
                ):
                    intact = set(hashes) == files and all(
                        _blocked_way(base, f) is None
                        and _kind(base / f) == "file"
                        and file_sha256(base / f) == hashes[f]
                        for f in files
                    )
                    found = (hashes, intact)
        except (OSError, ValueError, _Refused):
            found = None
        self._nested_cache[nested] = found
        return found

    def write(self, blobs: Mapping[str, bytes], manifest: dict[str, Any]) -> None:
        """Replace the owned files with ``blobs`` and the manifest; see the module doc."""
        assert self._lock_fd is not None, "use OwnedFolder in a with block"
        dropped = self.check_replaceable(blobs)
        manifest = dict(manifest)
        manifest["files"] = sorted(blobs)
        manifest["sha256"] = {rel: sha256(data) for rel, data in sorted(blobs.items())}
        payload = {**blobs, self.manifest_name: _json_bytes(manifest)}
        token = secrets.token_hex(4)
        temps: list[Path] = []
        renames: list[tuple[str, str]] = []
        journal = self.path / _journal_name(self.manifest_name)
        journal_tmp = self.path / f"{TMP_PREFIX}{token}-journal"
        where = f"{self.what} {str(self.path)!r}"
        try:
            # the manifest goes last: it names the new set only once every file is in place
            for i, (rel, data) in enumerate(sorted(payload.items(), key=self._manifest_last)):
                tmp = self.path / f"{TMP_PREFIX}{token}-{i}"
                temps.append(tmp)
                _write_synced(tmp, data)
                renames.append((tmp.name, rel))
            # the journal as recovery will check it, before the commit point
            _check_plan(self.path, self.manifest_name, _Plan(renames, dropped))
            temps.append(journal_tmp)
            _write_synced(journal_tmp, _json_bytes({"renames": renames, "delete": dropped}))
            _fsync_dir(self.path)
            os.replace(journal_tmp, journal)  # the commit point
        except OSError as e:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            raise OutputError(
                f"{where}: writing failed ({_os_reason(e)}); nothing was changed"
            ) from None
        except _Refused as e:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            raise OutputError(f"{where}: {e.reason}; nothing was changed") from None
        except BaseException:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path)
        recover(self.path, self.manifest_name, locked=True)
        self.manifest = manifest
        self._nested_cache = {}

    def _manifest_last(self, item: tuple[str, bytes]) -> tuple[bool, str]:
        return (item[0] == self.manifest_name, item[0])


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def check_output_file(path: str | os.PathLike[str] | None, what: str) -> None:
    """For --plot/--json style outputs: the folder must exist and be writable, up front."""
    if path is None:
        return
    p = Path(path)
    check_output_path(p, what, folder=False)
    if not p.parent.is_dir() and str(p.parent) not in ("", "."):
        raise OutputError(
            f"{what} {str(path)!r}: the folder {str(p.parent)!r} does not exist; create it first"
        )


def write_file_atomically(path: str | os.PathLike[str], data: bytes, what: str) -> None:
    """One output file (a report, a plot): temp file beside it, then rename."""
    p = Path(path)
    tmp = p.parent / f"{TMP_PREFIX}{secrets.token_hex(4)}-{p.name[:64]}"
    try:
        _write_synced(tmp, data)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{what} {str(path)!r}: cannot write ({_os_reason(e)})") from None
