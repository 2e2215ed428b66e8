"""Nothing lost: rnn2c replaces exactly the files its manifest lists, crash-safely.

Fault injection: `rnn2c export` and `rnn2c train --force` run in a subprocess that SIGKILLs
itself at the k-th rename into the output folder, for every k; afterwards the folder (once any
rnn2c command has opened it) holds the old complete set or the new one, never a mixture.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest
from test_bad_inputs import snapshot

from rnn2c.cli import main
from rnn2c.emulator.verify import read_export_dir
from rnn2c.export.api import output_files
from rnn2c.export.isa import RUNTIME_FILES
from rnn2c.outdir import LOCK_NAME, TMP_PREFIX, OwnedFolder, recover
from rnn2c.train.train import RUN_FILES, RUN_MANIFEST
from tools import need, require_capability

F, T = 3, 10


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("owned")
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [keras.Input((T, F)), keras.layers.GRU(6), keras.layers.Dense(3, activation="softmax")]
    )
    model.save(d / "model.keras")
    rng = np.random.default_rng(1)
    np.savez(d / "calib.npz", x=rng.normal(size=(16, T, F)).astype(np.float32))
    x = rng.normal(size=(24, 9, 3)).astype(np.float32)
    y = np.arange(24) % 2
    x[y == 1] += 1.0
    np.savez(d / "toy.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    return d


def _export(ws: Path, out: Path, *extra: str, model: Path | None = None) -> int:
    model = model or ws / "model.keras"
    return main(["export", str(model), "--calib", str(ws / "calib.npz"), "--out", str(out), *extra])


def test_export_into_a_firmware_folder_keeps_the_users_files_and_its_inputs(
    ws: Path, tmp_path: Path
) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "main.c").write_text('#include "net.h"\nint main(void) { return 0; }\n')
    shutil.copy(ws / "model.keras", proj / "model.keras")
    shutil.copy(ws / "calib.npz", proj / "calib.npz")
    (proj / "lib").mkdir()
    (proj / "lib" / "uart.c").write_text("/* driver */\n")
    mine = {k: v for k, v in snapshot(proj).items()}
    argv = ["export", str(proj / "model.keras"), "--calib", str(proj / "calib.npz")]
    assert main([*argv, "--out", str(proj), "--name", "net"]) == 0
    exported = {"net.h", "net.c", *RUNTIME_FILES, "net_qmodel.npz", "rnn2c.json"}
    after = snapshot(proj)
    assert {k: after[k] for k in mine} == mine  # every user file byte-identical
    assert set(after) == set(mine) | exported
    # re-export: the same files replaced, nothing else touched
    assert main([*argv, "--out", str(proj), "--name", "net", "--activations", "int16"]) == 0
    again = snapshot(proj)
    assert {k: again[k] for k in mine} == mine and set(again) == set(after)
    assert again["net.c"] != after["net.c"]
    # another name: the old name's files go (rnn2c owned them), the user's stay
    assert main([*argv, "--out", str(proj), "--name", "kws"]) == 0
    renamed = snapshot(proj)
    assert {k: renamed[k] for k in mine} == mine
    assert set(renamed) == set(mine) | {f.replace("net", "kws") for f in exported}


def test_symlinked_out_stays_a_link_and_modes_follow_the_umask(ws: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    old = os.umask(0o022)
    try:
        assert _export(ws, link) == 0
        assert _export(ws, link, "--calibration", "percentile") == 0
        assert _export(ws, tmp_path / "fresh" / "deep") == 0
    finally:
        os.umask(old)
    assert link.is_symlink() and (real / "model.c").is_file()
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "fresh" / "deep").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "fresh" / "deep" / "model.h").stat().st_mode & 0o777 == 0o644


def test_out_that_cannot_be_renamed_like_a_mount_point(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mount point cannot be renamed (EBUSY); rnn2c never renames --out itself."""
    out = (tmp_path / "volume").absolute()
    out.mkdir()
    real_replace, real_rename = os.replace, os.rename

    def guarded(fn):  # noqa: ANN001, ANN202
        def call(src, dst, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            if out in (Path(src).absolute(), Path(dst).absolute()):
                raise OSError(errno.EBUSY, "Device or resource busy", str(src))
            return fn(src, dst, *a, **kw)

        return call

    monkeypatch.setattr(os, "replace", guarded(real_replace))
    monkeypatch.setattr(os, "rename", guarded(real_rename))
    assert _export(ws, out) == 0
    assert _export(ws, out, "--activations", "int16") == 0
    assert (out / "model.c").is_file()


def test_a_second_writer_is_refused_at_its_start(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy"
    with OwnedFolder(out, "rnn2c.json"):
        capsys.readouterr()
        assert _export(ws, out) == 2
        assert "being written by another rnn2c command" in capsys.readouterr().err
        argv = ["train", "--dataset", str(ws / "toy.npz"), "--out", str(out), "--epochs", "1"]
        assert main(argv) == 2
        assert "being written by another rnn2c command" in capsys.readouterr().err
    assert not out.exists()  # it created the folder and, left empty, removed it again


def test_immutable_folder_is_one_line(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "frozen"
    assert _export(ws, out) == 0
    before = snapshot(tmp_path)
    need("chattr")
    frozen = subprocess.run(["chattr", "+i", str(out)], capture_output=True, text=True)
    require_capability(
        frozen.returncode == 0,
        f"chattr +i does not work here (root and a file system with the immutable flag): "
        f"{frozen.stderr.strip()}",
    )
    try:
        capsys.readouterr()
        assert _export(ws, out, "--activations", "int16") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot write" in err
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert snapshot(tmp_path) == before


def test_a_full_disk_changes_nothing(
    ws: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    import rnn2c.outdir as outdir

    out = tmp_path / "full"
    assert _export(ws, out) == 0
    (out / "main.c").write_text("/* mine */\n")
    before = snapshot(tmp_path)
    writes = {"n": 0}
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        writes["n"] += 1
        if writes["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(outdir.os, "write", write)
    capsys.readouterr()
    assert _export(ws, out, "--activations", "int16") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "nothing" in err
    assert snapshot(tmp_path) == before  # no temporaries left either


def test_train_force_replaces_the_run_and_keeps_everything_else(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(ws / "toy.npz"), "--out", str(out), "--epochs", "1"]
    argv += ["--units", "4", "--patience", "0"]
    assert main(argv) == 0
    assert _export(ws, out / "c") == 0  # what EXPORT.txt suggests: an export inside the run
    (out / "notes.md").write_text("my notes\n")
    keep = {k: v for k, v in snapshot(out).items() if k in ("c", "notes.md") or k[:2] == "c/"}
    assert main(argv) == 2  # a finished run is never replaced without --force
    assert main([*argv, "--force", "--seed", "5"]) == 0
    after = snapshot(out)
    assert {k: after[k] for k in keep} == keep
    assert json.loads((out / "metrics.json").read_text())["seed"] == 5


# --- fault injection ----------------------------------------------------------------------

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    kill_at = int(sys.argv[1])
    out = os.path.realpath(sys.argv[2])
    real = os.replace
    count = 0
    def replace(src, dst, *a, **kw):
        global count
        d = os.path.realpath(os.path.dirname(os.path.abspath(dst)))
        if d == out or d.startswith(out + os.sep):
            count += 1
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *a, **kw)
    os.replace = replace
    from rnn2c.cli import main
    rc = main(sys.argv[3:])
    print("RENAMES", count)
    sys.exit(rc)
    """
)


def _run_killed(
    script: Path, kill_at: int, out: Path, argv: list[str]
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(kill_at), str(out), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _consistent(folder: Path, manifest_name: str) -> dict[str, str]:
    """The folder after recovery: every listed file present and matching its hash; returns the
    manifest's hashes (which set the folder holds)."""
    recover(folder, manifest_name)
    manifest = json.loads((folder / manifest_name).read_text())
    for rel, want in manifest["sha256"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == want, rel
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith((TMP_PREFIX, "."))]
    assert leftovers == [], leftovers
    return manifest["sha256"]


def test_export_killed_at_every_rename_leaves_old_or_new(ws: Path, tmp_path: Path) -> None:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    base = tmp_path / "base"
    assert _export(ws, base, "--name", "m") == 0
    (base / "main.c").write_text("/* the user's */\n")
    old = snapshot(base)
    new_argv = ["export", str(ws / "model.keras"), "--calib", str(ws / "calib.npz"), "--name", "m"]
    new_argv += ["--activations", "int16"]
    ref = tmp_path / "ref"
    shutil.copytree(base, ref)
    done = _run_killed(script, 0, ref, [*new_argv, "--out", str(ref)])
    assert done.returncode == 0, done.stderr
    renames = int(done.stdout.split("RENAMES")[-1])
    assert renames == 2 + len(output_files("m"))  # the journal, the files, the manifest
    new = snapshot(ref)
    assert new != old

    def one(k: int) -> tuple[int, str]:
        out = tmp_path / f"k{k}"
        shutil.copytree(base, out)
        proc = _run_killed(script, k, out, [*new_argv, "--out", str(out)])
        assert proc.returncode == -9, (k, proc.stdout, proc.stderr)
        journal = (out / ".rnn2c.json.journal").exists()
        if not journal:  # killed before the commit point: the old files, untouched
            visible = snapshot(out)
            visible = {r: h for r, h in visible.items() if TMP_PREFIX not in r and r != LOCK_NAME}
            assert visible == old, k
        read_export_dir(out)  # what every rnn2c command does first: finish or sweep
        after = {r: h for r, h in snapshot(out).items() if r != LOCK_NAME}
        assert after in (old, new), k
        return k, "new" if after == new else "old"

    with ThreadPoolExecutor(2) as pool:
        outcomes = dict(pool.map(one, range(1, renames + 1)))
    assert outcomes[1] == "old" and all(outcomes[k] == "new" for k in range(2, renames + 1))


def test_train_force_killed_at_every_rename_leaves_old_or_new(ws: Path, tmp_path: Path) -> None:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    base = tmp_path / "base"
    argv = ["train", "--dataset", str(ws / "toy.npz"), "--epochs", "1", "--units", "2"]
    argv += ["--patience", "0"]
    assert main([*argv, "--out", str(base)]) == 0
    (base / "mine.txt").write_text("keep\n")
    old = _consistent(base, RUN_MANIFEST)
    renames = len(RUN_FILES) + 2  # the journal, the files, the manifest

    def one(k: int) -> tuple[int, str]:
        out = tmp_path / f"k{k}"
        shutil.copytree(base, out)
        proc = _run_killed(script, k, out, [*argv, "--out", str(out), "--force", "--seed", "3"])
        if k > renames:
            assert proc.returncode == 0 and f"RENAMES {renames}" in proc.stdout, proc.stderr
        else:
            assert proc.returncode == -9, (k, proc.stdout, proc.stderr)
        (out / LOCK_NAME).unlink(missing_ok=True)  # a killed run leaves its (unheld) lock file
        hashes = _consistent(out, RUN_MANIFEST)
        assert (out / "mine.txt").read_text() == "keep\n"
        seed = json.loads((out / "metrics.json").read_text())["seed"]
        assert (hashes == old) == (seed == 0)
        return k, "old" if hashes == old else "new"

    with ThreadPoolExecutor(2) as pool:
        outcomes = dict(pool.map(one, range(1, renames + 2)))
    assert outcomes[1] == "old"
    assert all(outcomes[k] == "new" for k in range(2, renames + 2))


def test_a_reader_leaves_a_folder_alone_while_it_is_being_written(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    with OwnedFolder(out, "rnn2c.json"):
        (out / f"{TMP_PREFIX}abc-0").write_bytes(b"a writer's temporary file")
        assert recover(out, "rnn2c.json") is False  # e.g. verify opening it meanwhile
        assert (out / f"{TMP_PREFIX}abc-0").exists()
    recover(out, "rnn2c.json")  # no writer any more: a stray temporary goes
    assert not (out / f"{TMP_PREFIX}abc-0").exists()
