"""Render a QuantModel to C through the Jinja templates in rnn2c.firmware_templates."""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
import numpy as np

from rnn2c import __version__
from rnn2c.export.audio import LogMel
from rnn2c.export.detect import default_detector, reset_hops
from rnn2c.export.ir import (
    CTYPE_BYTES,
    ExportError,
    QuantLayer,
    QuantModel,
    input_number,
    input_offsets,
    model_input,
)
from rnn2c.export.isa import RUNTIME_FILES, RUNTIME_HEADER, IsaData, layer_isa_data
from rnn2c.export.quant_rules import row_kinds, vector_max, worst_case_acc

LABELS = {
    "gru": "GRU",
    "lstm": "LSTM",
    "rnn": "SimpleRNN",
    "dense": "Dense",
    "bidir": "Bidirectional",
    "merge": "Merge",
    "lnorm": "LayerNorm",
    "conv1d": "Conv1D",
    "pool1d": "Pooling1D",
    "gpool1d": "GlobalPool",
    "repeat": "Repeat",
}
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic "
    "_Generic _Noreturn _Static_assert _Thread_local".split()
)
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: C++ keywords (the header is C++-compatible) and lower-case names of the C headers' macros
#: and types: unusable as an input's parameter name
CPP_RESERVED = frozenset(
    "alignas alignof and and_eq asm bitand bitor bool catch char8_t char16_t char32_t class "
    "compl concept consteval constexpr constinit const_cast co_await co_return co_yield "
    "decltype delete dynamic_cast explicit export false friend mutable namespace new noexcept "
    "not not_eq nullptr operator or or_eq private protected public reinterpret_cast requires "
    "static_assert static_cast template this thread_local throw true try typeid typename typeof "
    "typeof_unqual using virtual wchar_t xor xor_eq offsetof assert errno main".split()
)
#: names the generated <name>_step uses itself (its parameters, locals), or whose macros
#: <NAME>_<IN>_SIZE / _SCALE / _ZERO_POINT would be the model's own
STEP_NAMES = frozenset("input output state vec acc i t fresh".split())
#: the generated C's own file-scope names: layer data (l0_gru, ...) and runtime symbols
LAYER_SYMBOL = re.compile(r"(l\d+_|rnn2c)")
#: C file names the generated sources sit beside (an include-path clash would shadow them)
RESERVED_NAMES = frozenset(
    "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal "
    "stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath "
    "threads time uchar wchar wctype main arduino".split()
)
#: longest --name: its C identifiers (<name>_state_t, <NAME>_MACS_PER_STEP) and file names
#: (<name>_qmodel.npz) stay readable and within every file system's limit
MAX_NAME = 48


def check_name(name: str) -> str | None:
    """None if name is a usable C identifier prefix, else what is wrong with it."""
    if not IDENTIFIER.match(name):
        return (
            f"--name {name!r} is not a C identifier; use letters, digits and '_', "
            "starting with a letter"
        )
    if len(name) > MAX_NAME:
        return f"--name is {len(name)} characters long; use at most {MAX_NAME}"
    if name in C_KEYWORDS:
        return f"--name {name!r} is a C keyword; choose another name"
    if name.lower().startswith("rnn2c"):
        return f"--name {name!r} clashes with the runtime's rnn2c_ prefix; choose another name"
    if name.lower() in RESERVED_NAMES:
        return (
            f"--name {name!r} would make {name}.h/{name}.c, which clash with the standard "
            "C header or program file of that name; choose another name"
        )
    return None


def c_input_names(names: list[str], name: str) -> list[str]:
    """The C names of a multi-input model's inputs: each Keras Input name in lower case, other
    characters than letters, digits and '_' made '_'. ExportError (one line) for a name that
    gives no usable C parameter (empty, a digit or '_' first, a C/C++ keyword, a name the
    generated C uses itself) or two inputs that give the same C name."""
    out: list[str] = []
    for raw in names:
        c = re.sub(r"[^0-9A-Za-z_]", "_", str(raw)).lower()
        where = f"input '{raw}'"
        fix = "rename the Keras Input, e.g. keras.Input(shape, name='imu')"
        if not IDENTIFIER.match(c):
            raise ExportError(
                f"{where} does not give a C parameter name ({c!r} must start with a letter); {fix}"
            )
        if (
            c in C_KEYWORDS
            or c in CPP_RESERVED
            or c in STEP_NAMES
            or c.endswith("_t")
            or LAYER_SYMBOL.match(c)
            or c == name.lower()
            or c.startswith(name.lower() + "_")
        ):
            raise ExportError(
                f"{where} gives the C name {c!r}, which clashes with a C/C++ keyword or type or a "
                f"name of the generated code ({name}_..., l<i>_..., rnn2c..., input, output, "
                f"state); {fix}"
            )
        if len(c) > 2 * MAX_NAME:
            raise ExportError(f"{where} is {len(c)} characters long; use at most {2 * MAX_NAME}")
        if c in out:
            other = names[out.index(c)]
            raise ExportError(
                f"inputs '{other}' and '{raw}' both give the C name {c!r}; {fix} (distinct names)"
            )
        out.append(c)
    return out


def c_array(values: np.ndarray) -> str:
    """Comma-separated integers, as many per line as fit in about 96 columns."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    width = max((len(v) for v in flat), default=1) + 2
    per_line = max(1, 92 // width)
    lines = ["    " + ", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join(lines)


def c_string(text: str) -> str:
    """A C string literal of text's UTF-8 bytes: printable ASCII as is, the rest octal escaped
    (three digits, so a following digit cannot extend the escape); '?' escaped (trigraphs)."""
    out = []
    for b in str(text).encode("utf-8"):
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_structs(rows: list[tuple[int, ...]]) -> str:
    """Struct initializers { a, b, c }, as many per line as fit in about 96 columns."""
    items = ["{ " + ", ".join(str(int(v)) for v in row) + " }" for row in rows]
    width = max((len(v) for v in items), default=1) + 2
    per_line = max(1, 92 // width)
    lines = ["    " + ", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(lines)


def kind_shifts(layer: QuantLayer) -> list[tuple[int, int]]:
    """(shift_in, shift_out) of each row kind of a layer's matrix (the C struct's ``sh``), which
    every row of the kind shares (quant_rules.quantize_rows); a quantized model saved before that
    rule is refused."""
    fc = layer.fc  # type: ignore[attr-defined]
    kinds = row_kinds(fc.rows, getattr(layer, "units", fc.rows))
    out = []
    for k in range(int(kinds.max(initial=-1)) + 1):
        s1, s2 = fc.shift_in[kinds == k], fc.shift_out[kinds == k]
        if (s1 != s1[0]).any() or (s2 != s2[0]).any():
            raise ExportError(
                f"layer '{layer.name}': requantization shifts differ within a row kind "
                "(a quantized model from an older rnn2c); export the model again"
            )
        out.append((int(s1[0]), int(s2[0])))
    return out


def layer_arrays(layer: QuantLayer, input_bits: int) -> dict[str, Any]:
    """The C arrays of a layer: packed weights, bias and requantization in kernel order."""
    fc = getattr(layer, "fc", None)
    if fc is None:  # no weight matrix (pooling, LayerNormalization)
        return {
            "weight": np.zeros(0, dtype=np.int8),
            "bias": None,
            "rq": [],
            "worst": 0,
            "isa": [],
        }
    order = np.asarray(layer.c_rows(), dtype=np.int64)  # type: ignore[attr-defined]
    x_shift = getattr(layer, "x_shift", 0)
    vmax = [vector_max(input_bits, x_shift)] * layer.input_size
    if hasattr(layer, "vector_max"):  # a Conv1D window: taps x padded channels
        vmax = layer.vector_max(input_bits)  # type: ignore[attr-defined]
    elif layer.state_fields():
        h_shift = layer.h_shift  # type: ignore[attr-defined]
        vmax += [vector_max(layer.output_q.bits, h_shift)] * layer.output_size
    return {
        "weight": layer.packed_weight(),  # type: ignore[attr-defined]
        "bias": fc.bias[order] if layer.has_bias() else None,  # type: ignore[attr-defined]
        "rq": [(int(fc.multiplier[r]), int(fc.shift_in[r]), int(fc.shift_out[r])) for r in order],
        "shifts": kind_shifts(layer),
        "worst": worst_case_acc(fc.weight, fc.bias, np.asarray(vmax)),
        "isa": layer_isa_data(layer, input_bits),
    }


def c_float(value: float) -> str:
    text = f"{float(value):.9g}"
    if "." not in text and "e" not in text and "inf" not in text:
        text += ".0"
    return text + "f"


@dataclass
class LayerView:
    """What a layer's template block needs: its data, symbol names and wiring."""

    index: int
    q: QuantLayer
    p: str  # symbol prefix of its static data and state members, e.g. l0_gru
    P: str  # upper-case prefix of its macros, e.g. MODEL_L0_GRU
    input: str  # C expression of its input vector
    input_bits: int  # 8 or 16: the type of its input vector
    state_type: str  # s8 or s16: the variant of its cell kernel
    output: str  # C expression of its output vector
    buffer: str | None  # name of a stack buffer holding its output, if any
    label: str
    extra: str
    weight: np.ndarray  # int8, packed in the order the kernels read it
    bias: np.ndarray | None  # int32 per row in the order the kernels read it; None: all zero
    rq: list[tuple[int, int, int]]  # (multiplier, shift_in, shift_out) per row, same order
    worst: int  # worst-case |accumulator|
    isa: list[IsaData]  # the ISA modules' data for the layer (rnn2c.export.isa)
    # (shift_in, shift_out) per row kind (kind_shifts); empty for a layer without a matrix
    shifts: list[tuple[int, int]] = field(default_factory=list)
    # whole-sequence models (<name>_run layer by layer):
    cells: list[LayerView] = field(default_factory=list)  # a Bidirectional's fw (and bw) cells
    rows: str = ""  # C expression: how many rows the layer runs over ("length" or "1")
    dest: str = ""  # its output buffer row, with {t} for the row index
    seq_out: bool = True  # whether its output has a row per step
    width: int = 0  # its output size
    ctype: str = "int8_t"  # element type of its output buffer
    parts: list[dict[str, Any]] = field(default_factory=list)  # a merge's inputs (merge.c.j2)
    out_rows: str = ""  # C expression: its output rows (a Conv1D or pooling: its own variable)
    len_var: str = ""  # Conv1D, pooling over a whole sequence: the variable of its output rows
    src0: str = ""  # its input's first row (the rows follow each other)
    state_out: bool = True  # its output is its state (recurrent), copied into its buffer


def template_environment() -> jinja2.Environment:
    """The Jinja environment over rnn2c.firmware_templates (model, layers/, packaging/,
    boards/), with the C literal filters."""
    root = importlib.resources.files("rnn2c.firmware_templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_array"] = c_array
    env.filters["c_float"] = c_float
    env.filters["c_string"] = c_string
    env.filters["c_structs"] = c_structs
    return env


def table_bytes() -> int:
    """Bytes of the runtime's two int16 activation tables, read from the header's own sizes."""
    text = runtime_header()
    points = [
        int(re.search(rf"#define {m} (\d+)", text).group(1))  # type: ignore[union-attr]
        for m in ("RNN2C_TANH_POINTS", "RNN2C_EXP_POINTS")
    ]
    return 2 * sum(points)


def runtime_header() -> str:
    """The text of rnn2c_runtime.h, the header the generated C includes."""
    return runtime_files((RUNTIME_HEADER,))[RUNTIME_HEADER]


def runtime_files(names: tuple[str, ...] = RUNTIME_FILES) -> dict[str, str]:
    """{file name: text} of the runtime's files (all of them by default; rnn2c.export.isa's
    runtime_files_for(cpu) names those a target compiles)."""
    root = importlib.resources.files("rnn2c.firmware_templates")
    return {name: (root / name).read_text() for name in names}


def render(qmodel: QuantModel, name: str, class_names: list[str] | None = None) -> dict[str, str]:
    """Return {file name: text} for <name>.h, <name>.c and the runtime's files (RUNTIME_FILES).

    class_names: one label per model output (a classifier); the header then defines
    <NAME>_NUM_CLASSES and <NAME>_CLASS_LABELS.
    """
    problem = check_name(name)
    if problem:
        raise ValueError(problem)
    upper = name.upper()
    if qmodel.whole_sequence:
        whole = _whole_sequence_views(qmodel, upper, name)
        return _render_files(qmodel, name, class_names, whole, None, [])
    views: list[LayerView] = []
    prev = "input"
    prev_bits = 8  # the model input is int8
    n = len(qmodel.layers)
    made: dict[int, tuple[str, int]] = {-1: (prev, prev_bits)}  # a graph: each layer's output
    for k, c_name in enumerate(c_input_names(qmodel.input_names, name)):  # several inputs
        made[model_input(k)] = (c_name, 8)
    for i, layer in enumerate(qmodel.layers):
        if qmodel.inputs:  # a graph of branches: the layer reads its producer(s)
            prev, prev_bits = made[qmodel.inputs[i][0]]
        p = f"l{i}_{layer.kind}"
        last = i == n - 1
        buffer = None
        own_buffer = getattr(layer, "output_buffer", False)  # Conv1D, pooling
        if layer.state_fields() and not own_buffer:
            output = f"state->{p}_h"
        elif last and layer.output_q.bits == 8:
            output = "state->hold" if qmodel.decimates else "output"
        else:
            buffer = f"{p}_out"
            output = buffer
        views.append(layer_view(i, layer, p, upper, prev, prev_bits, output, buffer))
        if layer.kind == "merge":
            views[-1].parts = merge_parts(layer, [made[j] for j in qmodel.inputs[i]])
        prev = output
        prev_bits = layer.output_q.bits
        made[i] = (prev, prev_bits)
    copy_from = views[-1].output if views[-1].output not in ("output", "state->hold") else None
    buffers = [v.q.output_size * (2 if v.ctype == "int16_t" else 1) for v in views if v.buffer]
    return _render_files(qmodel, name, class_names, views, copy_from, buffers)


def merge_parts(layer: Any, sources: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """What merge.c.j2 writes for each input of a merge: its C array, zero point, term
    multiplier and shifts (layers/merge.py), and where a Concatenate puts it."""
    out = []
    offset = 0
    for j, (expr, bits) in enumerate(sources):
        term = 0 if layer.op == "multiply" else j
        group = j if layer.op == "concat" else 0
        out.append(
            {
                "expr": expr,
                "bits": bits,
                "zp": int(layer.zero_points[j]),
                "m": int(layer.multipliers[min(term, len(layer.multipliers) - 1)]),
                "pre": int(layer.pre_shifts[min(term, len(layer.pre_shifts) - 1)]),
                "k": int(layer.shifts[group]),
                "offset": offset,
                "size": int(layer.parts[j]),
            }
        )
        offset += int(layer.parts[j])
    return out


def _extra(layer: QuantLayer) -> str:
    if layer.kind == "gru":
        return f"reset_after={layer.reset_after}"  # type: ignore[attr-defined]
    if layer.kind == "dense":
        return str(layer.activation)  # type: ignore[attr-defined]
    if layer.kind == "merge":
        return str(layer.op)  # type: ignore[attr-defined]
    if layer.kind == "conv1d":
        q: Any = layer
        return (
            f"kernel {q.taps}, dilation {q.dilation}, stride {q.stride}, {q.padding}, "
            f"{q.activation}"
        )
    if layer.kind == "pool1d":
        return f"pool {layer.pool}, stride {layer.stride}"  # type: ignore[attr-defined]
    if layer.kind == "repeat":
        return f"n {layer.n}"  # type: ignore[attr-defined]
    if layer.kind == "bidir":
        if layer.forward is None:  # type: ignore[attr-defined]
            return "go_backwards"
        return f"{LABELS[layer.cell_label]}, merge {layer.merge}"  # type: ignore[attr-defined]
    return ""


def _whole_sequence_views(qmodel: QuantModel, upper: str, name: str) -> list[LayerView]:
    """Views for <name>_run: each layer runs over the rows of its input buffer (the model input
    for layer 0; a token model's table rows through <name>_row) and writes its output rows into
    its own buffer in the state struct. A RepeatVector writes nothing: the layer after it reads
    its one input row at each of its n rows."""
    views: list[LayerView] = []
    first = f"{name}_row(input, tokens, {{t}})" if qmodel.embedding is not None else "input[{t}]"
    prev_row, prev_bits, seq = first, 8, True
    buffers = dict(qmodel.sequence_buffers())
    cur = "length"  # the rows of the current sequence (a Conv1D or pooling changes them)
    for i, layer in enumerate(qmodel.layers):
        p = f"l{i}_{layer.kind}"
        if layer.kind == "repeat":  # prev_row is one row (no {t}): read at every row
            views.append(_repeat_view(i, layer, p, upper, prev_row, prev_bits))
            cur, seq = views[-1].out_rows, True
            continue
        rows = cur if seq else "1"
        seq = seq and bool(qmodel.sequence_out[i])
        width = layer.output_size
        member = f"state->{p}_{buffers[i].name}"
        dest = f"({member} + (size_t)({{t}}) * {width}u)" if seq else f"({member})"

        v = layer_view(i, layer, p, upper, prev_row.format(t="t"), prev_bits, dest.format(t="t"))
        for key, cell in layer.cells() if layer.kind == "bidir" else []:  # type: ignore[attr-defined]
            row = "r" if layer.forward is None else "t"  # type: ignore[attr-defined]
            sub = layer_view(i, cell, f"{p}_{key}", upper, prev_row.format(t=row), prev_bits, "")
            v.cells.append(sub)
        v.rows, v.dest, v.seq_out, v.width = rows, dest, seq, width
        v.ctype = buffers[i].ctype
        v.src0, v.out_rows = prev_row.format(t="0"), rows
        v.state_out = bool(layer.state_fields()) and not getattr(layer, "output_buffer", False)
        if hasattr(layer, "over_time"):  # Conv1D, windowed pooling: rows of its own
            v.len_var = v.out_rows = cur = f"n{i}"
        views.append(v)
        prev_row, prev_bits = dest, layer.output_q.bits
    return views


def _repeat_view(i: int, q: QuantLayer, p: str, upper: str, row: str, bits: int) -> LayerView:
    """A RepeatVector's view: no buffer of its own; its n rows are its input row (the one row
    of the layer before it), which the next layer reads at each of them."""
    v = layer_view(i, q, p, upper, row, bits, row)
    v.rows, v.dest, v.src0, v.width, v.state_out = "1", row, row, q.output_size, False
    v.out_rows = str(q.n)  # type: ignore[attr-defined]
    return v


def layer_view(
    i: int,
    q: QuantLayer,
    p: str,
    upper: str,
    row: str,
    input_bits: int,
    output: str,
    buffer: str | None = None,
) -> LayerView:
    """Layer i's view for the templates: q its quantized layer, p its C prefix, upper the model's
    upper-case name, row and input_bits the row it reads and that row's bits, output where its
    output goes, buffer its whole-sequence buffer (layer_arrays gives no arrays to a layer
    without a weight matrix: Bidirectional, a merge, pooling, LayerNormalization)."""
    return LayerView(
        index=i,
        q=q,
        p=p,
        P=f"{upper}_{p.upper()}",
        input=row,
        input_bits=input_bits,
        state_type=f"s{q.output_q.bits}",
        output=output,
        buffer=buffer,
        label=_label(q),
        extra=_extra(q),
        ctype="int16_t" if q.output_q.bits == 16 else "int8_t",
        **layer_arrays(q, input_bits),
    )


def _label(q: QuantLayer) -> str:
    if q.kind in ("pool1d", "gpool1d"):
        op = "Max" if q.op == "max" else "Average"  # type: ignore[attr-defined]
        return f"{'Global' if q.kind == 'gpool1d' else ''}{op}Pool"
    if q.kind == "bidir" and q.forward is None:  # type: ignore[attr-defined]
        return LABELS[q.cell_label]  # type: ignore[attr-defined]  # a go_backwards cell
    return LABELS[q.kind]


def scratch_layout(layers: list) -> tuple[int, int, int]:  # noqa: ANN001
    """(int32 words, word offset of them, int16 halfwords) of the one scratch union of a step.

    The int32 results (`acc`) of a layer lie after the int16 vector *that layer* reads, not
    after the largest vector of any layer: a Dense head after a wide recurrent layer keeps its
    rows in the part of the union the recurrent vector used. The union's size in halfwords is
    even (whole words) and covers both."""
    parts = [layer.scratch() for layer in layers]
    words = max(p[0] for p in parts)
    offset = max(((p[2] + 1) // 2 for p in parts if p[0]), default=0)
    halfwords = max(max(p[2] for p in parts), 2 * (offset + words))
    return words, offset, halfwords + halfwords % 2


def _render_files(
    qmodel: QuantModel,
    name: str,
    class_names: list[str] | None,
    views: list[LayerView],
    copy_from: str | None,
    buffers: list[int],
) -> dict[str, str]:
    upper = name.upper()
    narrow_output = qmodel.layers[-1].output_q.bits == 16

    fields: list[dict[str, Any]] = []
    for v in views:
        for f in v.q.state_fields():
            fields.append(
                {
                    "ctype": f.ctype,
                    "member": f"{v.p}_{f.name}",
                    "length": f.length,
                    "layer": v.index,
                    "layer_name": v.q.name,
                    "comment": f.comment,
                    "recurrent": True,
                }
            )
    for i, f in qmodel.sequence_buffers():
        fields.append(
            {
                "ctype": f.ctype,
                "member": f"{views[i].p}_{f.name}",
                "length": f.length,
                "layer": i,
                "layer_name": views[i].q.name,
                "comment": f.comment,
                "recurrent": False,
            }
        )
    hold = qmodel.hold_field()
    if hold is not None:
        fields.append(
            {
                "ctype": hold.ctype,
                "member": hold.name,
                "length": hold.length,
                "layer": len(views) - 1,
                "layer_name": views[-1].q.name,
                "comment": hold.comment + " (the model output between outputs)",
                "recurrent": False,
            }
        )
    for f in qmodel.audio_fields():
        fields.append(
            {
                "ctype": f.ctype,
                "member": f.name,
                "length": f.length,
                "scalar": f.scalar,
                "comment": f.comment + " (" + name + "_push_audio)",
                "recurrent": False,
            }
        )
    for f in qmodel.frame_fields():
        fields.append(
            {
                "ctype": f.ctype,
                "member": f.name,
                "length": f.length,
                "scalar": f.scalar,
                "comment": f.comment + " (" + name + "_push_sample)",
                "recurrent": False,
            }
        )
    fields.sort(key=lambda f: -CTYPE_BYTES[f["ctype"]])  # widest first: no padding between arrays
    scratch_words, acc_offset, scratch_halfwords = scratch_layout(qmodel.layers)
    ctx = {
        "name": name,
        "NAME": upper,
        "version": __version__,
        "source": qmodel.source,
        "layers": views,
        "input_size": qmodel.input_size,
        "output_size": qmodel.output_size,
        "input_q": qmodel.input_q,
        "input_json": qmodel.input_q.to_json(),
        "input_inv_scale": [float(v) for v in np.ravel(qmodel.input_q.inv_scale)]
        if qmodel.input_q.per_feature
        else float(qmodel.input_q.inv_scale),
        "output_q": qmodel.output_q,
        "state_fields": fields,
        "state_bytes": qmodel.state_bytes(),
        "scratch_words": scratch_words,
        "scratch_halfwords": scratch_halfwords,
        "acc_offset": acc_offset,
        "stack_bytes": 2 * scratch_halfwords + sum(buffers),
        "activations": qmodel.activations,
        "narrow_output": narrow_output,
        "weight_bytes": qmodel.weight_bytes(),
        "macs": qmodel.macs,
        "table_bytes": table_bytes(),
        "calibration": qmodel.calibration,
        "copy_from": copy_from,
        "class_labels": list(class_names or []),
        "whole": qmodel.whole_sequence,
        "max_length": qmodel.max_length,
        "returns_sequences": qmodel.returns_sequences,
        "tokens": qmodel.embedding,
        #: a graph of branches: per layer what it reads (a layer number, "input", or the name
        #: of one of several inputs), for the header
        "graph_inputs": [[made_by(qmodel, name, j) for j in ins] for ins in qmodel.inputs],
        "inputs": input_views(qmodel, name),
        "offsets": input_offsets(qmodel.input_sizes),
        "decimates": qmodel.decimates and not qmodel.whole_sequence,
        "output_rows": output_rows(qmodel) if qmodel.changes_length else "",
        "fixed_rows": qmodel.fixed_rows,
        "repeat_n": qmodel.repeat_n,
        "min_length": qmodel.min_length() if qmodel.whole_sequence else 1,
        "output_stride": int(np.prod([getattr(q, "stride", 1) for q in qmodel.layers])),
        "samples_per_step": qmodel.samples_per_step,
        "sample_size": qmodel.sample_size,
        "frame_bytes": qmodel.state_bytes() - qmodel.state_bytes(framed=False),
        #: an audio front end (<name>_push_audio): its tables and constants, else None
        "fe": None if qmodel.frontend is None else LogMel.from_json(qmodel.frontend).c_tables(),
        #: the streaming detector's default macros (<name>_detect, beside push_audio)
        "detect": None if qmodel.frontend is None else detect_context(qmodel),
    }
    env = template_environment()
    return {
        f"{name}.h": env.get_template("model.h.j2").render(ctx),
        f"{name}.c": env.get_template("model.c.j2").render(ctx),
        **runtime_files(),
    }


def made_by(qmodel: QuantModel, name: str, producer: int) -> str:
    """What a graph layer reads, for the header: a layer number, "input", or an input's name."""
    if producer >= 0:
        return str(producer)
    if not qmodel.input_sizes:
        return "input"
    return c_input_names(qmodel.input_names, name)[input_number(producer)]


def input_views(qmodel: QuantModel, name: str) -> list[dict[str, Any]]:
    """What the templates write per input of a multi-input model (empty for one input): its
    Keras and C names, size, offset in run's rows, and quantization (one scale and zero point
    with per-tensor input quantization, else one per feature)."""
    out = []
    q = qmodel.input_q
    names = c_input_names(qmodel.input_names, name)
    for keras_name, c, size, lo in zip(
        qmodel.input_names,
        names,
        qmodel.input_sizes,
        input_offsets(qmodel.input_sizes),
        strict=True,
    ):
        scale = np.asarray(q.scale, dtype=np.float64)[lo : lo + size]
        zp = np.asarray(q.zero_point, dtype=np.int64)[lo : lo + size]
        inv = np.asarray(q.inv_scale, dtype=np.float32)[lo : lo + size]
        per_feature = qmodel.input_quant == "per-feature"
        out.append(
            {
                "keras_name": keras_name,
                "c": c,
                "C": f"{name.upper()}_{c.upper()}",
                "size": int(size),
                "offset": int(lo),
                "per_feature": per_feature,
                "scale": [float(v) for v in scale] if per_feature else float(scale[0]),
                "zero_point": [int(v) for v in zp] if per_feature else int(zp[0]),
                "inv_scale": [float(v) for v in inv] if per_feature else float(inv[0]),
            }
        )
    return out


def output_rows(qmodel: QuantModel) -> str:
    """C expression of the rows <name>_run writes for `length` steps of a decimating model: the
    outputs its strided Conv1D and pooling layers give (1 for a model without a time axis)."""
    if not qmodel.returns_sequences:
        return "1"
    n = "(length)"
    for layer in qmodel.layers:
        stride = int(getattr(layer, "stride", 1))
        if layer.kind == "repeat":  # its n rows, whatever the length
            n = str(layer.n)  # type: ignore[attr-defined]
        elif layer.kind == "conv1d" and getattr(layer, "padding", "causal") == "valid":
            span = int(layer.span)  # type: ignore[attr-defined]
            n = f"({n} >= {span} ? ({n} - {span}) / {stride} + 1 : 0)"
        elif layer.kind == "conv1d" and stride > 1:
            n = f"(({n} + {stride - 1}) / {stride})"
        elif layer.kind == "pool1d" and getattr(layer, "padding", "valid") == "same":
            n = f"(({n} + {stride - 1}) / {stride})" if stride > 1 else n
        elif layer.kind == "pool1d":
            pool = int(layer.pool)  # type: ignore[attr-defined]
            n = f"({n} >= {pool} ? ({n} - {pool}) / {stride} + 1 : 0)"
    return n


#: the former name, which export/seq2seq_render.py imports; drop once it imports layer_view
_view = layer_view


def detect_context(qmodel: QuantModel) -> dict[str, Any]:
    """The <NAME>_DETECT_* defaults of a model exported with a front end."""
    fe = LogMel.from_json(qmodel.frontend)
    oq = qmodel.output_q
    hop_s = fe.hop / fe.sample_rate
    det = default_detector(float(oq.scale), int(oq.zero_point), hop_s)
    reset = reset_hops(hop_s)
    softmax = int(oq.zero_point) == -128 and abs(float(oq.scale) - 1 / 256) < 1e-12
    return {
        "hops": det.hops,
        "threshold": det.threshold,
        "refractory": det.refractory,
        "refractory_ms": round(1000 * det.refractory * hop_s),
        "reset_hops": reset,
        "reset_ms": round(1000 * reset * hop_s),
        "note": " (p = 0.75)" if softmax else " (0.75 in the output's real units)",
    }
