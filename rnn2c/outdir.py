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
  (:func:`recover`). So a kill at any point leaves the old complete set or, once recovered, the
  new one; never a mixture, never a missing folder.
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
import secrets
from collections.abc import Iterable, Mapping
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
    except (OSError, UnicodeDecodeError, ValueError) as e:
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
        or not all(isinstance(f, str) and _safe_relative(f) for f in files)
    ):
        raise OutputError(
            f"{where} is not an rnn2c manifest (no rnn2c_version and files list); move it away "
            "or choose another folder"
        )
    hashes = data.get("sha256", {})
    if not isinstance(hashes, dict):
        raise OutputError(f"{where}: 'sha256' is not a mapping of file names to hashes")
    return data


def _safe_relative(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


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
        fd = os.open(d / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no writer (it creates one before anything else)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def recover(folder: str | os.PathLike[str], manifest_name: str, locked: bool = False) -> bool:
    """Finish a write that was interrupted after its commit point; sweep stray temporaries.

    Returns True if an interrupted write was finished. Safe to call on any folder; only files
    named by rnn2c's own journal and temporaries are touched. A reader (locked=False) leaves a
    folder alone while another rnn2c command is writing it: that command finishes its own work.
    """
    d = Path(folder)
    if not locked and _writer_active(d):
        return False
    journal = d / _journal_name(manifest_name)
    done = False
    if journal.is_file():
        try:
            plan = json.loads(journal.read_text())
            renames = [(str(a), str(b)) for a, b in plan["renames"]]
            deletes = [str(f) for f in plan["delete"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise OutputError(
                f"{str(journal)!r} is damaged ({type(e).__name__}); remove it and run the "
                "command again"
            ) from None
        _apply(d, renames, deletes)
        journal.unlink(missing_ok=True)
        _fsync_dir(d)
        done = True
    if d.is_dir():
        for stray in d.glob(f"{TMP_PREFIX}*"):
            if stray.is_file() and not stray.is_symlink():
                stray.unlink(missing_ok=True)
    return done


def _apply(d: Path, renames: list[tuple[str, str]], deletes: list[str]) -> None:
    """Renames first (the manifest is the last of them), then deletions of dropped files."""
    for tmp, final in renames:
        if (d / tmp).exists():
            (d / final).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(d / tmp, d / final)
            except FileNotFoundError:
                pass  # finished by another recovery in the meantime
    for rel in deletes:
        (d / rel).unlink(missing_ok=True)
        parent = (d / rel).parent
        while parent != d and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()  # a folder (src/) left empty by the files rnn2c no longer writes
            parent = parent.parent


class OwnedFolder:
    """A folder rnn2c writes, locked for the lifetime of the ``with`` block.

    ``inputs``: paths the command reads (model, calibration set, ...); the write refuses to
    replace or delete any of them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        manifest_name: str,
        what: str = "--out",
        inputs: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        self.path = Path(path)
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
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
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
        """Refuse if writing ``names`` would overwrite what rnn2c does not own; return the
        previously owned files the write drops (to be deleted)."""
        owned = self.owned
        names = list(names)
        for rel in names:
            if not _safe_relative(rel):
                raise OutputError(f"internal: unsafe output file name {rel!r}")
            for part in PurePosixPath(rel).parts:
                if len(os.fsencode(part)) > NAME_MAX:
                    raise OutputError(
                        f"{self.what}: the file name {part[:24]!r}... would be "
                        f"{len(os.fsencode(part))} bytes; at most {NAME_MAX} (use a shorter name)"
                    )
        dropped = [rel for rel in owned if rel not in names and rel != self.manifest_name]
        for rel in [*names, self.manifest_name, *dropped]:
            target = self.path / rel
            inp = self._is_input(target)
            if inp is not None:
                raise OutputError(
                    f"{self.what} {str(self.path)!r}: writing would replace {rel!r}, which is "
                    f"this command's own input {str(inp)!r}; choose another --out or move it"
                )
            if target.is_dir() and not target.is_symlink():
                raise OutputError(
                    f"{self.what} {str(self.path)!r}: {rel!r} is a folder where rnn2c writes a "
                    "file; move it away or choose another folder"
                )
            if not (target.exists() or target.is_symlink()):
                continue
            if rel == self.manifest_name:
                continue  # read_manifest already vouched for it
            if rel not in owned:
                raise OutputError(
                    f"{self.what} {str(self.path)!r}: {rel!r} exists and was not written by "
                    "rnn2c; move it away or choose another folder (rnn2c replaces only the "
                    f"files its {self.manifest_name} lists)"
                )
            if target.is_symlink():
                raise OutputError(
                    f"{self.what} {str(self.path)!r}: {rel!r} is now a symbolic link; rnn2c "
                    "wrote a file there. Move it away or choose another folder"
                )
            recorded = owned[rel]
            if recorded is not None and file_sha256(target) != recorded:
                raise OutputError(
                    f"{self.what} {str(self.path)!r}: {rel!r} was edited since rnn2c wrote it; "
                    "move or delete it to keep or drop your changes, then run again"
                )
        return dropped

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
        try:
            # the manifest goes last: it names the new set only once every file is in place
            for i, (rel, data) in enumerate(sorted(payload.items(), key=self._manifest_last)):
                tmp = self.path / f"{TMP_PREFIX}{token}-{i}"
                temps.append(tmp)
                _write_synced(tmp, data)
                renames.append((tmp.name, rel))
            temps.append(journal_tmp)
            _write_synced(journal_tmp, _json_bytes({"renames": renames, "delete": dropped}))
            _fsync_dir(self.path)
            os.replace(journal_tmp, journal)  # the commit point
        except OSError as e:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            raise OutputError(
                f"{self.what} {str(self.path)!r}: writing failed ({_os_reason(e)}); nothing "
                "was changed"
            ) from None
        except BaseException:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path)
        recover(self.path, self.manifest_name, locked=True)
        self.manifest = manifest

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
