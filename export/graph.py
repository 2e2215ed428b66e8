"""Functional graphs of parallel branches: Input -> [branch; branch] -> Add/Concatenate/... -> ...

A Keras functional model whose layers are not a single chain (a layer with several inputs, or a
tensor read by several layers) is read here into a ModelIR whose ``inputs`` list, per layer, the
layers it reads (-1: the model input), in an order where every layer comes after its inputs
(depth-first from the output, so the output layer is last). The C step runs them in that order,
each layer's output in its state (recurrent layers) or a stack buffer, so a model whose branches
are all causal streams as a chain does. Chains keep the chain reader (keras_reader.py) and
generate the same C as before.

Supported inside a graph: GRU, LSTM, SimpleRNN, Dense (and TimeDistributed(Dense)), a separate
activation right after a linear Dense that nothing else reads, the no-op layers, and the merges of
layers/merge.py. Whole-sequence layers (Bidirectional, go_backwards, RepeatVector), Normalization
and Embedding in a graph are refused in one line.

Several inputs (two sensor streams, say): each Input [batch, time, F_k] over the same steps is
read as part k of one model input, the K inputs' rows side by side in the model's input order;
a layer that reads input k reads its slice [offset_k, offset_k + F_k) (producer index -1 - k,
see ir.gather), and the C's <name>_step takes one array per input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnn2c.export.ir import MODEL_INPUT, ExportError, FloatLayer, ModelIR, input_number, model_input
from rnn2c.export.layers import READERS, RECURRENT_KINDS, TIME_KINDS
from rnn2c.export.layers import merge as merge_layer
from rnn2c.export.layers.bidirectional import wrap_go_backwards
from rnn2c.export.reader_common import (
    FOLDED,
    PASS_THROUGH,
    STANDALONE_ACTIVATIONS,
    check_finite,
    fold_activation,
    masking_value,
    next_step,
    require_sequence_layer,
)


def _flatten(args: Any) -> list[Any]:
    if isinstance(args, list | tuple):
        return [t for a in args for t in _flatten(a)]
    if isinstance(args, dict):
        return [t for a in args.values() for t in _flatten(a)]
    return [args]


@dataclass
class _Node:
    layer: Any
    inputs: list[tuple[int, int]]  # producer node keys (id(layer), node index); (0, 0): input


def _node_inputs(layer: Any, node_index: int) -> list[Any]:
    node = layer._inbound_nodes[node_index]
    # positional inputs only: Keras passes a propagated mask as a keyword tensor
    return [t for t in _flatten(node.arguments.args) if hasattr(t, "_keras_history")]


def _collect(
    model: Any, shared_ok: bool = False
) -> tuple[list[tuple[tuple[int, int], _Node]], tuple[int, int]]:
    """The nodes the output depends on, depth-first post-order (inputs before users); a layer
    called more than once is refused unless shared_ok."""
    order: list[tuple[tuple[int, int], _Node]] = []
    seen: dict[tuple[int, int], bool] = {}
    layers_seen: dict[int, int] = {}
    start = model.inputs[0]
    input_of = {  # an InputLayer -> which model input it is
        id(t._keras_history[0]): k
        for k, t in enumerate(model.inputs)
        if getattr(t, "_keras_history", None) is not None
    }

    def key_of(tensor: Any) -> tuple[int, int]:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ExportError(f"model '{model.name}': cannot trace its layer graph")
        layer, node_index = history[0], history[1]
        if tensor is start or type(layer).__name__ == "InputLayer":
            return (0, input_of.get(id(layer), 0))  # (0, k): model input k
        if len(history) > 2 and history[2] != 0:
            raise ExportError(
                f"layer '{layer.name}' ({type(layer).__name__}): a second output (return_state) "
                "feeds the model; rnn2c exports the main output only"
            )
        return (id(layer), int(node_index))

    def visit(tensor: Any) -> tuple[int, int]:
        key = key_of(tensor)
        if key[0] == 0 or key in seen:
            return key
        layer = tensor._keras_history[0]
        if layers_seen.setdefault(id(layer), key[1]) != key[1] and not shared_ok:
            raise ExportError(
                f"layer '{layer.name}' ({type(layer).__name__}) is called more than once; "
                "rnn2c exports each layer once (give each branch its own layer)"
            )
        seen[key] = True
        ins = [visit(t) for t in _node_inputs(layer, key[1])]
        order.append((key, _Node(layer, ins)))
        return key

    out = visit(model.outputs[0])
    return order, out


def has_branches(model: Any) -> bool:
    """Whether the model is a graph rather than a single chain: some layer reads several tensors
    or some tensor (the input included) is read by several layers."""
    try:
        order, _ = _collect(model, shared_ok=True)
    except ExportError:
        return False  # the chain reader gives its own message
    uses: dict[tuple[int, int], int] = {}
    for _, node in order:
        if len(node.inputs) != 1:
            return True
        for k in node.inputs:
            uses[k] = uses.get(k, 0) + 1
    return any(n > 1 for n in uses.values())


@dataclass
class _Value:
    """A tensor as the IR sees it: which IR layer gives it (-1: the model input), its width,
    whether it has a time axis."""

    index: int
    size: int
    sequence: bool


def read_graph(model: Any, features: int | list[int], names: list[str] | None = None) -> ModelIR:
    """A functional model with parallel branches -> ModelIR with ``inputs`` (module doc).
    features: the input's feature count, or each input's (names: their Keras names) for a model
    with several inputs (:func:`read_inputs`)."""
    order, out_key = _collect(model)
    uses: dict[tuple[int, int], int] = {}
    for _, node in order:
        for k in node.inputs:
            uses[k] = uses.get(k, 0) + 1
    sizes = [features] if isinstance(features, int) else list(features)
    values: dict[tuple[int, int], _Value] = {
        (0, k): _Value(model_input(k), size, True) for k, size in enumerate(sizes)
    }
    layers: list[FloatLayer] = []
    inputs: list[list[int]] = []
    sequence_out: list[bool] = []
    mask_value = None  # a Masking layer that alone reads the model input
    for key, node in order:
        layer = node.layer
        cls = type(layer).__name__
        where = f"layer '{layer.name}' ({cls})"
        srcs = [values[k] for k in node.inputs]
        if cls in merge_layer.KERAS_CLASSES:
            if len(srcs) < 2:
                raise ExportError(f"{where}: it merges {len(srcs)} input; give it two or more")
            if len({v.sequence for v in srcs}) != 1:
                raise ExportError(
                    f"{where}: it merges a sequence with a single vector (a recurrent layer "
                    "without return_sequences); merge branches of the same kind"
                )
            ir_layer: FloatLayer = merge_layer.read(
                layer, [v.size for v in srcs], [3 if v.sequence else 2 for v in srcs]
            )
            values[key] = _add(layers, inputs, sequence_out, ir_layer, srcs, srcs[0].sequence)
            continue
        if len(srcs) != 1:
            raise ExportError(f"{where} takes {len(srcs)} inputs; only merge layers take several")
        src = srcs[0]
        if cls == "Masking":
            if len(sizes) > 1:
                raise ExportError(
                    f"{where}: a Masking layer in a model with several inputs is not supported "
                    "(which steps are padding is not defined across the inputs); drop it and give "
                    "the real lengths as `lengths` in the data"
                )
            if src.index == MODEL_INPUT and uses.get(node.inputs[0], 0) != 1:
                raise ExportError(
                    f"{where}: other layers read the model input beside the Masking layer, "
                    "unmasked; a Masking layer must be the input's only reader: put it before "
                    "the branches"
                )
            mask_value = masking_value(
                layer, where, src.index == MODEL_INPUT and mask_value is None
            )
        if cls in PASS_THROUGH:
            values[key] = src
            continue
        if cls in ("Activation", *STANDALONE_ACTIVATIONS):
            prev = layers[src.index] if src.index >= 0 else None
            if prev is None or uses.get(node.inputs[0], 0) != 1:
                raise ExportError(
                    f"{where}: a separate activation layer is supported only right after a linear "
                    "Dense that nothing else reads; give the Dense the activation instead"
                )
            fold_activation(layer, cls, where, [prev])
            values[key] = src
            continue
        if cls == "TimeDistributed":
            inner = layer.layer
            if type(inner).__name__ != "Dense":
                raise ExportError(
                    f"{where}: TimeDistributed({type(inner).__name__}) is not supported; "
                    "only TimeDistributed(Dense)"
                )
            layer, cls = inner, "Dense"
        reader = READERS.get(cls)
        if cls in FOLDED and cls not in ("Activation", "TimeDistributed"):
            raise ExportError(
                f"{where}: {cls} in a graph of branches is not supported (it is folded into a "
                "neighbouring layer only in a chain); use a chain, or normalize the data"
            )
        if reader is None or cls in ("Bidirectional", "Embedding", "RepeatVector"):
            what = {
                "Bidirectional": "a whole-sequence layer (Bidirectional) in a graph of branches",
                "Embedding": "an Embedding in a graph of branches",
                "RepeatVector": "a RepeatVector in a graph of branches",
                "Normalization": "Normalization in a graph of branches (normalize the data)",
            }.get(cls)
            if what:
                raise ExportError(f"{where}: {what} is not supported; use a chain")
            raise ExportError(f"{where}: layer type {cls} is not supported; {next_step(cls)}")
        ir_layer = reader.read(layer, src.size)
        if wrap_go_backwards(layer, ir_layer) is not ir_layer:
            raise ExportError(
                f"{where}: go_backwards=True (a whole-sequence layer) inside a graph of branches "
                "is not supported; use a chain"
            )
        if ir_layer.kind in (*TIME_KINDS, "lnorm"):
            raise ExportError(
                f"{where}: {cls} in a graph of branches is not supported; use a chain"
            )
        check_finite(ir_layer, where)
        sequence = src.sequence
        if ir_layer.kind in RECURRENT_KINDS:
            if not sequence:
                raise ExportError(f"{where}: a recurrent layer needs a sequence input")
            sequence = bool(getattr(layer, "return_sequences", False))
        values[key] = _add(layers, inputs, sequence_out, ir_layer, srcs, sequence)
    out = values[out_key]
    if out.index != len(layers) - 1 or not layers:
        raise ExportError(f"model '{model.name}': its output is not computed by its last layer")
    require_sequence_layer(model, layers)
    read = {input_number(j) for ins in inputs for j in ins if j < 0}
    for k, name in enumerate(names or []):
        if k not in read:
            raise ExportError(
                f"model '{model.name}': no layer on the way to the output reads its input "
                f"'{name}'; remove it from the model's inputs, or use it"
            )
    return ModelIR(
        layers=layers,
        input_size=sum(sizes),
        source=str(model.name),
        sequence_out=sequence_out,
        inputs=inputs,
        mask_value=mask_value,
        input_names=list(names or []),
        input_sizes=sizes if names else [],
    )


def read_inputs(model: Any) -> tuple[list[str], list[int]]:
    """The Keras names and feature counts of a multi-input model's inputs, each checked to be a
    [batch, time, features] sequence with a fixed feature count, over the same steps."""
    names: list[str] = []
    sizes: list[int] = []
    steps: dict[int, str] = {}
    for k, tensor in enumerate(model.inputs):
        history = getattr(tensor, "_keras_history", None)
        name = str(history[0].name if history is not None else getattr(tensor, "name", k))
        shape = tuple(tensor.shape)
        where = f"model '{model.name}': input '{name}'"
        if len(shape) == 2 and "int" in str(getattr(tensor, "dtype", "")):
            raise ExportError(
                f"{where} is [batch, time] (token ids); a model with several inputs takes a "
                "[batch, time, features] sequence per input (an Embedding input: one input only)"
            )
        if len(shape) != 3 or shape[-1] is None:
            raise ExportError(
                f"{where} has shape {shape}; each input of a model with several inputs must be "
                "a sequence [batch, time, features] with a fixed feature count"
            )
        if shape[1] is not None:
            steps.setdefault(int(shape[1]), name)
        names.append(name)
        sizes.append(int(shape[-1]))
    if len(steps) > 1:
        (t0, a), (t1, b) = list(steps.items())[:2]
        raise ExportError(
            f"model '{model.name}': input '{a}' has {t0} steps and input '{b}' {t1}; the inputs "
            "share one time axis (each step takes one row of every input): resample them to "
            "the same rate, or give them shape (None, features)"
        )
    return names, sizes


def _add(
    layers: list[FloatLayer],
    inputs: list[list[int]],
    sequence_out: list[bool],
    ir_layer: FloatLayer,
    srcs: list[_Value],
    sequence: bool,
) -> _Value:
    layers.append(ir_layer)
    inputs.append([v.index for v in srcs])
    sequence_out.append(sequence)
    return _Value(len(layers) - 1, ir_layer.output_size, sequence)
