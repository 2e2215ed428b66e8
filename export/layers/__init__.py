"""One module per layer kind: reader, float step, quantizer rule, integer step.

Adding a layer kind means adding one module here (and listing it below), one template block in
firmware_templates/layers/ and one kernel in the runtime header.
"""

from __future__ import annotations

from types import ModuleType

from rnn2c.export.layers import (
    bidirectional,
    conv1d,
    dense,
    gru,
    layer_norm,
    lstm,
    merge,
    pooling,
    repeat,
    simple_rnn,
)

LAYER_MODULES: tuple[ModuleType, ...] = (
    gru,
    lstm,
    simple_rnn,
    dense,
    layer_norm,
    bidirectional,
    conv1d,
    pooling,
    repeat,
)

#: Keras class name -> module with read(keras_layer, input_size)
READERS: dict[str, ModuleType] = {cls: m for m in LAYER_MODULES for cls in m.KERAS_CLASSES}

#: quantized layer kind -> class, for loading a saved quantized model
QUANT_CLASSES = {
    cls.kind: cls
    for cls in (
        gru.QuantGRU,
        lstm.QuantLSTM,
        simple_rnn.QuantSimpleRNN,
        dense.QuantDense,
        bidirectional.QuantSequence,
        merge.QuantMerge,
        layer_norm.QuantLayerNorm,
        conv1d.QuantConv1D,
        pooling.QuantPool,
        pooling.QuantGlobalPool,
        repeat.QuantRepeat,
    )
}
RECURRENT_KINDS = ("gru", "lstm", "rnn", "bidir")  # bidir: Bidirectional or go_backwards
#: layers over time that are not recurrent: a causal Conv1D and pooling (windowed, global)
TIME_KINDS = ("conv1d", "pool1d", "gpool1d")
