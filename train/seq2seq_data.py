"""Datasets of `rnn2c train --task seq2seq`: token sequences in, token sequences out.

Specs:

* ``synthetic:dates`` (the default): date-format normalisation. Inputs are dates written by
  people in many formats ("25 Nov 2026", "November 25, 2026", "25/11/2026", "2026.11.25",
  "Wednesday 25 November 2026", "nov 25 26", ...), the target is the ISO form "2026-11-25".
  Numeric formats are day-first ("25/11/2026", "25.11.2026", "25-11-2026") or year-first with a
  four-digit year ("2026.11.25", "2026/11/25", "20261125"); never month-first, so every input
  has one reading. Two-digit years are 1950..2049 (``yy < 50`` is 20yy). The test dates are
  dates that no training input shows, in any format.
* ``synthetic:reverse``: a string of 1..12 digits, reversed (a cheap second task).
* ``synthetic:NAME:TRAIN`` or ``synthetic:NAME:TRAIN,TEST`` choose the sizes (default 20000 and
  2000; TEST defaults to TRAIN / 10).
* ``PATH.npz`` with integer ``x_train``, ``y_train``, ``x_test``, ``y_test`` (optional
  ``lengths_train``, ``lengths_test``, ``input_vocab``, ``output_vocab``) in the conventions below.

Token conventions (the exporter relies on them):

* input ``x`` ``[N, T_in]`` int32: 0 is padding and never a real character, real ids are
  ``1..V_in-1``; ``lengths`` ``[N]`` the real lengths (the encoder Embedding has
  ``mask_zero=True``, so Keras skips the padding as the C, which runs ``length`` steps, does);
* output ``y`` ``[N, T_out]`` int32 over the target vocabulary: id 0 the start token, id 1 the
  end token, ids 2.. characters; each target sequence is followed by the end token and padded
  with the end token to ``T_out``;
* the decoder input for teacher forcing is the start token, then ``y[:, :-1]``.

Every problem with a spec or a file raises :class:`~rnn2c.train.data.DatasetError` with a
one-line message.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DatasetError, check_npz_lengths, read_split_archive
from .seq2seq import END, PAD, START

__all__ = [
    "DATE_FORMATS",
    "DEFAULT_SPEC",
    "END",
    "PAD",
    "START",
    "Seq2SeqData",
    "date_input_vocab",
    "date_max_length",
    "dates_dataset",
    "format_date",
    "load_seq2seq_dataset",
    "reverse_dataset",
]

DEFAULT_SPEC = "synthetic:dates"
DEFAULT_TRAIN, TEST_FRACTION = 20_000, 10  # test = train // TEST_FRACTION unless given
DATE_FIRST, DATE_LAST = _dt.date(1950, 1, 1), _dt.date(2049, 12, 31)
REVERSE_MAX_DIGITS = 12
PAD_NAME, START_NAME, END_NAME = "<pad>", "<start>", "<end>"

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _fields(d: _dt.date) -> dict[str, str]:
    month, wday = _MONTHS[d.month - 1], _DAYS[d.weekday()]
    return {
        "d": str(d.day),
        "dd": f"{d.day:02d}",
        "m": str(d.month),
        "mm": f"{d.month:02d}",
        "yyyy": f"{d.year:04d}",
        "yy": f"{d.year % 100:02d}",
        "Month": month,
        "Mon": month[:3],
        "mon": month[:3].lower(),
        "MON": month[:3].upper(),
        "month": month.lower(),
        "Day": wday,
        "Dy": wday[:3],
        "th": _ordinal(d.day),
    }


#: the input formats of ``synthetic:dates``, fields in braces (see :func:`format_date`)
DATE_FORMATS = (
    "{d} {Mon} {yyyy}",
    "{dd} {Mon} {yyyy}",
    "{d} {Month} {yyyy}",
    "{Month} {d}, {yyyy}",
    "{Mon} {d}, {yyyy}",
    "{mon} {d} {yy}",
    "{d} {mon} {yy}",
    "{month} {d} {yyyy}",
    "{dd}/{mm}/{yyyy}",
    "{d}/{m}/{yyyy}",
    "{dd}/{mm}/{yy}",
    "{dd}.{mm}.{yyyy}",
    "{d}.{m}.{yy}",
    "{dd}-{mm}-{yyyy}",
    "{yyyy}.{mm}.{dd}",
    "{yyyy}/{mm}/{dd}",
    "{yyyy}-{mm}-{dd}",
    "{yyyy}{mm}{dd}",
    "{Day} {d} {Month} {yyyy}",
    "{Day}, {Month} {d}, {yyyy}",
    "{Dy}, {d} {Mon} {yyyy}",
    "{Dy} {mon} {d} {yyyy}",
    "{th} {Month} {yyyy}",
    "the {th} of {Month} {yyyy}",
    "{Month} {th}, {yyyy}",
    "{d} {MON} {yyyy}",
    "{d}-{Mon}-{yyyy}",
    "{dd}-{MON}-{yy}",
)


def format_date(d: _dt.date, fmt: str) -> str:
    """``d`` written in one of :data:`DATE_FORMATS` (fields in braces: d, dd, m, mm, yy, yyyy,
    Month, month, Mon, mon, MON, Day, Dy, th)."""
    return fmt.format(**_fields(d))


def date_max_length() -> int:
    """The longest input any of :data:`DATE_FORMATS` can write (T_in of ``synthetic:dates``,
    whatever the seed): each field at its widest."""
    widest = {
        key: max(len(_fields(DATE_FIRST + _dt.timedelta(days=k))[key]) for k in range(366))
        for key in _fields(DATE_FIRST)
    }
    return max(len(fmt.format(**{k: "x" * n for k, n in widest.items()})) for fmt in DATE_FORMATS)


def date_input_vocab() -> list[str]:
    """The input vocabulary of ``synthetic:dates``: ``<pad>`` then every character the formats
    can write, sorted (independent of the seed and the sizes)."""
    chars = set("0123456789 ,-./")
    for fmt in DATE_FORMATS:
        chars |= set(re.sub(r"\{[^}]*\}", "", fmt))
    for name in _MONTHS + _DAYS:
        chars |= set(name) | set(name.lower()) | set(name.upper()[:3])
    chars |= set("stndrh")  # ordinal suffixes
    return [PAD_NAME, *sorted(chars)]


@dataclass
class Seq2SeqData:
    """A train/test split of token sequences in the conventions of this module.

    ``x_*`` int32 ``[N, T_in]`` (0-padded), ``lengths_*`` int64 ``[N]``, ``y_*`` int32
    ``[N, T_out]`` (end token after each sequence and as padding); ``input_vocab`` /
    ``output_vocab`` name each id (``<pad>``; ``<start>``, ``<end>``); ``name`` is a short name
    (also the C name EXPORT.txt proposes).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    lengths_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lengths_test: np.ndarray
    input_vocab: list[str]
    output_vocab: list[str]
    name: str

    @property
    def max_length(self) -> int:
        """T_in: the padded input length (the exporter's --max-length)."""
        return int(self.x_train.shape[1])

    @property
    def max_output_length(self) -> int:
        """T_out: target positions, end token included."""
        return int(self.y_train.shape[1])

    def decode_input(self, row: np.ndarray, length: int | None = None) -> str:
        """The text of one input row (up to ``length``)."""
        ids = row[: int(length)] if length is not None else row[row != PAD]
        return "".join(self.input_vocab[int(i)] for i in ids)

    def decode_output(self, row: np.ndarray) -> str:
        """The text of one output row up to its first end token."""
        out = []
        for i in row:
            if int(i) == END:
                break
            out.append(self.output_vocab[int(i)] if 0 <= int(i) < len(self.output_vocab) else "?")
        return "".join(out)


def _encode_inputs(texts: list[str], vocab: list[str], width: int) -> tuple[np.ndarray, np.ndarray]:
    index = {c: i for i, c in enumerate(vocab) if i != PAD}
    x = np.zeros((len(texts), width), np.int32)
    lengths = np.zeros(len(texts), np.int64)
    for n, text in enumerate(texts):
        x[n, : len(text)] = [index[c] for c in text]
        lengths[n] = len(text)
    return x, lengths


def _encode_targets(texts: list[str], vocab: list[str], width: int) -> np.ndarray:
    index = {c: i for i, c in enumerate(vocab) if i > END}
    y = np.full((len(texts), width), END, np.int32)
    for n, text in enumerate(texts):
        y[n, : len(text)] = [index[c] for c in text]
    return y


def dates_dataset(n_train: int = DEFAULT_TRAIN, n_test: int | None = None, seed: int = 0):
    """``synthetic:dates``: ``n_train``/``n_test`` dates between 1950 and 2049, each in a format
    drawn uniformly from :data:`DATE_FORMATS`; the test dates are disjoint from the training
    dates. Deterministic in ``seed``. Returns a :class:`Seq2SeqData`."""
    n_test = max(1, n_train // TEST_FRACTION) if n_test is None else n_test
    rng = np.random.default_rng([seed, 0x5EC2])
    days = (DATE_LAST - DATE_FIRST).days + 1
    order = rng.permutation(days)
    n_test_dates = min(n_test, days // 2)
    test_days = order[:n_test_dates]
    pool = order[n_test_dates:]
    test_pick = test_days[rng.permutation(n_test) % n_test_dates]
    if n_train <= len(pool):  # distinct dates while there are enough
        train_pick = pool[:n_train]
    else:
        train_pick = rng.choice(pool, size=n_train, replace=True)

    def texts(offsets: np.ndarray) -> tuple[list[str], list[str]]:
        fmts = rng.integers(0, len(DATE_FORMATS), size=len(offsets))
        dates = [DATE_FIRST + _dt.timedelta(days=int(o)) for o in offsets]
        src = [format_date(d, DATE_FORMATS[f]) for d, f in zip(dates, fmts, strict=True)]
        return src, [d.isoformat() for d in dates]

    src_tr, tgt_tr = texts(train_pick)
    src_te, tgt_te = texts(test_pick)
    in_vocab = date_input_vocab()
    out_vocab = [START_NAME, END_NAME, *"0123456789-"]
    width = date_max_length()
    x_tr, l_tr = _encode_inputs(src_tr, in_vocab, width)
    x_te, l_te = _encode_inputs(src_te, in_vocab, width)
    t_out = 11  # "yyyy-mm-dd" and the end token
    return _splits(x_tr, l_tr, tgt_tr, x_te, l_te, tgt_te, in_vocab, out_vocab, t_out, "dates")


def _splits(
    x_tr: np.ndarray,
    l_tr: np.ndarray,
    tgt_tr: list[str],
    x_te: np.ndarray,
    l_te: np.ndarray,
    tgt_te: list[str],
    in_vocab: list[str],
    out_vocab: list[str],
    t_out: int,
    name: str,
) -> Seq2SeqData:
    """A synthetic set from its encoded inputs and its target texts."""
    return Seq2SeqData(
        x_tr,
        _encode_targets(tgt_tr, out_vocab, t_out),
        l_tr,
        x_te,
        _encode_targets(tgt_te, out_vocab, t_out),
        l_te,
        in_vocab,
        out_vocab,
        name,
    )


def reverse_dataset(n_train: int = DEFAULT_TRAIN, n_test: int | None = None, seed: int = 0):
    """``synthetic:reverse``: strings of 1..12 random digits, the target the same digits
    reversed. Deterministic in ``seed``. Returns a :class:`Seq2SeqData`."""
    n_test = max(1, n_train // TEST_FRACTION) if n_test is None else n_test
    rng = np.random.default_rng([seed, 0x2E7E])

    def texts(n: int) -> tuple[list[str], list[str]]:
        lengths = rng.integers(1, REVERSE_MAX_DIGITS + 1, size=n)
        src = ["".join(map(str, rng.integers(0, 10, size=k))) for k in lengths]
        return src, [s[::-1] for s in src]

    src_tr, tgt_tr = texts(n_train)
    src_te, tgt_te = texts(n_test)
    in_vocab = [PAD_NAME, *"0123456789"]
    out_vocab = [START_NAME, END_NAME, *"0123456789"]
    x_tr, l_tr = _encode_inputs(src_tr, in_vocab, REVERSE_MAX_DIGITS)
    x_te, l_te = _encode_inputs(src_te, in_vocab, REVERSE_MAX_DIGITS)
    t_out = REVERSE_MAX_DIGITS + 1
    return _splits(x_tr, l_tr, tgt_tr, x_te, l_te, tgt_te, in_vocab, out_vocab, t_out, "reverse")


_SYNTHETIC = {"dates": dates_dataset, "reverse": reverse_dataset}
_NPZ_HINT = (
    "expected integer x_train [N, T_in], y_train [N, T_out], x_test, y_test "
    "(optional lengths_train, lengths_test, input_vocab, output_vocab)"
)


def _synthetic(spec: str, seed: int) -> Seq2SeqData:
    body = spec.split(":", 1)[1]
    name, _, sizes = body.partition(":")
    maker = _SYNTHETIC.get(name.strip().lower())
    if maker is None:
        raise DatasetError(
            f"{spec}: unknown synthetic dataset {name!r}; expected synthetic:dates or "
            "synthetic:reverse (optionally :TRAIN or :TRAIN,TEST sizes)"
        )
    n_train, n_test = DEFAULT_TRAIN, None
    if sizes:
        m = re.fullmatch(r"\s*(\d+)\s*(?:,\s*(\d+)\s*)?", sizes)
        if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
            raise DatasetError(
                f"{spec}: bad sizes {sizes!r}; expected synthetic:{name}:TRAIN or "
                f"synthetic:{name}:TRAIN,TEST with positive counts, e.g. synthetic:{name}:2000,200"
            )
        n_train = int(m.group(1))
        n_test = int(m.group(2)) if m.group(2) is not None else None
    if n_train > 1_000_000 or (n_test or 0) > 1_000_000:
        raise DatasetError(f"{spec}: at most 1000000 sequences per split")
    return maker(n_train, n_test, seed)


def _vocab_names(arrays: dict[str, np.ndarray], key: str, size: int, source: str) -> list[str]:
    if key not in arrays:
        return []
    v = arrays[key]
    if v.ndim != 1 or v.dtype.kind not in "US":
        raise DatasetError(
            f"{source}: {key} has shape {v.shape} and dtype {v.dtype}; expected a 1-D array of "
            "strings, one per id"
        )
    if len(v) < size:
        raise DatasetError(
            f"{source}: {key} names {len(v)} ids but the data uses ids up to {size - 1}; "
            f"expected at least {size} names"
        )
    return [str(s) for s in v]


def _check_split(
    arrays: dict[str, np.ndarray], split: str, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    for key, a, what in ((f"x_{split}", x, "[N, T_in]"), (f"y_{split}", y, "[N, T_out]")):
        if a.ndim != 2 or 0 in a.shape:
            raise DatasetError(
                f"{source}: {key} has shape {a.shape}; expected a non-empty {what} array of "
                "token ids"
            )
        if a.dtype.kind not in "iu":
            raise DatasetError(
                f"{source}: {key} has dtype {a.dtype}; expected integer token ids (int32)"
            )
        if int(a.min()) < 0 or int(a.max()) >= 2**31 - 1:
            raise DatasetError(
                f"{source}: {key} holds ids {int(a.min())}..{int(a.max())}; expected ids from 0"
            )
    if y.shape[0] != x.shape[0]:
        raise DatasetError(
            f"{source}: x_{split} has {x.shape[0]} sequences but y_{split} has {y.shape[0]}; "
            "expected one target sequence per input sequence"
        )
    x = x.astype(np.int32)
    key = f"lengths_{split}"
    if key in arrays:
        ln = check_npz_lengths(arrays[key], key, x, source)
        x[np.arange(x.shape[1])[None, :] >= ln[:, None]] = PAD  # past the length: padding
    else:  # the length ends at the last nonzero id
        nz = x != PAD
        ln = np.where(nz.any(axis=1), x.shape[1] - np.argmax(nz[:, ::-1], axis=1), 0)
        ln = ln.astype(np.int64)
        if np.any(ln < 1):
            row = int(np.flatnonzero(ln < 1)[0])
            raise DatasetError(
                f"{source}: x_{split} row {row} is all padding (id 0); every input sequence "
                "needs at least one real id (1..)"
            )
    inside = (x == PAD) & (np.arange(x.shape[1])[None, :] < ln[:, None])
    if inside.any():
        row, col = (int(v) for v in np.argwhere(inside)[0])
        raise DatasetError(
            f"{source}: x_{split} row {row} has id 0 at step {col}, inside its real length "
            f"{int(ln[row])}; id 0 is padding (the encoder Embedding masks it): real ids are 1.."
        )
    y = y.astype(np.int32)
    if np.any(y == START):
        row = int(np.flatnonzero((y == START).any(axis=1))[0])
        raise DatasetError(
            f"{source}: y_{split} row {row} holds id 0, the start token; targets hold "
            "characters (ids 2..) followed by the end token 1 and padded with it"
        )
    ended = np.maximum.accumulate(y == END, axis=1)
    if not ended[:, -1].all():
        row = int(np.flatnonzero(~ended[:, -1])[0])
        raise DatasetError(
            f"{source}: y_{split} row {row} has no end token (id 1); each target needs the end "
            "token after its last character: make T_out one longer than the longest target"
        )
    if np.any(ended & (y != END)):
        row = int(np.flatnonzero((ended & (y != END)).any(axis=1))[0])
        raise DatasetError(
            f"{source}: y_{split} row {row} has a character after its end token; pad targets "
            "with the end token (id 1)"
        )
    return x, y, ln


def _load_npz(path: Path) -> Seq2SeqData:
    source = str(path)
    if not path.is_file():
        raise DatasetError(f"{source}: file not found; {_NPZ_HINT}")
    arrays = read_split_archive(path, _NPZ_HINT)
    x_tr, y_tr, l_tr = _check_split(arrays, "train", source)
    x_te, y_te, l_te = _check_split(arrays, "test", source)
    t_in = max(x_tr.shape[1], x_te.shape[1])
    t_out = max(y_tr.shape[1], y_te.shape[1])

    def widen(a: np.ndarray, t: int, fill: int) -> np.ndarray:
        out = np.full((a.shape[0], t), fill, np.int32)
        out[:, : a.shape[1]] = a
        return out

    v_in = int(max(x_tr.max(), x_te.max())) + 1
    v_out = int(max(y_tr.max(), y_te.max())) + 1
    if v_out <= END + 1:
        raise DatasetError(
            f"{source}: the targets hold only end tokens; expected characters (ids 2..) "
            "before the end token"
        )
    in_vocab = _vocab_names(arrays, "input_vocab", v_in, source) or [
        PAD_NAME,
        *(str(i) for i in range(1, v_in)),
    ]
    out_vocab = _vocab_names(arrays, "output_vocab", v_out, source) or [
        START_NAME,
        END_NAME,
        *(str(i) for i in range(2, v_out)),
    ]
    return Seq2SeqData(
        widen(x_tr, t_in, PAD),
        widen(y_tr, t_out, END),
        l_tr,
        widen(x_te, t_in, PAD),
        widen(y_te, t_out, END),
        l_te,
        in_vocab,
        out_vocab,
        _c_name(path.stem),
    )


def _c_name(stem: str) -> str:
    """A C identifier from a file name (the --name EXPORT.txt proposes)."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", stem).strip("_").lower() or "seq2seq"
    return f"s2s_{name}" if name[0].isdigit() else name


def load_seq2seq_dataset(spec: str | None, seed: int = 0) -> Seq2SeqData:
    """Load ``spec`` (None: ``synthetic:dates``): ``synthetic:dates``, ``synthetic:reverse``
    (optionally ``:TRAIN`` or ``:TRAIN,TEST``), or an ``.npz`` of token ids.

    Raises:
        DatasetError: one line, when the spec or the file is unusable.
    """
    spec = DEFAULT_SPEC if spec is None else str(spec).strip()
    if not spec:
        raise DatasetError(
            "empty dataset spec; expected synthetic:dates, synthetic:reverse or a .npz file"
        )
    if spec.lower().startswith("synthetic:"):
        return _synthetic(spec, seed)
    path = Path(spec).expanduser()
    if path.suffix.lower() != ".npz":
        raise DatasetError(
            f"{spec}: --task seq2seq takes synthetic:dates, synthetic:reverse or a .npz of token "
            "ids (x_train, y_train, x_test, y_test)"
        )
    return _load_npz(path)
