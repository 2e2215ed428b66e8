"""The runtime's split into per-ISA headers changed no output: the C of 15 fixed quantized models
(every layer kind, both GRU forms, layers wide enough for full and partial x86 blocks, int16
states, per-feature input, activation variants, a graph of branches, a token model, a
whole-sequence model, two seq2seq models) gives exactly the int8 outputs (seq2seq: the greedy
tokens) that rnn2c's C gave before the split, on the reference kernels alone, AVX2, and where
the CPU has AVX-512, its own path.

tests/data/runtime_outputs.npz holds, per model, the quantized model (so no Keras runs here: the
C is rendered from it by this checkout), its inputs, and the outputs recorded once from the C
that rnn2c rendered and compiled before the split (portable, AVX2 and -march=native agreed)."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest

from rnn2c.emulator.build import DEFAULT_FLAGS, compile_model, load_model
from rnn2c.emulator.seq2seq import HARNESS, CompiledSeq2Seq
from rnn2c.export.render import render
from rnn2c.export.seq2seq import QuantSeq2Seq
from rnn2c.export.seq2seq_render import render_seq2seq
from rnn2c.export.serialize import load
from tools import cpu_has

FIXTURE = Path(__file__).parent / "data" / "runtime_outputs.npz"
MODELS = sorted({k.split(".")[0] for k in np.load(FIXTURE).files})
#: the host paths: the reference kernels alone (no ISA header without AVX2), AVX2, and on an
#: AVX-512 CPU its own (-march=native: AVX-512, and VNNI where it has it)
PATHS = {
    "reference": ("-mno-avx2",),
    "avx2": ("-mavx2", "-mno-avx512f"),
    **({"native": ("-march=native",)} if cpu_has("avx512f") else {}),
}


def _qmodel(name: str, folder: Path):  # noqa: ANN202
    """The fixture's quantized model `name` (written into folder, then loaded)."""
    path = folder / f"{name}_qmodel.npz"
    path.write_bytes(np.load(FIXTURE)[f"{name}.qmodel"].tobytes())
    return load(path)


def test_the_fixture_covers_the_model_kinds(tmp_path: Path) -> None:
    assert len(MODELS) >= 12
    kinds = set()
    for name in MODELS:
        q = _qmodel(name, tmp_path)
        if isinstance(q, QuantSeq2Seq):
            kinds.add("seq2seq")
            continue
        kinds |= {layer.kind for layer in q.layers}
        kinds |= {"whole"} if q.whole_sequence else set()
        kinds |= {"graph"} if q.inputs else set()
        kinds |= {"token"} if q.embedding is not None else set()
        kinds |= {"int16"} if any(layer.output_q.bits == 16 for layer in q.layers) else set()
    want = {"gru", "lstm", "rnn", "dense", "conv1d", "pool1d", "gpool1d", "lnorm", "merge"}
    assert want | {"bidir", "seq2seq", "whole", "graph", "token", "int16"} <= kinds


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 host paths")
@pytest.mark.parametrize("name", MODELS)
def test_outputs_are_the_recorded_ones(tmp_path: Path, name: str) -> None:
    data = np.load(FIXTURE)
    q = _qmodel(name, tmp_path)
    files = render_seq2seq(q, name) if isinstance(q, QuantSeq2Seq) else render(q, name)
    for fname, text in files.items():
        (tmp_path / fname).write_text(text)
    x, want = data[f"{name}.x"], data[f"{name}.y"]
    for path, flags in PATHS.items():
        if isinstance(q, QuantSeq2Seq):
            lib = compile_model(
                tmp_path, name, flags=(*DEFAULT_FLAGS, *flags), harness_template=HARNESS
            )
            c = CompiledSeq2Seq.load(lib)
            lengths = data[f"{name}.lengths"]
            for stepwise in (False, True):
                got, _ = c.greedy(x, lengths, q.max_output_length, stepwise=stepwise)
                assert np.array_equal(got, want), (path, stepwise)
        else:
            got = load_model(tmp_path, name, flags=(*DEFAULT_FLAGS, *flags)).run(x)
            assert np.array_equal(got, want), path
