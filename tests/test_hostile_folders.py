"""Hostile output folders: a crafted journal or manifest, a symbolic link or a user's file where
rnn2c writes a folder, an export edited after the fact.

The table feeds the recovery of an interrupted write hostile journals (and export hostile
manifests): each is refused in one line before anything is touched, nothing outside the folder
changes (a sibling "victim" tree's files, contents and mtimes), and the folder stays usable: the
user follows the message's instruction and the next export succeeds. Each row runs through
recover() itself and through the CLI (`rnn2c export`, `rnn2c verify`); one tiny Keras model.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import rnn2c.outdir as outdir
from rnn2c.cli import main
from rnn2c.emulator.verify import read_export_dir
from rnn2c.export import export_model
from rnn2c.export.isa import RUNTIME_FILES
from rnn2c.outdir import TMP_PREFIX, OutputError, recover

T, F = 5, 2
MANIFEST = "rnn2c.json"
JOURNAL = f".{MANIFEST}.journal"
TOKEN = "0badc0de"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model, its calibration and data, and one export of it (name m)."""
    d = tmp_path_factory.mktemp("hostile")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((T, F)), keras.layers.GRU(2), keras.layers.Dense(2, activation="softmax")]
    )
    model.save(d / "m.keras")
    rng = np.random.default_rng(0)
    np.savez(d / "calib.npz", x=rng.normal(size=(8, T, F)).astype(np.float32))
    np.savez(d / "data.npz", x=rng.normal(size=(4, T, F)).astype(np.float32))
    export_model(d / "m.keras", d / "calib.npz", d / "base", name="m")
    return d


def _export(ws: Path, out: Path, *extra: str) -> int:
    argv = ["export", str(ws / "m.keras"), "--calib", str(ws / "calib.npz"), "--out", str(out)]
    return main([*argv, "--name", "m", *extra])


def _verify(ws: Path, out: Path) -> int:
    return main(["verify", str(ws / "m.keras"), str(out), "--data", str(ws / "data.npz")])


def tree(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Every entry under root (not root itself): kind, mode, mtime, and a file's sha256 or a
    link's target; the subtrees in skip left out."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            if p in skip:
                continue
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode, st.st_mtime_ns)
            elif p.is_file():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                out[rel] = ("file", st.st_mode, st.st_mtime_ns, digest)
            else:
                out[rel] = ("other", st.st_mode, st.st_mtime_ns)
        dirnames[:] = [n for n in dirnames if Path(dirpath) / n not in skip]
    return out


# --- crafting journals as rnn2c writes them, then spoiling them ---------------------------


def tmp(i: int) -> str:
    return f"{TMP_PREFIX}{TOKEN}-{i}"


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def staged(
    out: Path, extra: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A journal exactly as rnn2c writes one, its temporaries written: the export's own files
    again (less ``drop``, which it deletes), plus ``extra``; the new manifest lists them."""
    manifest = json.loads((out / MANIFEST).read_text())
    blobs = {rel: (out / rel).read_bytes() for rel in manifest["files"] if rel not in drop}
    blobs.update(extra or {})
    new = dict(manifest, files=sorted(blobs))
    new["sha256"] = {rel: hashlib.sha256(b).hexdigest() for rel, b in sorted(blobs.items())}
    renames = []
    for i, rel in enumerate([*sorted(blobs), MANIFEST]):
        (out / tmp(i)).write_bytes(blobs[rel] if rel in blobs else _json(new))
        renames.append([tmp(i), rel])
    return {"renames": renames, "delete": sorted(drop)}


def own(out: Path, rel: str) -> None:
    """Make the current manifest list ``rel`` (with its current hash), as if rnn2c wrote it."""
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] = sorted([*manifest["files"], rel])
    manifest["sha256"][rel] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    (out / MANIFEST).write_bytes(_json(manifest))


def write_journal(out: Path, journal: Any) -> None:
    (out / JOURNAL).write_bytes(journal if isinstance(journal, bytes) else _json(journal))


Setup = Callable[[Path, Path], None]  # (out, victim): spoil the folder, write the journal


def _row(change: Callable[[dict[str, Any], Path, Path], Any]) -> Setup:
    """A staged journal changed by ``change(journal, out, victim)`` (its result, if not None,
    replaces the journal)."""

    def setup(out: Path, victim: Path) -> None:
        j = staged(out)
        changed = change(j, out, victim)
        write_journal(out, j if changed is None else changed)

    return setup


def _set(path: tuple[Any, ...], value: Callable[[Path, Path], Any]) -> Setup:
    def change(j: dict[str, Any], out: Path, victim: Path) -> None:
        node = j
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value(out, victim)

    return _row(change)


def _symlinked_parent_write(out: Path, victim: Path) -> None:
    (out / "lnk").symlink_to(victim, target_is_directory=True)
    write_journal(out, staged(out, extra={"lnk/m.c": b"/* overwrites the victim's m.c */\n"}))


def _symlinked_parent_delete(out: Path, victim: Path) -> None:
    (out / "lnk").symlink_to(victim, target_is_directory=True)
    own(out, "lnk/victim.txt")  # a manifest that "owns" a file through the link, hash right
    write_journal(out, staged(out, drop=("lnk/victim.txt",)))


def _symlinked_target(out: Path, victim: Path) -> None:
    j = staged(out)
    (out / "m.c").unlink()
    (out / "m.c").symlink_to(victim / "m.c")
    write_journal(out, j)


def _symlinked_target_delete(out: Path, victim: Path) -> None:
    (out / "old.c").symlink_to(victim / "victim.txt")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] = sorted([*manifest["files"], "old.c"])
    (out / MANIFEST).write_bytes(_json(manifest))
    write_journal(out, staged(out, drop=("old.c",)))


def _symlinked_source(out: Path, victim: Path) -> None:
    j = staged(out)
    (out / tmp(0)).unlink()
    (out / tmp(0)).symlink_to(victim / "victim.txt")
    write_journal(out, j)


def _journal_link(out: Path, victim: Path) -> None:
    (victim / "journal.json").write_bytes(_json(staged(out)))
    (out / JOURNAL).symlink_to(victim / "journal.json")


def _journal_folder(out: Path, victim: Path) -> None:
    (out / JOURNAL).mkdir()


def _journal_fifo(out: Path, victim: Path) -> None:
    os.mkfifo(out / JOURNAL)


def _after_manifest(j: dict[str, Any], out: Path, victim: Path) -> None:
    for src, _ in j["renames"]:
        (out / src).unlink()  # as if every rename was done
    j["delete"] = ["notes.txt"]


def _new_manifest_lies(j: dict[str, Any], out: Path, victim: Path) -> None:
    new = json.loads((out / j["renames"][-1][0]).read_text())
    new["files"].append("notes.txt")
    (out / j["renames"][-1][0]).write_bytes(_json(new))


def _user_file_where_a_folder_goes(out: Path, victim: Path) -> None:
    (out / "src").write_text("a user's file named src\n")
    write_journal(out, staged(out, extra={"src/m.c": b"/* the arduino copy */\n"}))


def _edited_since(out: Path, victim: Path) -> None:
    own(out, "notes.txt")
    (out / "notes.txt").write_text("edited after rnn2c wrote it\n")
    write_journal(out, staged(out, drop=("notes.txt",)))


#: id -> (setup, a key fact of the refusal)
JOURNALS: dict[str, tuple[Setup, str]] = {
    "absolute delete": (
        _set(("delete",), lambda o, v: [str(v / "victim.txt")]),
        "not a path rnn2c writes",
    ),
    "dotdot delete": (_set(("delete",), lambda o, v: ["../victim/victim.txt"]), "not a path"),
    "dotdot inside delete": (_set(("delete",), lambda o, v: ["x/../../victim/m.c"]), "not a path"),
    "absolute target": (_set(("renames", 0, 1), lambda o, v: str(v / "m.c")), "not a path"),
    "dotdot target": (_set(("renames", 0, 1), lambda o, v: "../victim/m.c"), "not a path"),
    "unnormalised target": (_set(("renames", 0, 1), lambda o, v: "./m.c"), "not a path"),
    "absolute source": (
        _set(("renames", 0, 0), lambda o, v: str(v / "victim.txt")),
        "not a temporary file rnn2c writes",
    ),
    "dotdot source": (
        _set(("renames", 0, 0), lambda o, v: "../victim/victim.txt"),
        "not a temporary file",
    ),
    "user file as source": (_set(("renames", 0, 0), lambda o, v: "notes.txt"), "not a temporary"),
    "symlinked parent folder, write": (_symlinked_parent_write, "'lnk' is a symbolic link"),
    "symlinked parent folder, delete": (_symlinked_parent_delete, "'lnk' is a symbolic link"),
    "symlinked target": (_symlinked_target, "'m.c' is a symbolic link"),
    "symlinked target, delete": (_symlinked_target_delete, "'old.c', which it deletes, is a sym"),
    "symlinked source": (_symlinked_source, "not a plain file"),
    "hidden name": (
        _row(lambda j, o, v: j["renames"].insert(0, [tmp(0), ".git/hooks/pre-commit"])),
        "not a path rnn2c writes",
    ),
    "lock as target": (_set(("renames", 0, 1), lambda o, v: ".rnn2c.lock"), "not a path"),
    "duplicate targets": (
        _row(lambda j, o, v: j["renames"][1].__setitem__(1, j["renames"][0][1])),
        "two renames write the same path",
    ),
    "looping renames": (
        _row(lambda j, o, v: {"renames": [[tmp(0), tmp(1)], [tmp(1), tmp(0)]], "delete": []}),
        "not a path rnn2c writes",
    ),
    "chained renames": (_set(("renames", 1, 0), lambda o, v: "m.c"), "not a temporary file"),
    "renames out of order": (_row(lambda j, o, v: j["renames"].reverse()), "not a temporary"),
    "a path written and deleted": (_set(("delete",), lambda o, v: ["m.c"]), "one it also writes"),
    "no manifest rename": (
        _row(lambda j, o, v: j["renames"].pop() and None),
        "does not put the manifest",
    ),
    "too many entries": (
        _set(("delete",), lambda o, v: [f"f{i}.c" for i in range(5000)]),
        "more than 4096 entries",
    ),
    "huge file": (_row(lambda j, o, v: b" " * (2 << 20) + _json(j)), "larger than 1048576 bytes"),
    "non-JSON": (_row(lambda j, o, v: b"\x89PNG\r\n\x1a\n\x00garbage"), "not JSON"),
    "deeply nested JSON": (_row(lambda j, o, v: b"[" * 300_000), "not JSON"),
    "a list": (_row(lambda j, o, v: [["x", "../victim.txt"]]), "not an object"),
    "an extra key": (_set(("run",), lambda o, v: "rm -rf ~"), "exactly 'renames' and 'delete'"),
    "renames a string": (_set(("renames",), lambda o, v: "m.c"), "must be lists"),
    "delete a mapping": (_set(("delete",), lambda o, v: {"m.c": 1}), "must be lists"),
    "pair of numbers": (_set(("renames", 0), lambda o, v: [1, 2]), "pair of strings"),
    "delete a number": (_set(("delete",), lambda o, v: [7]), "not a path"),
    "journal a symlink": (_journal_link, "cannot be opened"),
    "journal a folder": (_journal_folder, "not a regular file"),
    "journal a fifo": (_journal_fifo, "not a regular file"),
    "overwrites a user file": (
        _row(lambda j, o, v: {**staged(o, extra={"notes.txt": b"rnn2c's now\n"})}),
        "'notes.txt', which 'rnn2c.json' does not list",
    ),
    "deletes a user file": (_set(("delete",), lambda o, v: ["notes.txt"]), "not a file the write"),
    "deletes after the manifest": (_row(_after_manifest), "after the manifest was already"),
    "new manifest lies": (_row(_new_manifest_lies), "not the files its new manifest lists"),
    "user file where a folder goes": (_user_file_where_a_folder_goes, "'src' is a file"),
    "deletes an edited file": (_edited_since, "was edited since rnn2c wrote it"),
}


def _prepare(ws: Path, tmp_path: Path, setup: Setup) -> tuple[Path, Path]:
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "victim.txt").write_text("the victim's\n")
    (victim / "m.c").write_text("/* the victim's own m.c */\n")
    (victim / "sub" / "deep.txt").write_text("deep\n")
    out = tmp_path / "out"
    shutil.copytree(ws / "base", out)
    (out / "notes.txt").write_text("a user's notes\n")
    setup(out, victim)
    return out, victim


def _follow(message: str, out: Path, moved: Path) -> None:
    """Do what the refusal says: move the named path away, or remove the journal."""
    move = re.search(r"move '([^']+)' away", message)
    if move:
        moved.mkdir(exist_ok=True)
        os.rename(out / move.group(1), moved / Path(move.group(1)).name)
        return
    rm = re.search(r"\(rm (\S+)\)", message)
    assert rm, message
    path = Path(rm.group(1))
    assert path == out / JOURNAL
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["recover", "export", "verify"])
@pytest.mark.parametrize("row", list(JOURNALS))
def test_a_hostile_journal_is_refused_touching_nothing(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, how: str
) -> None:
    setup, fact = JOURNALS[row]
    out, victim = _prepare(ws, tmp_path, setup)
    outside = tree(tmp_path, skip=(out,))
    inside = tree(out)
    capsys.readouterr()
    if how == "recover":
        with pytest.raises(OutputError) as e:
            recover(out, MANIFEST)
        message = str(e.value)
    else:
        rc = _export(ws, out) if how == "export" else _verify(ws, out)
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, err
        message = err
    assert "\n" not in message.strip() and fact in message, message
    assert str(out / JOURNAL) in message and ("is not a journal rnn2c wrote" in message) != (
        "cannot finish the interrupted write" in message
    ), message
    assert tree(tmp_path, skip=(out,)) == outside  # nothing outside the folder changed
    assert tree(out) == inside  # nor inside: nothing touched
    if how == "verify":
        return
    _follow(message, out, tmp_path / "moved")
    outside = tree(tmp_path, skip=(out,))
    capsys.readouterr()
    assert _export(ws, out) == 0, capsys.readouterr().err
    assert tree(tmp_path, skip=(out,)) == outside
    if not (tmp_path / "moved" / "notes.txt").exists():  # the user's file, untouched
        assert (out / "notes.txt").read_text() == "a user's notes\n"
    exp = read_export_dir(out)
    assert exp.name == "m" and not exp.changed_files
    assert not (out / JOURNAL).exists() and not list(out.glob(f"{TMP_PREFIX}*"))


@pytest.mark.parametrize("drop", [(), ("m.h",)])
def test_the_journals_rnn2c_writes_are_finished(ws: Path, tmp_path: Path, drop: tuple) -> None:
    """The control for the table: the same journals, unspoilt, are applied."""
    out, victim = _prepare(ws, tmp_path, lambda o, v: None)
    write_journal(out, staged(out, extra={"src/m2.c": b"/* new */\n"}, drop=drop))
    outside = tree(tmp_path, skip=(out,))
    assert recover(out, MANIFEST) is True
    assert tree(tmp_path, skip=(out,)) == outside
    assert (out / "src" / "m2.c").read_bytes() == b"/* new */\n"
    assert (out / "m.h").exists() == (not drop)
    assert not (out / JOURNAL).exists() and not list(out.glob(f"{TMP_PREFIX}*"))
    assert "src/m2.c" in json.loads((out / MANIFEST).read_text())["files"]


# --- hostile manifests ------------------------------------------------------------------


def _manifest_owns_through_link(out: Path, victim: Path) -> None:
    (out / "lnk").symlink_to(victim, target_is_directory=True)
    own(out, "lnk/victim.txt")  # a re-export drops it: the delete would go through the link


def _manifest_owns_hidden(out: Path, victim: Path) -> None:
    (out / ".profile").write_text("export PATH=...\n")
    own(out, ".profile")


def _manifest_owns_dotdot(out: Path, victim: Path) -> None:
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"].append("../victim/victim.txt")
    (out / MANIFEST).write_bytes(_json(manifest))


def _manifest_a_symlink(out: Path, victim: Path) -> None:
    (victim / "manifest.json").write_bytes((out / MANIFEST).read_bytes())
    (out / MANIFEST).unlink()
    (out / MANIFEST).symlink_to(victim / "manifest.json")


MANIFESTS: dict[str, tuple[Setup, str]] = {
    "owns a file through a symlinked folder": (_manifest_owns_through_link, "'lnk' is a symbolic"),
    "owns a hidden file": (_manifest_owns_hidden, "is not an rnn2c manifest"),
    "owns a path outside": (_manifest_owns_dotdot, "is not an rnn2c manifest"),
    "is a symlink": (_manifest_a_symlink, "'rnn2c.json' is now a symbolic link"),
}


@pytest.mark.parametrize("row", list(MANIFESTS))
def test_a_hostile_manifest_is_refused_touching_nothing(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str
) -> None:
    setup, fact = MANIFESTS[row]
    out, victim = _prepare(ws, tmp_path, setup)
    outside, inside = tree(tmp_path, skip=(out,)), tree(out)
    capsys.readouterr()
    assert _export(ws, out, "--activations", "int16") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fact in err, err
    assert tree(tmp_path, skip=(out,)) == outside
    assert {k: v for k, v in tree(out).items() if k != ".rnn2c.lock"} == inside


# --- the other items ------------------------------------------------------------


def test_an_owned_src_folder_replaced_by_a_symlink_is_never_followed(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _export(ws, out, "--package", "arduino") == 0
    elsewhere = tmp_path / "elsewhere"
    (out / "src").rename(elsewhere)
    (out / "src").symlink_to(elsewhere, target_is_directory=True)
    outside, inside = tree(tmp_path, skip=(out,)), tree(out)
    capsys.readouterr()
    assert _export(ws, out) == 2  # drops src/...: it would delete inside the link's target
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'src' is a symbolic link" in err and "move 'src'" in err
    assert tree(tmp_path, skip=(out,)) == outside
    assert {k: v for k, v in tree(out).items() if k != ".rnn2c.lock"} == inside
    assert not (out / JOURNAL).exists()  # refused before the commit point: not stuck
    (out / "src").unlink()  # what the message says; then it works
    assert _export(ws, out) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(["m.c", "m.h", *RUNTIME_FILES])


def test_a_users_file_where_rnn2c_writes_a_folder(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`firmware --out` writes model/<name>.c, `export --package arduino` src/...: a user's
    file named model or src is refused before anything is written, and nothing gets stuck."""
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "model").write_text("a user's file named model\n")
    before = tree(fw)  # its entries (the lock comes and goes: the folder's own mtime changes)
    argv = ["firmware", str(ws / "base"), "--board", "mps2-an386", "--out", str(fw)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'model' is a file" in err and "move 'model' away" in err
    assert tree(fw) == before
    (fw / "model").unlink()
    assert main(argv) == 0 and (fw / "model" / "m.c").is_file()

    out = tmp_path / "out"
    out.mkdir()
    (out / "src").write_text("a user's file named src\n")
    before = tree(out)
    assert _export(ws, out, "--package", "arduino") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'src' is a file" in err
    assert tree(out) == before
    (out / "src").unlink()
    assert _export(ws, out, "--package", "arduino") == 0 and (out / "src" / "m.c").is_file()


def test_a_recovery_that_fails_is_one_line_and_can_be_finished(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OSError while finishing a (valid) journal: one line naming the journal and what to
    do, the journal kept; once the cause is gone the next command finishes the write."""
    out, victim = _prepare(ws, tmp_path, lambda o, v: None)
    write_journal(out, staged(out, extra={"src/m2.c": b"/* new */\n"}, drop=("m.h",)))
    real_replace = os.replace

    def failing(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
        if Path(dst).name == "rnn2c_runtime.h":  # the third rename: two are done
            raise OSError(errno.EIO, "Input/output error", str(dst))
        real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(outdir.os, "replace", failing)
    for run in (lambda: _export(ws, out), lambda: _verify(ws, out)):
        capsys.readouterr()
        assert run() == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"{str(out / JOURNAL)!r}: finishing the interrupted write failed" in err
        assert "Input/output error" in err and "rnn2c_runtime.h" in err and "run again" in err
        assert (out / JOURNAL).exists() and (out / "m.h").exists()  # kept: it can resume
    monkeypatch.setattr(outdir.os, "replace", real_replace)
    assert recover(out, MANIFEST) is True  # the cause gone: finished
    assert (out / "src" / "m2.c").is_file() and not (out / "m.h").exists()
    assert not read_export_dir(out).changed_files


def test_firmware_after_rnn2c_reexported_its_model_folder(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rnn2c export --out fw/model` rewrites files the firmware project owns: rnn2c's own
    writing, not a user edit; an edit after that is still refused."""
    fw = tmp_path / "fw"
    board = ["--board", "mps2-an386", "--out", str(fw)]
    calib = ["--calib", str(ws / "calib.npz")]
    assert main(["firmware", str(ws / "m.keras"), *calib, "--name", "m", *board]) == 0
    assert _export(ws, fw / "model", "--activations", "int16") == 0
    capsys.readouterr()
    assert main(["firmware", str(fw / "model"), *board]) == 0, capsys.readouterr().err
    assert "int16" in (fw / "model" / "rnn2c.json").read_text()
    assert _export(ws, fw / "model", "--calibration", "percentile") == 0
    assert main(["firmware", str(ws / "m.keras"), *calib, "--name", "m", *board]) == 0

    assert _export(ws, fw / "model", "--activations", "int16") == 0
    c = fw / "model" / "m.c"
    c.write_text(c.read_text() + "/* my edit */\n")
    capsys.readouterr()
    assert main(["firmware", str(ws / "m.keras"), *calib, "--name", "m", *board]) == 2
    err = capsys.readouterr().err
    assert "'model/m.c' was edited since rnn2c wrote it" in err and err.count("\n") == 1
    assert c.read_text().endswith("/* my edit */\n")


def _one_lsb_edit(c: Path) -> None:
    text = c.read_text()
    match = re.search(r"static const int8_t \w+_weight\[[^\]]+\][^=]* = \{\s*(-?\d+)", text)
    assert match is not None
    v = int(match.group(1))
    c.write_text(text[: match.start(1)] + str(v + 1 if v < 127 else v - 1) + text[match.end(1) :])


def test_every_reader_of_an_export_checks_its_sha256(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """size and firmware refuse a 1-LSB weight edit (exit 2, the same line); verify fails it."""
    exp = tmp_path / "exp"
    shutil.copytree(ws / "base", exp)
    _one_lsb_edit(exp / "m.c")
    capsys.readouterr()
    assert main(["size", str(exp), "--target", "cortex-m4"]) == 2
    size_err = capsys.readouterr().err
    assert size_err.count("\n") == 1 and "m.c changed since the export" in size_err
    fw = tmp_path / "fw"
    assert main(["firmware", str(exp), "--board", "mps2-an386", "--out", str(fw)]) == 2
    fw_err = capsys.readouterr().err
    assert fw_err.split("error: ", 1)[1] == size_err.split("error: ", 1)[1]  # one check
    assert not fw.exists()
    assert _verify(ws, exp) == 1
    assert "export files edited after export: m.c" in capsys.readouterr().out
