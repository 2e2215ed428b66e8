"""Keyword spotting on a stream: the generated <name>_detect equals its NumPy twin
(rnn2c.export.detect.detect) bit for bit over random outputs and parameters; a stream of two
tones through push_audio and detect is scored as all hits and no false accepts by a model
that knows them, silence and noise give no report; bad parameters are one-line errors."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rnn2c.export import export_model
from rnn2c.export.audio import LogMel
from rnn2c.export.detect import (
    NONE,
    DetectError,
    Detector,
    default_detector,
    detect,
    make_stream,
    score,
    stream_outputs,
)
from rnn2c.export.reference import run_int
from rnn2c.export.serialize import load

STRICT = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wshadow", "-Wcast-qual")
STRICT += ("-Wstrict-prototypes", "-Wundef", "-Wconversion", "-Wsign-conversion")
FE = LogMel()
LOW, HIGH = 400.0, 2000.0  # Hz: the two "words"; bands 3 and 13-14 of the default front end

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(round(seconds * FE.sample_rate)) / FE.sample_rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def tone_model():
    """GRU(2) + Dense(3, softmax) with set weights: unit 0 fires on the low tone's band, unit 1
    on the high tone's; class 0 = low, 1 = high, 2 = neither (silence: 1/3 each)."""
    import keras  # noqa: PLC0415

    model = keras.Sequential(
        [
            keras.Input((None, FE.num_features)),
            keras.layers.Rescaling(1.0 / 128.0),
            keras.layers.GRU(2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    gru, dense = model.layers[1], model.layers[2]
    kernel = np.zeros((FE.num_features, 6), np.float32)  # [z | r | h] x 2 units
    kernel[3, 4] = 6.0
    kernel[13, 5] = kernel[14, 5] = 3.0
    bias = np.zeros((2, 6), np.float32)
    bias[0, :2] = -8.0  # update gate ~0: h is the candidate, no memory
    bias[0, 4:] = -1.5
    gru.set_weights([kernel, np.zeros((2, 6), np.float32), bias])
    w = np.array([[4.0, -4.0, 0.0], [-4.0, 4.0, 0.0]], np.float32)
    dense.set_weights([w, np.zeros(3, np.float32)])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("detect")
    pcm = [tone(LOW, 0.4), tone(HIGH, 0.4), np.zeros(3200, np.int16)]
    feats = [FE.features_int(p) for p in pcm]
    np.savez(
        tmp / "calib.npz",
        x=np.stack(feats).astype(np.float32),
        lengths=np.array([len(f) for f in feats]),
    )
    (tmp / "frontend.json").write_text(FE.dumps())
    export_model(
        tone_model(),
        str(tmp / "calib.npz"),
        tmp / "c",
        name="kws",
        frontend=str(tmp / "frontend.json"),
    )
    return tmp / "c"


@pytest.fixture(scope="module", params=[0, 8], ids=["frames", "running-mean"])
def remembering(tmp_path_factory, request) -> tuple[Path, LogMel]:
    """A GRU(8) with random weights (it remembers: a restart changes its outputs), exported
    as kws like ``exported``, over the default front end with and without a running mean
    (``mean_hops``: each copy of a stream restarts its own)."""
    fe = LogMel(mean_hops=request.param)
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, fe.num_features)),
            keras.layers.Rescaling(1.0 / 64.0),
            keras.layers.GRU(8),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    tmp = tmp_path_factory.mktemp("remember")
    feats = fe.features_int(np.concatenate([tone(LOW, 0.5), tone(HIGH, 0.5)]))
    np.savez(tmp / "calib.npz", x=feats[None].astype(np.float32), lengths=np.array([len(feats)]))
    (tmp / "frontend.json").write_text(fe.dumps())
    fe_json = str(tmp / "frontend.json")
    export_model(model, str(tmp / "calib.npz"), tmp / "c", name="kws", frontend=fe_json)
    return tmp / "c", fe


def compile_lib(export: Path, flags: list[str], tag: str) -> ctypes.CDLL:
    lib = export / f"kws_{tag}.so"
    cmd = ["gcc", *STRICT, *flags, "-shared", "-fPIC", str(export / "kws.c"), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    c = ctypes.CDLL(str(lib))
    ptr = ctypes.c_void_p
    c.kws_reset.argtypes = c.kws_detect_reset.argtypes = [ptr]
    c.kws_detect.argtypes = [ptr, ptr]
    c.kws_push_audio.argtypes = [ptr, ptr, ctypes.c_int, ptr]
    c.kws_push_audio.restype = c.kws_detect.restype = ctypes.c_int
    c.kws_stream_reset.argtypes = [ptr]
    c.kws_stream_push.argtypes = [ptr, ptr, ctypes.c_int, ptr]
    c.kws_stream_push.restype = ctypes.c_int
    return c


def c_detect(c: ctypes.CDLL, outputs: np.ndarray) -> np.ndarray:
    det = ctypes.create_string_buffer(1 << 14)
    c.kws_detect_reset(det)
    rows = np.ascontiguousarray(outputs)
    return np.array([c.kws_detect(det, rows[t].ctypes.data) for t in range(len(rows))])


def random_outputs(rng: np.random.Generator, hops: int, classes: int) -> np.ndarray:
    """Noise-like outputs with bursts where one class runs high (and ties now and then)."""
    out = rng.integers(-128, -40, (hops, classes))
    for start in rng.integers(0, hops - 20, hops // 25):
        out[start : start + rng.integers(3, 20), rng.integers(classes)] = rng.integers(0, 128)
    out[rng.integers(0, hops, hops // 50)] = 100  # every class equal: the first wins
    return out.astype(np.int8)


def test_c_detect_equals_twin(exported: Path) -> None:
    rng = np.random.default_rng(7)
    qmodel = load(exported / "kws_qmodel.npz")
    oq = qmodel.output_q
    default = default_detector(float(oq.scale), int(oq.zero_point), FE.hop / FE.sample_rate)
    assert (default.hops, default.threshold, default.refractory) == (8, 64, 62)
    header = (exported / "kws.h").read_text()
    assert "#define KWS_DETECT_THRESHOLD 64" in header
    configs = [(default, [])]
    for _ in range(3):
        d = Detector(
            int(rng.integers(1, 17)), int(rng.integers(-30, 110)), int(rng.integers(0, 30))
        )
        configs.append((d, d.macros("kws")))
    reports = 0
    for i, (det, flags) in enumerate(configs):
        c = compile_lib(exported, flags, f"p{i}")
        outputs = random_outputs(rng, 1500, 3)
        want = detect(outputs, det)
        np.testing.assert_array_equal(c_detect(c, outputs), want)
        reports += int((want != NONE).sum())
    assert reports > 10  # the bursts were reported, not only silence compared


def push_stream(c: ctypes.CDLL, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    state = ctypes.create_string_buffer(1 << 14)
    det = ctypes.create_string_buffer(1 << 14)
    c.kws_reset(state)
    c.kws_detect_reset(det)
    outputs, labels = [], []
    for t in range(len(pcm) // FE.hop):
        out = np.zeros(3, np.int8)
        chunk = np.ascontiguousarray(pcm[t * FE.hop : (t + 1) * FE.hop])
        assert c.kws_push_audio(state, chunk.ctypes.data, FE.hop, out.ctypes.data) == 1
        outputs.append(out)
        labels.append(c.kws_detect(det, out.ctypes.data))
    return np.array(outputs), np.array(labels)


def test_tone_stream_end_to_end(exported: Path) -> None:
    c = compile_lib(exported, [], "stream")
    words = [(tone(LOW, 0.3), 0), (tone(HIGH, 0.3), 1)] * 4
    stream = make_stream(words, FE.sample_rate, seed=3, snr_db=20.0, gap_seconds=(1.2, 1.6))
    outputs, labels = push_stream(c, stream.pcm)
    det = Detector(8, 64, 62)
    np.testing.assert_array_equal(labels, detect(outputs, det))
    s = score(labels, stream, FE.hop)
    assert (s["words"], s["hits"], s["misses"], s["false_accepts"]) == (8, 8, 0, 0)
    assert 0 < s["hours"] < 0.01 and s["false_accepts_per_hour"] == 0.0
    swapped = np.where(labels == NONE, NONE, 1 - labels)  # every report the other tone's
    s = score(swapped, stream, FE.hop)
    assert (s["hits"], s["misses"], s["false_accepts"], s["wrong_label"]) == (0, 8, 8, 8)
    late = np.roll(labels, 56)  # 0.9 s late: in the gap after the window
    s = score(late, stream, FE.hop, tolerance_seconds=0.5)
    assert s["hits"] == 0 and s["false_accepts"] == 8 and s["wrong_label"] == 0
    quiet = make_stream([(np.zeros(4000, np.int16), 0)], FE.sample_rate, snr_db=0.0)
    assert (push_stream(c, quiet.pcm)[1] == NONE).all()  # noise alone: no word reported


def test_detector_errors(exported: Path) -> None:
    with pytest.raises(DetectError, match="1 to 255 hops"):
        Detector(hops=0)
    with pytest.raises(DetectError, match="int8 output value"):
        Detector(threshold=200)
    with pytest.raises(DetectError, match="no words"):
        make_stream([], 8000)
    with pytest.raises(DetectError, match="shortest <= longest"):
        make_stream([(tone(LOW, 0.1), 0)], 8000, gap_seconds=(2.0, 1.0))
    with pytest.raises(DetectError, match="must be int8"):
        detect(np.zeros((4, 3), np.float32), Detector())
    with pytest.raises(subprocess.CalledProcessError) as err:
        compile_lib(exported, ["-DKWS_DETECT_HOPS=0"], "bad")
    assert "KWS_DETECT_HOPS: the moving average takes 1 to 255 hops" in err.value.stderr
    with pytest.raises(DetectError, match="an even number"):
        stream_outputs(lambda x: x, np.zeros((4, 3), np.int8), 3)


@pytest.mark.parametrize("reset, chunk", [(None, 128), (6, 77), (2, 300)])
def test_stream_push_equals_twin(
    remembering: tuple[Path, LogMel], reset: int | None, chunk: int
) -> None:
    """<name>_stream_push (two copies restarted in turn) equals stream_outputs over run_int,
    fed in chunks of any size; the default restart period is in the header. With a running
    mean, each copy restarts its own: the twin restarts it with the copy's segment."""
    exported, fe = remembering
    flags = [] if reset is None else [f"-DKWS_STREAM_RESET_HOPS={reset}"]
    c = compile_lib(exported, flags, f"s{reset}")
    reset = reset or 124
    assert "#define KWS_STREAM_RESET_HOPS 124" in (exported / "kws.h").read_text()
    words = [(tone(LOW, 0.3), 0), (tone(HIGH, 0.3), 1)] * 3
    stream = make_stream(words, FE.sample_rate, seed=1, snr_db=10.0, gap_seconds=(0.5, 1.0))
    qmodel = load(exported / "kws_qmodel.npz")
    state = ctypes.create_string_buffer(1 << 15)
    c.kws_stream_reset(state)
    got, out, hops = [], np.zeros(3, np.int8), 0
    for at in range(0, len(stream.pcm), chunk):
        part = np.ascontiguousarray(stream.pcm[at : at + chunk])
        hops += c.kws_stream_push(state, part.ctypes.data, len(part), out.ctypes.data)
        if hops:
            got.append((hops - 1, out.copy()))  # the latest hop's output
    feats = fe.frame_features_int(stream.pcm)
    restart = fe.subtract_mean if fe.mean_hops else None
    want = stream_outputs(lambda x: run_int(qmodel, x), feats, reset, restart)
    assert got and got[-1][0] == len(feats) - 1
    for t, row in got:
        np.testing.assert_array_equal(row, want[t])
    if reset <= 6:  # short periods: another schedule gives other outputs (the model remembers)
        other = stream_outputs(lambda x: run_int(qmodel, x), feats, reset + 2, restart)
        assert not np.array_equal(other, want)
    if fe.mean_hops:  # one running mean shared by both copies would give other outputs
        shared = fe.features_int(stream.pcm)
        assert not np.array_equal(stream_outputs(lambda x: run_int(qmodel, x), shared, reset), want)
