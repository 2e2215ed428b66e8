"""The activation side of quantization-aware training: a twin of a Keras model whose forward
quantizes the vectors the generated C quantizes.

The twin shares every weight with the model (the optimizer's updates land in the model, which
stays a plain Keras model the exporter reads). Its forward puts, with a straight-through
estimator (round and clip in the forward, identity gradient inside the range):

* the model input on the export's input grid (per tensor or per feature, with its zero point);
* each layer's output that the quantized model holds under the layer's name (Dense, Conv1D,
  pooling, an Embedding's rows) on that layer's output grid (its scale and zero point; a
  softmax, sigmoid or tanh head on its fixed table output grid; the model's own output only
  outside training, as nothing downstream reads it and a log loss needs its gradient);
* inside each plain recurrent layer (GRU of both variants, LSTM, SimpleRNN; not one inside a
  Bidirectional wrapper, nor go_backwards), the state on the C's state grid at every step,
  so that the next step reads the quantized state: h at the layer's state scale (Q0.7 or
  Q0.15, times 2^k for a relu state), LSTM's c at its int16 scale, GRU ``reset_after=False``'s
  r * h at the state scale, as the integer kernels round them.

The gate tables' own output steps (Q0.15) and the requantization of the int32 accumulators to
Q3.12 are far finer than the int8 vectors and are left in float. The grids are the export's,
read from the quantized model (:meth:`ActGrid.update`), again whenever the weight grid is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

_RECURRENT = ("GRU", "LSTM", "SimpleRNN")


def _int_range(bits: int) -> tuple[float, float]:
    return float(-(1 << (bits - 1))), float((1 << (bits - 1)) - 1)


def fake_quant(ops: Any, x: Any, scale: Any, zero: Any, lo: Any, hi: Any) -> Any:
    """x on the grid scale * (q - zero), q integer in [lo, hi]: round and clip in the forward;
    the gradient is the identity inside the range and 0 outside (straight-through)."""
    t = ops.clip(x / scale + zero, lo, hi)
    q = t + ops.stop_gradient(ops.round(t) - t)
    return (q - zero) * scale


def _quant_layer_class() -> type:
    import keras

    class FakeQuant(keras.layers.Layer):
        """Puts its input on an affine int grid whose scale and zero point (one per feature,
        or one broadcast to all) are non-trainable weights, set from the export."""

        def __init__(self, width: int, last: bool = False, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.supports_masking = True
            self.width, self.last = width, last
            init = keras.initializers.Constant
            self.scale = self.add_weight((width,), initializer=init(1.0), trainable=False)
            self.zero = self.add_weight((width,), initializer=init(0.0), trainable=False)
            self.lo = self.add_weight((), initializer=init(-128.0), trainable=False)
            self.hi = self.add_weight((), initializer=init(127.0), trainable=False)

        def set_grid(self, scale: Any, zero: Any, bits: int) -> None:
            self.scale.assign(np.broadcast_to(np.asarray(scale, np.float32), (self.width,)))
            self.zero.assign(np.broadcast_to(np.asarray(zero, np.float32), (self.width,)))
            lo, hi = _int_range(bits)
            self.lo.assign(lo)
            self.hi.assign(hi)

        def call(self, x: Any, training: Any = None) -> Any:
            if self.last and training:  # the model's output: nothing downstream reads it, and
                return x  # a softmax rounded to 0 would leave its log loss no gradient
            ops = keras.ops
            return fake_quant(ops, x, self.scale, self.zero, self.lo, self.hi)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

    return FakeQuant


def _cell_class() -> type:
    import keras

    class QuantCell(keras.layers.Layer):
        """A Keras GRU/LSTM/SimpleRNN cell's math on the layer's own weight variables (shared,
        not copied), with the state put on the C's grid at every step."""

        def __init__(self, layer: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            cell = layer.cell
            self.kind = type(layer).__name__
            self.units = int(cell.units)
            self.reset_after = bool(getattr(cell, "reset_after", False))
            self.act, self.gate = cell.activation, getattr(cell, "recurrent_activation", None)
            self.kernel, self.recurrent_kernel = cell.kernel, cell.recurrent_kernel
            self.bias = cell.bias if cell.use_bias else None
            n = 2 if self.kind == "LSTM" else 1
            self.state_size = [self.units] * n
            self.output_size = self.units
            init = keras.initializers.Constant
            # h's scale and int range; LSTM: c's scale and range (int16)
            self.grid = self.add_weight((6,), initializer=init(1.0), trainable=False)
            self.built = True

        def set_grid(self, h_scale: float, bits: int, c_scale: float = 1.0) -> None:
            lo, hi = _int_range(bits)
            clo, chi = _int_range(16)
            self.grid.assign(np.array([h_scale, lo, hi, c_scale, clo, chi], np.float32))

        def _q(self, x: Any, at: int) -> Any:
            g = self.grid
            return fake_quant(keras.ops, x, g[at], 0.0, g[at + 1], g[at + 2])

        def call(self, x: Any, states: Any, training: Any = None) -> Any:
            ops, u = keras.ops, self.units
            h = states[0]
            if self.kind == "SimpleRNN":
                pre = ops.matmul(x, self.kernel) + ops.matmul(h, self.recurrent_kernel)
                h = self._q(self.act(pre if self.bias is None else pre + self.bias), 0)
                return h, [h]
            if self.kind == "LSTM":
                pre = ops.matmul(x, self.kernel) + ops.matmul(h, self.recurrent_kernel)
                pre = pre if self.bias is None else pre + self.bias
                i, f = self.gate(pre[:, :u]), self.gate(pre[:, u : 2 * u])
                g, o = self.act(pre[:, 2 * u : 3 * u]), self.gate(pre[:, 3 * u :])
                c = self._q(f * states[1] + i * g, 3)
                h = self._q(o * self.act(c), 0)
                return h, [h, c]
            return self._gru(x, h)

        def _gru(self, x: Any, h: Any) -> Any:
            ops, u = keras.ops, self.units
            gx = ops.matmul(x, self.kernel)
            b_in = b_rec = None
            if self.bias is not None:
                b_in, b_rec = (
                    (self.bias[0], self.bias[1]) if self.reset_after else (self.bias, None)
                )
            gx = gx if b_in is None else gx + b_in
            rk = self.recurrent_kernel
            if self.reset_after:
                gh = ops.matmul(h, rk)
                gh = gh if b_rec is None else gh + b_rec
                z = self.gate(gx[:, :u] + gh[:, :u])
                r = self.gate(gx[:, u : 2 * u] + gh[:, u : 2 * u])
                cand = self.act(gx[:, 2 * u :] + r * gh[:, 2 * u :])
            else:
                gh = ops.matmul(h, rk[:, : 2 * u])
                z = self.gate(gx[:, :u] + gh[:, :u])
                r = self.gate(gx[:, u : 2 * u] + gh[:, u:])
                rh = self._q(r * h, 0)  # the C rounds r * h to the state's format
                cand = self.act(gx[:, 2 * u :] + ops.matmul(rh, rk[:, 2 * u :]))
            h = self._q(z * h + (1.0 - z) * cand, 0)
            return h, [h]

    return QuantCell


def _plain_recurrent(layer: Any) -> bool:
    cfg = layer.get_config()
    return (
        type(layer).__name__ in _RECURRENT
        and not cfg.get("go_backwards", False)
        and not cfg.get("unroll", False)
        and not cfg.get("return_state", False)
    )


@dataclass
class ActGrid:
    """A model's fake-quantized twin and the grids it holds (update() sets them from a
    quantized model). ``modelled``: the layers whose state or output the twin quantizes;
    ``unmodelled``: recurrent layers it runs in float (inside a wrapper, go_backwards)."""

    twin: Any
    inputs: list[Any] = field(default_factory=list)  # FakeQuant layers on the model input
    outputs: dict[str, Any] = field(default_factory=dict)  # layer name -> FakeQuant
    cells: dict[str, Any] = field(default_factory=dict)  # layer name -> QuantCell
    unmodelled: list[str] = field(default_factory=list)

    @property
    def modelled(self) -> list[str]:
        return sorted({*self.outputs, *self.cells})

    def update(self, qm: Any) -> None:
        """Set every grid from the export's quantized model (a QuantModel)."""
        held = {ql.name: ql for ql in qm.layers}
        for fq in self.inputs:
            q = qm.input_q
            fq.set_grid(q.scale, q.zero_point, q.bits)
        for name, fq in self.outputs.items():
            if name in held:
                q = held[name].output_q
            elif qm.embedding is not None and name == qm.embedding.name:
                q = qm.embedding.output_q
            else:
                continue
            fq.set_grid(q.scale, q.zero_point, q.bits)
        for name, cell in self.cells.items():
            ql = held[name]
            q = ql.output_q
            frac = getattr(ql, "cell_frac_bits", None)
            c_scale = 1.0 if frac is None else float(q.scale) * (1 << (q.bits - 1)) * 2.0**-frac
            cell.set_grid(float(q.scale), int(q.bits), c_scale)


def _input_name(t: Any) -> str | None:
    """The name of the InputLayer that made a symbolic tensor, None for another tensor."""
    history = getattr(t, "_keras_history", None)
    if history is None or type(history[0]).__name__ != "InputLayer":
        return None
    return str(history[0].name)


def twin(model: Any, qm: Any) -> ActGrid:
    """The fake-quantized twin of a Keras model (functional or Sequential, a chain or a graph
    of layers) for the export's quantized model qm (a QuantModel), its grids set from qm."""
    import keras

    if isinstance(model, keras.Sequential):  # clone_model calls layers in functional models
        ins, outs = model.inputs, model.outputs
        model = keras.Model(ins[0] if len(ins) == 1 else ins, outs[0] if len(outs) == 1 else outs)
    held = {ql.name for ql in qm.layers}
    emb = qm.embedding.name if qm.embedding is not None else None
    fq_class, cell_class = _quant_layer_class(), _cell_class()
    found = ActGrid(None)
    renamed: dict[str, str] = {}  # a twin recurrent layer's name -> the model layer's
    # the twin's inputs; the features are the first (a training model's second is its mask)
    inputs = [
        keras.Input(batch_shape=t.shape, dtype=t.dtype, name=_input_name(t)) for t in model.inputs
    ]
    features = inputs[0] if emb is None and not qm.input_names else None
    last = {t._keras_history[0].name for t in model.outputs}

    def clone(layer: Any) -> Any:
        if type(layer).__name__ in _RECURRENT and layer.name in held:
            if not _plain_recurrent(layer):
                found.unmodelled.append(layer.name)
                return layer
            cell = cell_class(layer, name=f"{layer.name}_qcell")
            found.cells[layer.name] = cell
            seq = bool(layer.get_config().get("return_sequences", False))
            rnn = keras.layers.RNN(cell, return_sequences=seq, name=f"{layer.name}_qat")
            renamed[rnn.name] = layer.name
            return rnn
        if type(layer).__name__ == "Bidirectional":
            found.unmodelled.append(layer.name)
        return layer

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if features is not None and args and args[0] is features:
            fq = fq_class(int(args[0].shape[-1]), name=f"{layer.name}_qin")
            found.inputs.append(fq)
            args = (fq(args[0]), *args[1:])
        y = layer(*args, **kwargs)
        name = renamed.get(layer.name, layer.name)
        if name in found.cells or (name not in held and name != emb):
            return y
        fq = fq_class(int(y.shape[-1]), last=layer.name in last, name=f"{name}_qout")
        found.outputs[name] = fq
        return fq(y)

    found.twin = keras.models.clone_model(
        model,
        input_tensors=inputs[0] if len(inputs) == 1 else inputs,
        clone_function=clone,
        call_function=call,
    )
    found.update(qm)
    return found
