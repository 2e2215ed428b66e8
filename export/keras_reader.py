"""Read a Keras 3 model into the float IR, refusing what the integer C cannot do.

The model must be a single chain from one input [batch, time, features] to one output. Layers
are per-step operations, so the streaming C API (`step` once per sample) gives, after T steps,
what Keras predicts for the T-step sequence (the last step of a return_sequences=True output).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.folds import AFFINE_CLASSES, compose, place, read_affine, settle
from rnn2c.export.graph import has_branches, read_graph, read_inputs
from rnn2c.export.ir import ExportError, FloatLayer, ModelIR
from rnn2c.export.layers import READERS, RECURRENT_KINDS, TIME_KINDS
from rnn2c.export.layers import embedding as embedding_layer
from rnn2c.export.layers.bidirectional import wrap_go_backwards
from rnn2c.export.layers.embedding import EmbeddingLayer
from rnn2c.export.layers.layer_norm import gamma_beta
from rnn2c.export.reader_common import (
    PASS_THROUGH,
    STANDALONE_ACTIVATIONS,
    SUPPORTED,
    check_finite,
    fold_activation,
    masking_value,
    next_step,
    require_sequence_layer,
)


def refuse_unsupported(chain: list[Any]) -> None:
    """Refuse the first layer of a type rnn2c does not export, naming it and what to do
    instead; nothing when every layer is supported."""
    for layer in chain:
        cls = type(layer).__name__
        if cls not in SUPPORTED and cls != "InputLayer":
            raise ExportError(
                f"layer '{layer.name}' ({cls}): layer type {cls} is not supported; {next_step(cls)}"
            )


def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """Load a .keras file without compiling it; one-line ExportError when that fails."""
    p = Path(path)
    if p.is_dir():
        raise ExportError(
            f"model {str(p)!r} is a folder; give the .keras file (model.save('model.keras'))"
        )
    if not p.is_file():
        raise ExportError(f"model file {str(p)!r} does not exist; give a .keras or .onnx file")
    if p.suffix not in (".keras", ".h5"):
        raise ExportError(
            f"model file {str(p)!r} is not a .keras file (rnn2c reads .keras and .onnx models)"
        )
    if p.suffix == ".keras" and not zipfile.is_zipfile(p):
        raise ExportError(
            f"model file {str(p)!r} is not a valid .keras file (a .keras file is a zip archive; "
            "this one is corrupt or truncated); save the model again with model.save()"
        )
    import keras  # noqa: PLC0415  (heavy import, only when needed)

    try:
        return keras.saving.load_model(p, compile=False)
    except Exception as e:  # noqa: BLE001  (any loader failure is a bad file to the user)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "not found" in first.lower():  # Keras' words for an archive it cannot parse
            first = "the archive does not hold a readable Keras 3 model (corrupt or foreign)"
        if "Lambda" in _archive_classes(p):  # Keras refuses a Lambda's Python code
            first = (
                "it holds a Lambda layer, whose Python code Keras does not load from a file "
                "(only in unsafe mode, which runs the file's code) and rnn2c could not export "
                "anyway; "
                "replace the Lambda by Keras layers (or do its work on the data before the "
                "model), save the model again and export that"
            )
            raise ExportError(f"cannot load Keras model {str(p)!r}: {first}") from None
        raise ExportError(f"cannot load Keras model {str(p)!r}: {first[:200]}") from None


def _archive_classes(path: Path) -> set[str]:
    """The class names in a .keras archive's config.json (empty when it cannot be read)."""
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return set()
    found: set[str] = set()
    todo = [config]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class_name"), str):
                found.add(item["class_name"])
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return found


def _flatten(args: Any) -> list[Any]:
    if isinstance(args, list | tuple):
        return [t for a in args for t in _flatten(a)]
    if isinstance(args, dict):
        return [t for a in args.values() for t in _flatten(a)]
    return [args]


def single_chain(model: Any) -> list[Any]:
    """The model's layers from input to output (the InputLayer left out), refusing anything but
    a single chain Input -> layer -> ... -> output in one line."""
    start = model.inputs[0]
    tensor = model.outputs[0]
    chain: list[Any] = []
    while tensor is not start:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ExportError(f"model '{model.name}': cannot trace its layer graph")
        layer, node_index = history[0], history[1]
        if type(layer).__name__ == "InputLayer":
            break
        if len(history) > 2 and history[2] != 0:  # return_state=True: a state output is used
            raise ExportError(
                f"layer '{layer.name}' ({type(layer).__name__}): its state output (return_state) "
                "feeds the model; rnn2c exports the main output only: use that one, or "
                "return_state=False"
            )
        node = layer._inbound_nodes[node_index]
        # positional inputs only: Keras passes a propagated mask as a keyword tensor
        inputs = [t for t in _flatten(node.arguments.args) if hasattr(t, "_keras_history")]
        if len(inputs) != 1:
            raise ExportError(
                f"layer '{layer.name}' ({type(layer).__name__}) takes {len(inputs)} inputs; "
                "rnn2c exports single chains Input -> layer -> ... -> output"
            )
        chain.append(layer)
        tensor = inputs[0]
    chain.reverse()
    names = {layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"}
    if names != {layer.name for layer in chain}:
        raise ExportError(
            f"model '{model.name}' is not a single chain of layers; rnn2c exports "
            "Input -> layer -> ... -> output chains"
        )
    return chain


def _flat_chain(model: Any) -> list[Any]:
    """single_chain, with a nested Sequential or functional model replaced by its own chain."""
    out: list[Any] = []
    for layer in single_chain(model):
        if hasattr(layer, "layers") and getattr(layer, "inputs", None) is not None:
            out.extend(_flat_chain(layer))
        else:
            out.append(layer)
    return out


def read_model(model: Any) -> ModelIR:
    """Keras model (in memory) -> float IR."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) >= 2 and len(outputs) == 1:  # several sensor streams meeting in a merge
        names, sizes = read_inputs(model)
        return read_graph(model, sizes, names)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(
            f"model '{model.name}' has {len(inputs)} inputs and {len(outputs)} outputs; "
            "rnn2c exports single-output models"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) == 3 and shape[-1] is not None and has_branches(model):  # parallel branches
        return read_graph(model, int(shape[-1]))
    chain, embedding = embedding_front(model, _flat_chain(model), shape)
    if embedding is None and (len(shape) != 3 or shape[-1] is None):
        refuse_unsupported(chain)  # a layer that takes such input (ConvLSTM1D): name it
        raise ExportError(
            f"model '{model.name}' input shape {shape} is not [batch, time, features]; "
            "recurrent models take 3-D input with a fixed feature count (or [batch, time] "
            "integer ids into an Embedding)"
        )
    features = embedding.dim if embedding is not None else int(shape[-1])
    layers: list[FloatLayer] = []
    size = features
    pending = None  # affine y = a*x + b to fold (folds.Affine)
    sequence = True  # whether the current tensor still has a time axis
    sequence_out: list[bool] = []  # per IR layer: the value of `sequence` after it
    mask_value = None  # a Masking first layer's value of the padding steps
    for layer in chain:
        cls = type(layer).__name__
        where = f"layer '{layer.name}' ({cls})"
        if cls == "Masking":
            first = not layers and pending is None and embedding is None and mask_value is None
            mask_value = masking_value(layer, where, first, embedding is not None)
            continue
        if cls in PASS_THROUGH:
            continue
        if cls == "Normalization":
            pending = compose(pending, *_read_normalization(layer, size, where, None)[:2], where)
            continue
        if cls in AFFINE_CLASSES:
            pending = compose(pending, *read_affine(layer, size, where), where)
            continue
        if cls in ("Activation", *STANDALONE_ACTIVATIONS):
            settle(pending, layers, f"{where} comes next")
            pending = None
            fold_activation(layer, cls, where, layers)
            continue
        if cls == "TimeDistributed":  # TimeDistributed(Dense) is a per-step Dense
            inner = layer.layer
            if type(inner).__name__ != "Dense":
                raise ExportError(
                    f"{where}: TimeDistributed({type(inner).__name__}) is not supported; "
                    "only TimeDistributed(Dense)"
                )
            layer, cls = inner, "Dense"
        reader = READERS.get(cls)
        if reader is None:
            raise ExportError(f"{where}: layer type {cls} is not supported; {next_step(cls)}")
        ir_layer = wrap_go_backwards(layer, reader.read(layer, size))
        check_finite(ir_layer, where)
        if ir_layer.kind in RECURRENT_KINDS:
            if not sequence:
                raise ExportError(f"{where}: a recurrent layer needs a sequence input")
            sequence = bool(getattr(layer, "return_sequences", False))
        elif ir_layer.kind in TIME_KINDS:  # Conv1D, pooling: over time; global pooling ends it
            if not sequence:
                raise ExportError(f"{where}: it works over time and needs a sequence input")
            if any(ly.kind == "repeat" for ly in layers):
                raise ExportError(
                    f"{where}: {cls} after a RepeatVector is not supported; after the "
                    "RepeatVector use recurrent, Dense or LayerNormalization layers"
                )
            sequence = ir_layer.kind != "gpool1d"
        elif ir_layer.kind == "repeat":
            check_repeat(ir_layer, layers, sequence, where)
            sequence = True
        # a per-feature affine commutes with a RepeatVector's copies: it waits for the next layer
        if pending is not None and ir_layer.kind != "repeat":
            if ir_layer.kind == "lnorm":  # not a weight layer: fold into the one before
                settle(pending, layers, f"{where} comes next")
                pending = None
            else:  # forward, on through pooling, or back into the linear layer before it
                pending = place(pending, ir_layer, layers, where)
        layers.append(ir_layer)
        sequence_out.append(sequence)
        size = ir_layer.output_size
        if ir_layer.kind == "lnorm":  # its gamma and beta: folded into the next weight layer
            pending = compose(None, *gamma_beta(layer, size), where)
    settle(pending, [ly for ly in layers if ly.kind != "repeat"], "it ends the model")
    if embedding is not None and any(layer.kind in TIME_KINDS for layer in layers):
        raise ExportError(
            f"layer '{embedding.name}' (Embedding): an Embedding before Conv1D or pooling layers "
            "is not supported; feed the Embedding to a recurrent or Dense layer"
        )
    require_sequence_layer(model, layers)
    return ModelIR(
        layers=layers,
        input_size=features,
        source=str(model.name),
        sequence_out=sequence_out,
        embedding=embedding,
        mask_value=mask_value,
    )


def check_repeat(layer: FloatLayer, layers: list[FloatLayer], sequence: bool, where: str) -> None:
    """Refuse a RepeatVector that does not read a single vector, or a second one."""
    if sequence:
        raise ExportError(
            f"{where}: a RepeatVector needs a single vector, and its input is a sequence; put it "
            "after a recurrent layer with return_sequences=False (or a Dense or global pooling "
            "after one)"
        )
    first = next((ly for ly in layers if ly.kind == "repeat"), None)
    if first is not None:
        raise ExportError(
            f"{where}: a second RepeatVector (after '{first.name}') is not supported; rnn2c "
            "exports one: encoder -> RepeatVector -> decoder"
        )


def embedding_front(
    model: Any, chain: list[Any], shape: tuple[Any, ...]
) -> tuple[list[Any], EmbeddingLayer | None]:
    """A token model: [batch, time] integer ids into an Embedding first (pass-through layers
    before it aside) -> (the chain after it, the Embedding); else (chain, None). An Embedding
    anywhere else is refused."""
    first = next((i for i, ly in enumerate(chain) if type(ly).__name__ not in PASS_THROUGH), None)
    for i, layer in enumerate(chain):
        if type(layer).__name__ == "Embedding" and (i != first or len(shape) != 2):
            raise ExportError(
                f"layer '{layer.name}' (Embedding): an Embedding is supported only as the first "
                "layer, over the model's [batch, time] integer input"
            )
    if first is None or type(chain[first]).__name__ != "Embedding":
        return chain, None
    return chain[first + 1 :], embedding_layer.read(chain[first])


def _read_normalization(
    layer: Any, size: int, where: str, pending: tuple[np.ndarray, np.ndarray, str] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    cfg = layer.get_config()
    if cfg.get("invert"):
        raise ExportError(f"{where}: invert=True is not supported; use invert=False")
    axis = cfg.get("axis", -1)
    if axis not in (-1, 2, (-1,), [-1], (2,), [2]):
        raise ExportError(f"{where}: axis={axis} is not supported; normalize the feature axis (-1)")
    mean = np.asarray(layer.mean, dtype=np.float64).reshape(-1)
    var = np.asarray(layer.variance, dtype=np.float64).reshape(-1)
    if not (np.isfinite(mean).all() and np.isfinite(var).all()):
        raise ExportError(f"{where}: mean or variance holds NaN or inf; adapt it on finite data")
    if mean.size == 1:
        mean, var = np.full(size, mean[0]), np.full(size, var[0])
    if mean.size != size:
        raise ExportError(f"{where}: {mean.size} means for {size} features")
    a = 1.0 / np.maximum(np.sqrt(var), 1e-7)  # Keras: (x - mean) / max(sqrt(var), epsilon)
    b = -mean * a
    if pending is not None:  # compose two affines: a2*(a1*x + b1) + b2
        a, b = pending[0] * a, pending[1] * a + b
    return a, b, layer.name
