"""Quantization-aware fine-tuning of a Keras model: its weights trained on the grid the export
puts them on.

The exporter quantizes each weight row (a gate row of a recurrent layer spans its kernel and
recurrent-kernel columns) symmetrically to int8 (or int4) with one scale per row, after scaling
each column by the real value of one unit of the vector it multiplies: the input's scale shifted
left by the layer's x_shift, the state's by h_shift (export/layers/common.py). Fine-tuning here
runs every training batch forward and backward on those quantized weights (the straight-through
estimator: the gradient at the quantized point updates the float master weights) and ends with
the weights on the grid, so that the export reproduces them integer for integer.

The grid is read from the exporter itself: the model is read and quantized with the calibration
set and the export options, and each Keras layer the quantized model holds under the same name
(Dense, Conv1D, SimpleRNN, GRU of both variants, LSTM, with the float weights the reader took
unchanged) gets its column scales and row grouping from it. A layer the quantized model does
not hold that way (inside a Bidirectional wrapper, a seq2seq decoder, weights the reader folded
a normalization into) is put on an approximate grid: one scale per output row over its kernel
and recurrent kernel, columns unscaled; :class:`Report` lists those layers. The training pass
runs through a twin of a sequence model that shares its weights and quantizes the activations
as the C does (:mod:`rnn2c.qat_act`: the input, each layer's output, every recurrent state);
:func:`forward_vs_c` measures how far that forward, and the float forward with the weights
alone on the grid, are from the integer model that the C runs bit for bit.

    from rnn2c import qat
    report = qat.fine_tune(model, x_train, y_train, calib=x_calib, weights="int4", epochs=10)
    print(report.lines())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn2c.export import kinds
from rnn2c.export.ir import ExportError, QuantModel
from rnn2c.export.quantize import observe_model, quantize_model
from rnn2c.export.reference import last_step, run_int
from rnn2c.export.seq2seq import quantize_seq2seq
from rnn2c.qat_act import ActGrid, twin

#: the largest weight magnitude of each weight type (symmetric: int4 uses -7..7)
WEIGHT_QMAX = {"int8": 127, "int4": 7}
#: Keras layer classes with a quantized weight matrix, and the weights that form it
_RECURRENT = ("GRU", "LSTM", "SimpleRNN")
_MATRIX = ("Dense", "Conv1D")


@dataclass
class LayerGrid:
    """How one Keras layer's weight matrices are quantized.

    ``weights`` indexes the layer's get_weights() arrays that are quantized (the last axis of
    each is the output column); ``factors`` holds for each a factor array broadcastable to it
    (the real value of one vector unit of that column); ``rows`` for each the row id of every
    output column: columns of several arrays with one id share one scale.
    """

    layer: Any
    weights: list[int]
    factors: list[np.ndarray]
    rows: list[np.ndarray]
    qmax: int
    exact: bool
    #: per quantized array, a factor the reader applied to it first (a Normalization or
    #: BatchNormalization folded into the layer's kernel: one per input feature), or None
    pre: list[np.ndarray | None] = field(default_factory=list)

    def _pre(self, k: int) -> np.ndarray | None:
        return self.pre[k] if k < len(self.pre) else None

    def ints(self, values: list[np.ndarray]) -> list[np.ndarray]:
        """The integer weights (as the export computes them) of the layer's current values."""
        return [q for q, _ in self._quantize(values)]

    def project(self, values: list[np.ndarray]) -> list[np.ndarray]:
        """The layer's get_weights() with the quantized arrays replaced by their grid points."""
        out = list(values)
        for k, (i, (q, scale)) in enumerate(zip(self.weights, self._quantize(values), strict=True)):
            w = q * scale / self.factors[k]
            pre = self._pre(k)
            out[i] = (w if pre is None else w / pre).astype(values[i].dtype)
        return out

    def _quantize(self, values: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        n_rows = int(max(r.max(initial=-1) for r in self.rows)) + 1
        peak = np.zeros(n_rows)
        scaled = []
        for k, (i, a, r) in enumerate(zip(self.weights, self.factors, self.rows, strict=True)):
            w = np.asarray(values[i], dtype=np.float64)
            pre = self._pre(k)
            w = (w if pre is None else w * pre) * a  # the reader's order of operations
            scaled.append(w)
            col = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0, initial=0.0)
            np.maximum.at(peak, r, col)
        scale = peak / self.qmax
        scale[scale == 0] = 1.0  # an all-zero row: any scale is exact
        out = []
        for w, r in zip(scaled, self.rows, strict=True):
            s = scale[r]
            q = np.clip(np.round(w / s), -self.qmax, self.qmax)
            out.append((q, s))
        return out


def export_options(weights: str, method: str, input_quant: str) -> dict[str, Any]:
    """The quantization options (quantize_model's keywords) of an export with these flags."""
    return {"method": method, "input_quant": input_quant, "weights": weights}


def _with_weights(
    options: dict[str, Any], weights: str, keep_int8: Sequence[str]
) -> dict[str, Any]:
    """options (the export's other quantization options) with its weight type and the layers
    that stay int8, as quantized_for takes them."""
    return {**options, "weights": weights, "keep_int8": list(keep_int8) or None}


def _keras_class(layer: Any) -> str:
    return type(layer).__name__


def _matrix_layers(model: Any) -> list[Any]:
    """Every layer with a quantized weight matrix, inside wrappers and nested models too."""
    out = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if _keras_class(layer) in _RECURRENT + _MATRIX and layer.weights:
            out.append(layer)
    return out


def _cell_rows(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of a recurrent layer's kernel and recurrent-kernel columns (GRU reset_after:
    the candidate's recurrent part is rows of its own)."""
    n = layer.get_weights()[0].shape[-1]
    rows = np.arange(n)
    rec = rows.copy()
    if _keras_class(layer) == "GRU" and getattr(layer, "reset_after", False):
        u = n // 3
        rec[2 * u :] += u
    return rows, rec


def _approximate(layer: Any, qmax: int) -> LayerGrid:
    """One scale per output row over the layer's matrices, columns unscaled."""
    w = layer.get_weights()
    if _keras_class(layer) in _RECURRENT:
        rows, rec = _cell_rows(layer)
        return LayerGrid(layer, [0, 1], [np.ones(1), np.ones(1)], [rows, rec], qmax, False)
    return LayerGrid(layer, [0], [np.ones(1)], [np.arange(w[0].shape[-1])], qmax, False)


def _input_scales(qm: QuantModel, i: int) -> np.ndarray | None:
    """The real value of one unit of each input column of layer i, None where not plain."""
    layer = qm.layers[i]
    producers = qm.inputs[i] if qm.inputs else [i - 1]
    parts = []
    for p in producers:
        if p >= 0:
            q, size = qm.layers[p].output_q, qm.layers[p].output_size
        elif p == -1 and qm.embedding is not None:  # a token model: the table's rows
            q, size = qm.embedding.output_q, qm.embedding.dim
        elif p == -1 and not qm.input_names:
            q, size = qm.input_q, qm.input_size
        else:
            return None
        parts.append(np.broadcast_to(np.asarray(q.scale, dtype=np.float64), (size,)))
    scales = np.concatenate(parts) if parts else np.zeros(0)
    return scales if scales.size == layer.input_size else None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _exact(
    layer: Any, qlayer: Any, scales: np.ndarray, qmax: int, pre: np.ndarray | None
) -> LayerGrid:
    """The grid of a layer the quantized model holds, as the layer module computes it."""
    w = layer.get_weights()
    kind = _keras_class(layer)
    if kind in _RECURRENT:
        ax = (scales * 2.0 ** -int(qlayer.x_shift))[:, None]
        ah = np.asarray(float(qlayer.output_q.scale) * 2.0 ** -int(qlayer.h_shift))
        rows, rec = _cell_rows(layer)
        pres = [None if pre is None else pre[:, None], None]
        return LayerGrid(layer, [0, 1], [ax, ah], [rows, rec], qmax, True, pres)
    out_rows = [np.arange(w[0].shape[-1])]
    if kind == "Conv1D":
        p = None if pre is None else pre[None, :, None]
        return LayerGrid(layer, [0], [scales[None, :, None]], out_rows, qmax, True, [p])
    p = None if pre is None else pre[:, None]
    return LayerGrid(layer, [0], [scales[:, None]], out_rows, qmax, True, [p])


def _input_fold(kernel: np.ndarray, folded: np.ndarray) -> tuple[bool, np.ndarray | None]:
    """Whether the reader's kernel is the layer's, or the layer's with a per-input-feature
    factor folded in (a Normalization before it: kernel[.., c, :] * a[c]); then that factor."""
    if kernel.shape != folded.shape:
        return False, None
    if np.array_equal(kernel, folded):
        return True, None
    axis = kernel.ndim - 2  # the input-feature axis: Dense/RNN kernels [F, N], Conv1D [K, F, N]
    k = np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)
    f = np.moveaxis(folded, axis, 0).reshape(kernel.shape[axis], -1)
    a = np.array([_row_factor(kr, fr) for kr, fr in zip(k, f, strict=True)])
    if np.isnan(a).any():
        return False, None
    return True, a


def _row_factor(k: np.ndarray, f: np.ndarray) -> float:
    """The factor a with fl(a * k) == f for the whole row (the ratio of its largest entry or a
    float next to it, as the division may round), NaN if there is none."""
    j = int(np.abs(k).argmax())
    if k[j] == 0:
        return 1.0 if not f.any() else float("nan")
    a = f[j] / k[j]
    for _ in range(3):
        for cand in (a, np.nextafter(a, np.inf), np.nextafter(a, -np.inf)):
            if np.array_equal(k * cand, f):
                return float(cand)
        a = np.nextafter(a, np.inf) if (k * a)[j] < f[j] else np.nextafter(a, -np.inf)
    return float("nan")


def _matches(layer: Any, float_layer: Any) -> tuple[bool, np.ndarray | None]:
    """Whether the reader took the layer's weights as they are, or with an input factor folded
    in (then that factor, per input feature)."""
    w = layer.get_weights()
    kernel = getattr(float_layer, "kernel", None)
    if kernel is None:
        return False, None
    ok, pre = _input_fold(w[0].astype(np.float64), np.asarray(kernel, dtype=np.float64))
    if ok and _keras_class(layer) in _RECURRENT:
        rec = getattr(float_layer, "recurrent_kernel", None)
        ok = rec is not None and _same(np.asarray(rec, np.float64), w[1].astype(np.float64))
    return ok, pre


def quantized_for(
    model: Any, calib: np.ndarray, lengths: np.ndarray | None = None, **options: Any
) -> QuantModel | None:
    """The quantized model the export makes of a streaming or whole-sequence Keras model with
    calibration sequences calib [N, T, F] (of ``lengths`` real steps; None: all); None for
    another kind (a seq2seq model)."""
    return _read_quantized(model, calib, lengths, **options)[1]


def _read_quantized(
    model: Any, calib: np.ndarray, lengths: np.ndarray | None, **options: Any
) -> tuple[Any, QuantModel | None]:
    """(the model's float IR, :func:`quantized_for`'s quantized model), the model read once."""
    _, kind, ir = kinds.read(model)
    if kind.name != "sequence":
        return ir, None
    return ir, quantize_model(ir, np.asarray(calib, dtype=np.float64), lengths, **options)


def quantized_seq2seq(
    model: Any,
    x: np.ndarray,
    lengths: np.ndarray,
    y: np.ndarray,
    tokens: tuple[int, int],
    max_lengths: tuple[int, int],
    method: str = "minmax",
) -> Any:
    """The quantized model the export makes of a seq2seq Keras model with calibration inputs
    x, their lengths and targets y; tokens: (start, end); max_lengths: (--max-length,
    --max-output-length)."""
    _, _, ir = kinds.read(model)
    return quantize_seq2seq(ir, x, lengths, y, *tokens, *max_lengths, method=method)


#: what grids needs of a quantized layer: (float layer, quantized layer, input column scales
#: or None where they are not plain, whether one scale spans the whole matrix)
_Holder = tuple[Any, Any, np.ndarray | None, bool]


def _holders(ir: Any, q: Any) -> dict[str, _Holder]:
    """Every quantized layer with a weight matrix, by name, with its input column scales."""
    if isinstance(q, QuantModel):
        return {
            fl.name: (fl, ql, _input_scales(q, i), False)
            for i, (fl, ql) in enumerate(zip(ir.layers, q.layers, strict=False))
        }
    out = _holders(ir.encoder, q.encoder)  # a QuantSeq2Seq
    dec_scale = float(q.dec_embedding.output_q.scale)
    out[ir.decoder.name] = (ir.decoder, q.decoder, np.full(ir.decoder.input_size, dec_scale), False)
    scale = 1.0 / 128.0  # [h; context], both Q0.7
    for fl, ql in zip(ir.mid, q.mid, strict=True):
        out[fl.name] = (fl, ql, np.full(fl.input_size, scale), False)
        scale = float(ql.output_q.scale)
    out[ir.out.name] = (ir.out, q.out, None, True)  # greedy output: one scale for the matrix
    return out


def grids(
    model: Any,
    calib: np.ndarray | None = None,
    weights: str = "int8",
    keep_int8: Sequence[str] = (),
    lengths: np.ndarray | None = None,
    quantized: Any = None,
    act: ActGrid | None = None,
    **options: Any,
) -> list[LayerGrid]:
    """The grid of every layer with a quantized weight matrix, from the quantized model the
    export makes (``quantized``, else :func:`quantized_for` of the calibration sequences
    ``calib`` of ``lengths`` real steps). keep_int8: layer names or Keras class names (lower
    case, e.g. "dense") that stay int8 under weights="int4". options: the export's quantization
    options (method, activations, input_quant, max_length). act: a fake-quantized twin
    (:func:`activation_twin`) whose activation grids are set from the same quantized model."""
    if weights not in WEIGHT_QMAX:
        raise ExportError(f"unknown weight type {weights!r}; use one of {', '.join(WEIGHT_QMAX)}")
    keep = {k.lower() for k in keep_int8}
    if quantized is None:
        if calib is None:
            raise ExportError("grids needs the calibration sequences or the quantized model")
        ir, quantized = _read_quantized(
            model, calib, lengths, **_with_weights(options, weights, keep_int8)
        )
    else:
        _, _, ir = kinds.read(model)
    if act is not None and isinstance(quantized, QuantModel):
        act.update(quantized)
    holders = _holders(ir, quantized) if quantized is not None else {}
    out = []
    for layer in _matrix_layers(model):
        qmax = WEIGHT_QMAX[weights]
        if layer.name.lower() in keep or _keras_class(layer).lower() in keep:
            qmax = WEIGHT_QMAX["int8"]
        found = holders.get(layer.name)
        ok, pre = _matches(layer, found[0]) if found is not None else (False, None)
        if found is not None and ok and found[3]:
            n = layer.get_weights()[0].shape[-1]
            out.append(LayerGrid(layer, [0], [np.ones(1)], [np.zeros(n, np.int64)], qmax, True))
        elif found is not None and ok and found[2] is not None:
            bits = getattr(found[1], "weight_bits", 8)  # what the export gave the layer
            out.append(_exact(layer, found[1], found[2], WEIGHT_QMAX[f"int{bits}"], pre))
        else:
            out.append(_approximate(layer, qmax))
    return out


def _callback_base() -> type:
    import keras

    return keras.callbacks.Callback


def make_callback(
    layer_grids: list[LayerGrid], refresh: Callable[[], list[LayerGrid]] | None = None
) -> Any:
    """A Keras callback that runs every training batch and every evaluation on the quantized
    weights and applies each update to the float master weights (straight-through). refresh:
    called at each epoch's start for the grids of the weights then (the exporter's column
    scales follow the weights: its input/state balancing shifts are chosen from them)."""

    class QuantizedWeights(_callback_base()):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.masters: list[list[np.ndarray]] | None = None
            self.projected: list[list[np.ndarray]] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if refresh is not None and epoch > 0:
                try:
                    layer_grids[:] = refresh()
                except ExportError:  # weights the export refuses (judged so, never kept):
                    pass  # this epoch trains on the last grid it gave

        def _to_grid(self) -> None:
            self.masters = [g.layer.get_weights() for g in layer_grids]
            self.projected = [g.project(m) for g, m in zip(layer_grids, self.masters, strict=True)]
            for g, p in zip(layer_grids, self.projected, strict=True):
                g.layer.set_weights(p)

        def _back(self, keep_update: bool) -> None:
            if self.masters is None:
                return
            for g, m, p in zip(layer_grids, self.masters, self.projected, strict=True):
                now = g.layer.get_weights()
                new = [mi + (ni - pi) for mi, ni, pi in zip(m, now, p, strict=True)]
                g.layer.set_weights(new if keep_update else m)
            self.masters = None

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self._to_grid()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self._back(keep_update=True)

        def on_test_begin(self, logs: Any = None) -> None:
            self._to_grid()

        def on_test_end(self, logs: Any = None) -> None:
            self._back(keep_update=False)

        def on_predict_begin(self, logs: Any = None) -> None:
            self._to_grid()

        def on_predict_end(self, logs: Any = None) -> None:
            self._back(keep_update=False)

    return QuantizedWeights()


def snap(layer_grids: list[LayerGrid]) -> None:
    """Put every layer's weights on its grid, for good."""
    for g in layer_grids:
        g.layer.set_weights(g.project(g.layer.get_weights()))


def on_grid(grid: LayerGrid) -> bool:
    """Whether a layer's weights are points of its grid: quantizing them again moves none by
    more than float32 rounding (an off-grid weight moves by up to half a step)."""
    now = grid.layer.get_weights()
    return all(
        np.allclose(a, b, rtol=1e-6, atol=0) for a, b in zip(now, grid.project(now), strict=True)
    )


#: settle's most rounds (putting the weights on the grid may move the exporter's shifts once)
SETTLE_ROUNDS = 4


def settle(make: Callable[[], list[LayerGrid]]) -> list[LayerGrid]:
    """Put the weights on the grid the exporter computes from them, for good: snap, read the
    grid again (the input/state balancing shifts follow the weights), until the weights are
    on the grid of themselves. Where the shifts alternate between two choices (weights at the
    balance's tie), the weights go on the grid of one then of the other, which keeps them on
    the coarser: then either choice holds them. Returns the grid (its layers' ``exact`` false
    if it did not settle in SETTLE_ROUNDS)."""
    layer_grids = make()
    previous: list[LayerGrid] = []
    for _ in range(SETTLE_ROUNDS):
        snap(layer_grids)
        for g in previous:  # the grid before: a two-way alternation settles on both
            g.layer.set_weights(g.project(g.layer.get_weights()))
        previous = layer_grids
        layer_grids = make()
        if all(on_grid(g) for g in layer_grids):
            return layer_grids
    for g in layer_grids:
        g.exact = g.exact and on_grid(g)
    return layer_grids


@dataclass
class Report:
    """What fine-tuning did and how close the result is to the integer model."""

    weights: str
    layers: list[tuple[str, int, bool]]  # (layer name, its qmax, whether its grid is exact)
    max_output_error: float | None = None  # |float - int8 model|, in output units, over eval
    output_range: float | None = None
    agreement: float | None = None  # classifiers: share of argmax equal; None otherwise
    history: dict[str, list[float]] = field(default_factory=dict)
    #: the epoch whose weights were kept (0: the weights before fine-tuning), None: the last
    kept_epoch: int | None = None
    kept: str = ""  # why, in words
    #: the layers whose output or state the fine-tuning's forward quantized, and the recurrent
    #: layers it ran in float (inside a wrapper); empty: the weights alone were on the grid
    activations: list[str] = field(default_factory=list)
    float_activations: list[str] = field(default_factory=list)
    #: :func:`forward_vs_c` on the evaluation sequences (None: not measured)
    forward_vs_c: dict[str, float] | None = None

    @property
    def approximate(self) -> list[str]:
        return [name for name, _, exact in self.layers if not exact]

    def lines(self) -> list[str]:
        kinds_ = sorted({"int4" if q == 7 else "int8" for _, q, _ in self.layers})
        out = [
            f"qat: {len(self.layers)} layer(s) fine-tuned on the export's weight grid "
            f"({', '.join(kinds_)})"
        ]
        if self.approximate:
            out.append(
                "qat: approximate grid (one scale per row, columns unscaled) for "
                + ", ".join(self.approximate)
            )
        if self.max_output_error is not None:
            rel = self.max_output_error / self.output_range if self.output_range else 0.0
            line = (
                f"qat: the fine-tuned float model vs the int8 model the C runs: max output "
                f"error {self.max_output_error:.4g} ({100 * rel:.2f} % of the output range)"
            )
            if self.agreement is not None:
                line += f", same class on {100 * self.agreement:.1f} % of sequences"
            out.append(line)
        if self.activations:
            out.append(
                "qat: activations on the export's grids in the fine-tuning's forward (input, "
                f"outputs, states) for {', '.join(self.activations)}"
                + (
                    f"; in float: {', '.join(self.float_activations)}"
                    if self.float_activations
                    else ""
                )
            )
        if self.forward_vs_c is not None:
            out.append(f"qat: {forward_words(self.forward_vs_c)}")
        if self.kept:
            out.append(f"qat: {self.kept}")
        return out


def forward_words(worst: dict[str, float]) -> str:
    """:func:`forward_vs_c`'s figures in words."""
    text = (
        "forward vs C (the integer model): max |output - C output| "
        f"{worst['activations']:.4g} with the activations quantized as in the C, "
        f"{worst['weights_only']:.4g} with the weights alone on the grid"
    )
    if "activations_mean" in worst:
        text += f" (mean {worst['activations_mean']:.3g} / {worst['weights_only_mean']:.3g})"
    return text


def closeness_logs(
    y: np.ndarray, ref: np.ndarray, weight: np.ndarray | None, classes: bool
) -> dict[str, float]:
    """How close outputs y [..., out] are to the float model's ref, over the real steps
    (weight, broadcast to y's leading axes; None: all): distance, the mean |y - ref| (a
    classifier's probabilities, a regressor's standardized outputs), and for a classifier
    agreement, the share of real steps whose class is the float model's."""
    w = np.ones(y.shape[:-1]) if weight is None else np.reshape(weight, y.shape[:-1])
    total = max(float(w.sum()), 1e-12)
    out = {"distance": float((np.abs(y - ref).mean(-1) * w).sum() / total)}
    if classes:
        out["agreement"] = float(((y.argmax(-1) == ref.argmax(-1)) * w).sum() / total)
    return out


def keep_best(judge: Callable[[], dict[str, float]]) -> Any:
    """A Keras callback that judges the weights before fine-tuning ("epoch 0") and each epoch's
    by judge() (:func:`closeness_logs` of the outputs on the selection data, the weights on
    the grid, against the float model's): the highest agreement where there is one, then the
    lowest distance. It restores the best at the end; ``epoch`` (0: the weights before) and
    ``kept`` (in words) say which."""

    class KeepBest(_callback_base()):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.best: tuple[float, float] = (-np.inf, -np.inf)
            self.weights: list[np.ndarray] | None = None
            self.epoch, self.start, self.logs = 0, {}, {}
            self.kept = ""

        def _judge(self, epoch: int) -> None:
            logs = judge()
            key = (round(logs.get("agreement", 0.0), 6), -logs["distance"])
            if epoch == 0:
                self.start = logs
            if key > self.best:
                self.best, self.epoch, self.logs = key, epoch, logs
                self.weights = [np.array(w) for w in self.model.get_weights()]

        def on_train_begin(self, logs: Any = None) -> None:
            self._judge(0)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self._judge(epoch + 1)

        def on_train_end(self, logs: Any = None) -> None:
            if self.weights is not None:
                self.model.set_weights(self.weights)
            if self.epoch == 0:
                self.kept = (
                    "kept the weights before fine-tuning: no epoch came closer to the float "
                    f"model ({closeness_words(self.start)})"
                )
            else:
                self.kept = (
                    f"kept epoch {self.epoch}: {closeness_words(self.logs)} (before: "
                    f"{closeness_words(self.start)})"
                )

    return KeepBest()


def closeness_words(logs: dict[str, float]) -> str:
    """:func:`closeness_logs`' figures in words (the lines that say which weights were kept)."""
    text = f"mean |output - float| {logs['distance']:.4g}"
    if "agreement" in logs:
        text = f"class of the float model at {100 * logs['agreement']:.2f} %, " + text
    return text


def compare(
    model: Any,
    x: np.ndarray,
    lengths: np.ndarray | None,
    calib: np.ndarray,
    calib_lengths: np.ndarray | None = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A model's float outputs and those of the integer model its export runs (bit-exact with
    the C) on sequences x [N, T, F] of ``lengths`` real steps: (float [N, T', out], int
    dequantized [N, T', out], real [N, T']), T' = T for a model that returns sequences, else 1
    (each sequence's last real step). The float forward is the exporter's float IR (equal to
    Keras on the real steps of each sequence). None for another kind (a seq2seq model)."""
    ir, qm = _read_quantized(model, calib, calib_lengths, **options)
    if qm is None:
        return None
    # a token model's ids [N, T] stay ids: the float IR reads their Embedding rows
    x = np.asarray(x) if ir.embedding is not None else np.asarray(x, dtype=np.float64)
    n, t = x.shape[:2]
    lengths = np.full(n, t) if lengths is None else np.asarray(lengths)
    y_float, _ = observe_model(ir, ir.float_input(x), lengths)
    y_int = qm.output_q.dequantize(run_int(qm, qm.quantize_input(x), lengths))
    real = np.arange(t)[None, :] < lengths[:, None]
    if not qm.returns_sequences:
        y_float, y_int = last_step(y_float, lengths)[:, None], last_step(y_int, lengths)[:, None]
        real = np.ones((n, 1), dtype=bool)
    return y_float, y_int, real


def agreement(
    model: Any,
    x: np.ndarray,
    lengths: np.ndarray | None,
    calib: np.ndarray,
    calib_lengths: np.ndarray | None = None,
    classifier: bool = False,
    **options: Any,
) -> tuple[float, float, float | None] | None:
    """How close a model's float forward is to the integer model its export runs
    (:func:`compare`): (max |float - int| over every real step's outputs, the float outputs'
    range, for a classifier the share of real steps whose argmax agrees); None for a kind
    compare does not run."""
    found = compare(model, x, lengths, calib, calib_lengths, **options)
    return None if found is None else closeness(*found, classifier)


def closeness(
    y_float: np.ndarray, y_int: np.ndarray, real: np.ndarray, classifier: bool
) -> tuple[float, float, float | None]:
    """(max |float - int| over the real steps' outputs, the float outputs' range, for a
    classifier the share of real steps whose argmax agrees) of :func:`compare`'s arrays."""
    err = float(np.max(np.abs(y_float - y_int)[real], initial=0.0))
    span = float(y_float[real].max() - y_float[real].min()) if real.any() else 0.0
    agree = None
    if classifier:
        agree = float(np.mean((y_float.argmax(-1) == y_int.argmax(-1))[real]))
    return err, span, agree


def activation_twin(
    model: Any,
    calib: np.ndarray,
    weights: str = "int8",
    keep_int8: Sequence[str] = (),
    lengths: np.ndarray | None = None,
    **options: Any,
) -> ActGrid | None:
    """The fake-quantized twin of a sequence model (:mod:`rnn2c.qat_act`: its forward puts the
    input, each layer's output and each recurrent state on the export's grids), its grids set
    from the export with these options; None for another kind (a seq2seq model)."""
    qm = quantized_for(model, calib, lengths, **_with_weights(options, weights, keep_int8))
    return None if qm is None else twin(model, qm)


def twin_outputs(act: ActGrid, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """The twin's outputs on sequences x [N, T, F] of ``lengths`` real steps (None: all), laid
    out as :func:`compare`'s: [N, T', out], each sequence run cut to its real length (as the
    C runs it); T' = T for a model that returns sequences, else 1 (the last real step)."""
    x = np.asarray(x, dtype=np.float32)
    n, t = x.shape[:2]
    lengths = np.full(n, t) if lengths is None else np.asarray(lengths)
    seq = len(act.twin.outputs[0].shape) == 3
    out = np.zeros((n, t if seq else 1, int(act.twin.outputs[0].shape[-1])))
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        for lo in range(0, len(idx), 256):
            part = idx[lo : lo + 256]
            y = np.asarray(act.twin(x[part, : int(length)], training=False), dtype=np.float64)
            if seq:
                out[part, : int(length)] = y
            else:
                out[part, 0] = y
    return out


def forward_vs_c(
    act: ActGrid,
    found: tuple[np.ndarray, np.ndarray, np.ndarray],
    x: np.ndarray,
    lengths: np.ndarray | None,
) -> dict[str, float]:
    """How far the fine-tuning's forward is from the integer model the C runs bit for bit, on
    sequences x of ``lengths`` real steps, given :func:`compare`'s arrays there: the largest
    |output - integer output| over the real steps of the float forward with the weights alone
    on the grid (``weights_only``) and of the twin, the activations quantized too
    (``activations``), and the mean |output - integer output| of each (``..._mean``); in the
    model's output units. One state step rounded the other way can set a sequence on another
    path, so the largest differences are single sequences; the means tell the typical."""
    y_float, y_int, real = found
    y_twin = twin_outputs(act, x, lengths)
    worst = {}
    for key, y in (("weights_only", y_float), ("activations", y_twin)):
        diff = np.abs(y - y_int)[real]
        worst[key] = float(np.max(diff, initial=0.0))
        worst[f"{key}_mean"] = float(diff.mean()) if diff.size else 0.0
    return worst


def fine_tune(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    calib: np.ndarray,
    weights: str = "int8",
    keep_int8: Sequence[str] = (),
    epochs: int = 10,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    loss: Any = None,
    validation_data: Any = None,
    callbacks: Sequence[Any] = (),
    eval_x: np.ndarray | None = None,
    eval_lengths: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    classifier: bool | None = None,
    keep: bool = True,
    fake: bool = True,
    **options: Any,
) -> Report:
    """Fine-tune a Keras model on the export's weight grid and leave its weights on it.

    x, y: as Keras' fit takes them (arrays, or a keras.utils.PyDataset in x). calib: the
    calibration sequences [N, T, F] the export will use (they set the input scale, hence the
    grid). loss: compiled with Adam at learning_rate when given; else the model must be
    compiled (its optimizer then keeps its own rate). lengths: calib's real steps (None:
    all). options: the export's quantization options (method, activations, input_quant,
    max_length; the export must be run with the same ones). eval_x, eval_lengths: sequences on
    which to measure the agreement with the integer model (default: calib). keep: keep the
    best of the weights before fine-tuning and each epoch's (:func:`keep_best`): the one whose
    export's integer model (:func:`compare`; a seq2seq model: the Keras forward on the grid)
    is closest to the float model's outputs (the model as passed in) on validation_data's
    inputs, else on x (arrays only; a PyDataset x without validation_data keeps the last
    epoch); the report says which. fake: train a sequence model through its fake-quantized
    twin (:func:`activation_twin`: the input, the layers' outputs and the recurrent states on
    the export's grids, read again with the weight grid each epoch); False: the weights
    alone on the grid.
    """
    import keras

    export = _with_weights(options, weights, keep_int8)
    act = activation_twin(model, calib, weights, keep_int8, lengths, **options) if fake else None

    def make() -> list[LayerGrid]:
        return grids(model, calib, weights, keep_int8, lengths, act=act, **options)

    layer_grids = make()
    trainer = model if act is None else act.twin  # shares every weight with model
    if loss is not None:
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    elif not getattr(model, "optimizer", None):
        raise ExportError("fine_tune needs a compiled model or loss=...")
    elif act is not None:  # the twin trains with the model's loss and a fresh optimizer alike
        opt = model.optimizer
        trainer.compile(optimizer=type(opt).from_config(opt.get_config()), loss=model.loss)
    cb = make_callback(layer_grids, make)
    fit_kw: dict[str, Any] = {"epochs": epochs, "verbose": 0, "callbacks": [cb, *callbacks]}
    if validation_data is not None:
        fit_kw["validation_data"] = validation_data
    select = validation_data if validation_data is not None else (x, y)
    if classifier is None:
        classifier = _ends_in_softmax(model)
    best = None
    if keep and isinstance(select, tuple) and isinstance(select[0], np.ndarray):
        sel_x, sel_w = select[0], (select[2] if len(select) > 2 else None)
        found = compare(model, sel_x, None, calib, lengths, **export)
        if found is not None:  # judged by the export's integer model
            ref, _, sel_w = found
        else:  # by the Keras forward on the grid
            ref = np.asarray(model.predict(sel_x, batch_size=256, verbose=0), dtype=np.float64)

        def judge() -> dict[str, float]:
            try:
                if found is not None:
                    now = compare(model, sel_x, None, calib, lengths, **export)
                    out = now[1] if now is not None else ref
                else:
                    out = model.predict(sel_x, batch_size=256, verbose=0, callbacks=[cb])
            except ExportError:  # weights the export refuses: never kept; training goes on
                return {"distance": np.inf, "agreement": -1.0}
            return closeness_logs(np.asarray(out, np.float64), ref, sel_w, bool(classifier))

        best = keep_best(judge)
        fit_kw["callbacks"].append(best)
    if isinstance(x, np.ndarray):
        fit_kw["batch_size"] = batch_size
        hist = trainer.fit(x, y, **fit_kw)
    else:
        hist = trainer.fit(x, **fit_kw)
    layer_grids = settle(make)
    report = Report(
        weights,
        [(g.layer.name, g.qmax, g.exact) for g in layer_grids],
        history={k: [float(v) for v in vs] for k, vs in hist.history.items()},
    )
    if act is not None:
        report.activations, report.float_activations = act.modelled, act.unmodelled
    if best is not None:
        report.kept_epoch, report.kept = best.epoch, best.kept
    ex, el = (calib, lengths) if eval_x is None else (eval_x, eval_lengths)
    found = compare(model, ex, el, calib, lengths, **export)
    if found is not None:
        report.max_output_error, report.output_range, report.agreement = closeness(
            *found, bool(classifier)
        )
        if act is not None:
            report.forward_vs_c = forward_vs_c(act, found, ex, el)
    return report


def _ends_in_softmax(model: Any) -> bool:
    act = getattr(model.layers[-1], "activation", None)
    return getattr(act, "__name__", "") == "softmax"
