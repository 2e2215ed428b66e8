"""An export folder as every command that reads one opens it (verify, size, firmware, bench
through size): an interrupted export finished, the manifest read and checked, every file held
against the sha256 the manifest recorded, the quantized model loaded (by its kind)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnn2c.export import kinds, serialize
from rnn2c.export.api import MANIFEST, qmodel_file
from rnn2c.export.ir import ExportError
from rnn2c.export.modelkind import ModelKind
from rnn2c.outdir import OutputError, file_sha256, read_manifest, recover


@dataclass
class ExportDir:
    """An export folder, opened."""

    path: Path
    name: str
    qmodel: Any  # the kind's quantized model: a QuantModel, a QuantSeq2Seq
    manifest: dict[str, Any] | None
    changed_files: list[str]  # listed in the manifest, content differs from its sha256
    hashed: bool  # the manifest records sha256 hashes (rnn2c >= 0.2)

    @property
    def kind(self) -> ModelKind:
        """The model kind of the export (of its quantized model, whose file names it)."""
        return kinds.of(self.qmodel)


def changed_export_files(
    d: Path, manifest: dict[str, Any] | None, refuse: bool = True
) -> list[str]:
    """The one integrity check of an export folder, shared by every command that reads one
    (verify, size, firmware, bench through size, every model kind): the files the manifest
    lists whose bytes differ from the sha256 it recorded (a listed file that is missing or has
    no hash counts as changed). ``refuse``: ExportError, one line, if any did;
    verify alone reports them instead (its FAIL line). A manifest of rnn2c < 0.2 records no
    hashes: nothing to check (verify says "not checked")."""
    hashes = (manifest or {}).get("sha256") or {}
    if not hashes:
        return []
    listed = (manifest or {}).get("files") or []
    changed = []
    for rel in sorted(listed):  # read_manifest checked each is a path inside the folder
        f, want = d / rel, hashes.get(rel)
        if not isinstance(want, str) or not f.is_file():
            changed.append(rel)
        elif file_sha256(f) != want:
            changed.append(rel)
    if changed and refuse:
        raise ExportError(
            f"{str(d)!r}: {', '.join(changed)} changed since the export (the sha256 {MANIFEST} "
            "records differs); export again: rnn2c checks, measures and builds only the C it "
            "exported"
        )
    return changed


def read_export_dir(
    out_dir: str | Path, name: str | None = None, allow_changed: bool = False
) -> ExportDir:
    """Open an export folder: finish an interrupted export, read and check the manifest, check
    every file against the hash the manifest recorded (changed_export_files: refused unless
    ``allow_changed``, then listed in changed_files), load the quantized model."""
    d = Path(out_dir)
    if not d.is_dir():
        what = "is a file, not an export folder" if d.exists() else "does not exist"
        raise ExportError(f"export folder {str(d)!r} {what}; run `rnn2c export` first")
    try:
        recover(d, MANIFEST)
        manifest = read_manifest(d, MANIFEST)
    except OutputError as e:
        raise ExportError(str(e)) from None
    except OSError as e:
        raise ExportError(f"export folder {str(d)!r} cannot be read ({e.strerror})") from None
    if name is None:
        if manifest is None:
            raise ExportError(f"{str(d)!r} has no {MANIFEST}; is it an rnn2c export folder?")
        name = manifest.get("name")
        if not isinstance(name, str) or not name:
            raise ExportError(f"{str(d / MANIFEST)!r} names no model; export the model again")
    changed = changed_export_files(d, manifest, refuse=not allow_changed)
    qfile = d / qmodel_file(name)
    if not qfile.is_file():
        raise ExportError(f"{str(d)!r} has no {qmodel_file(name)}; re-export the model")
    hashed = bool((manifest or {}).get("sha256"))
    return ExportDir(d, name, serialize.load(qfile), manifest, changed, hashed)
