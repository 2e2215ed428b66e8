"""nn.RNN as torch's dynamo exporter writes it: unrolled over the example's T steps, one
MatMul/Add/Add/Tanh (or Relu) per step. Rewritten here into the ONNX RNN op it computes, so that
the reader reads it like the legacy exporter's graph (export/onnx_reader.py).

One direction over T steps, as dynamo writes it (layout [time, batch, features]):

    P  = X @ Wih (+ bih)                          the input part of every step, [T, B, H]
    P' = P, or P reversed over time (Slice step -1: the reverse direction)
    h_t = act(h_{t-1} @ Whh (+ bhh) + P'[t])      t = 0 .. T-1, h_{-1} = Unsqueeze(h0)
    Y  = Concat(h_0 .. h_{T-1}) on axis 0         (the reverse direction: h_{T-1} .. h_0)

The match is structural and strict: every step reads the same Whh (and bhh), slices step t of
the same P', the steps chain, the Concat (absent when only the final state is read) holds them
in order, and no intermediate tensor is read elsewhere (the last step's h may be: it is the
final state, Y_h). It becomes ``RNN(X, W = Wih^T, R = Whh^T, B = [bih; bhh], initial_h =
Unsqueeze(h0))`` with Y squeezed to the Concat's output and Y_h to the last step's. A forward and
a reverse direction over the same X, read through their final states or with their Ys side by
side on the features (a bidirectional nn.RNN), become one bidirectional RNN op. The nodes are
then put back in topological order. Anything else stays as it is (and the reader refuses the
unrolled recurrence, naming dynamo=False). The steps stay fixed in the graph's input shape: the
IR runs any length, onnxruntime only the example's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CELLS = {"Tanh": "Tanh", "Relu": "Relu"}


@dataclass
class Chain:
    """One unrolled direction, matched."""

    x: str  # the input X [T, B, I]
    wih: np.ndarray  # [I, H]
    bih: np.ndarray  # [H]
    whh: np.ndarray  # [H, H]
    bhh: np.ndarray  # [H]
    h0: str  # Unsqueeze(h0) [1, B, H]
    act: str  # Tanh / Relu
    reverse: bool
    y: str | None  # the Concat of the steps' outputs (None: only the final state is read)
    y_h: str  # the last processed step's output
    nodes: list[Any]  # every node of the chain (replaced)


class _Graph:
    def __init__(self, nodes: list[Any], consts: dict[str, np.ndarray]) -> None:
        self.nodes, self.consts = nodes, consts
        self.prod = {o: n for n in nodes for o in n.output}
        self.readers: dict[str, list[Any]] = {}
        for n in nodes:
            for name in n.input:
                self.readers.setdefault(name, []).append(n)

    def const(self, name: str) -> np.ndarray | None:
        if name in self.consts:
            return np.asarray(self.consts[name])
        n = self.prod.get(name)
        if n is not None and n.op_type == "Constant":
            from onnx import helper, numpy_helper  # noqa: PLC0415

            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(helper.get_attribute_value(a))
        return None

    def ints(self, name: str) -> list[int] | None:
        v = self.const(name)
        return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]

    def node(self, name: str, op: str) -> Any:
        n = self.prod.get(name)
        return n if n is not None and n.op_type == op else None

    def linear(self, name: str) -> tuple[Any, np.ndarray, np.ndarray | None, list[Any]] | None:
        """name = MatMul(a, W) (+ b): (a, W, b or None, the nodes)."""
        add = self.node(name, "Add")
        if add is None:
            mm = self.node(name, "MatMul")
            w = self.const(mm.input[1]) if mm is not None else None
            return None if w is None or w.ndim != 2 else (mm.input[0], w, None, [mm])
        for m, b in (add.input, reversed(add.input)):
            mm = self.node(m, "MatMul")
            w = self.const(mm.input[1]) if mm is not None else None
            bias = self.const(b)
            if w is not None and w.ndim == 2 and bias is not None and bias.size == w.shape[1]:
                return mm.input[0], w, bias.reshape(-1), [mm, add]
        return None

    def step_slice(self, name: str) -> tuple[str, int, list[Any]] | None:
        """name = Squeeze(Slice(P, [t], [t + 1], [0]), [0]): (P, t, the nodes)."""
        sq = self.node(name, "Squeeze")
        if sq is None or len(sq.input) < 2 or self.ints(sq.input[1]) != [0]:
            return None
        sl = self.node(sq.input[0], "Slice")
        if sl is None or len(sl.input) < 4 or self.ints(sl.input[3]) != [0]:
            return None
        if len(sl.input) > 4 and sl.input[4] and self.ints(sl.input[4]) != [1]:
            return None
        s, e = self.ints(sl.input[1]), self.ints(sl.input[2])
        if s is None or e is None or len(s) != 1 or e != [s[0] + 1]:
            return None
        return sl.input[0], s[0], [sl, sq]

    def step(self, act: Any) -> dict[str, Any] | None:
        """act(h_prev @ Whh (+ bhh) + P'[t]) -> its parts."""
        add = self.node(act.input[0], "Add")
        if add is None:
            return None
        for r, g in (add.input, reversed(add.input)):
            rec, sl = self.linear(r), self.step_slice(g)
            if rec is not None and sl is not None:
                h, whh, bhh, rec_nodes = rec
                p, t, sl_nodes = sl
                return {
                    "h": h,
                    "whh": whh,
                    "bhh": bhh,
                    "p": p,
                    "t": t,
                    "nodes": [*rec_nodes, *sl_nodes, add, act],
                }
        return None

    def flip(self, name: str) -> str | None:
        """name = Slice(P, [-1], [<= -2^62], [0], [-1]) (P reversed over time): P."""
        sl = self.node(name, "Slice")
        if sl is None or len(sl.input) < 5:
            return None
        s, e, a, st = (self.ints(sl.input[k]) for k in range(1, 5))
        if s == [-1] and a == [0] and st == [-1] and e is not None and e[0] <= -(1 << 62):
            return sl.input[0]
        return None

    def chain(self, first: Any, steps: dict[int, dict[str, Any] | None]) -> Chain | None:
        """The unrolled direction whose step 0 is the activation node `first`, or None
        (steps: every activation node's parse, :meth:`step`)."""
        base = steps.get(id(first))
        if base is None or base["t"] != 0:
            return None
        by_h: dict[str, list[Any]] = {}
        for n in self.nodes:
            if n.op_type == first.op_type and steps.get(id(n)) is not None:
                by_h.setdefault(steps[id(n)]["h"], []).append(n)
        order = [first]
        while order[-1].output[0] in by_h:
            nxt = by_h[order[-1].output[0]]
            if len(nxt) != 1:
                return None
            order.append(nxt[0])
        parts = [steps[id(a)] for a in order]
        if any(p["t"] != k or p["p"] != base["p"] for k, p in enumerate(parts)):
            return None
        if any(not _same(p["whh"], base["whh"]) or not _same(p["bhh"], base["bhh"]) for p in parts):
            return None
        source = self.flip(base["p"])
        reverse = source is not None
        proj = self.linear(source if reverse else base["p"])
        if proj is None:
            return None
        x, wih, bih, proj_nodes = proj
        units = base["whh"].shape[0]
        if base["whh"].shape != (units, units) or wih.shape[1] != units:
            return None
        gathered = [a.output[0] for a in (order[::-1] if reverse else order)]
        concat = next(
            (
                n
                for n in self.readers.get(order[-1].output[0], [])
                if n.op_type == "Concat"
                and list(n.input) == gathered
                and self.ints_attr(n, "axis") == 0
            ),
            None,
        )
        nodes = [*proj_nodes, *[n for p in parts for n in p["nodes"]]]
        if reverse:
            nodes.insert(len(proj_nodes), self.prod[base["p"]])
        y = None if concat is None else concat.output[0]
        nodes += [] if concat is None else [concat]
        if not self.private(nodes, keep={order[-1].output[0], y or ""}):
            return None
        zeros = np.zeros(units)
        return Chain(
            x=x,
            wih=wih,
            bih=zeros if bih is None else bih,
            whh=base["whh"],
            bhh=zeros if base["bhh"] is None else base["bhh"],
            h0=base["h"],
            act=CELLS[order[0].op_type],
            reverse=reverse,
            y=y,
            y_h=order[-1].output[0],
            nodes=nodes,
        )

    def ints_attr(self, node: Any, name: str) -> int | None:
        from onnx import helper  # noqa: PLC0415

        for a in node.attribute:
            if a.name == name:
                return int(helper.get_attribute_value(a))
        return None

    def private(self, nodes: list[Any], keep: set[str]) -> bool:
        """Whether the chain's intermediate tensors are read only inside it (keep: the outputs
        that may be read elsewhere)."""
        inside = {id(n) for n in nodes}
        for n in nodes:
            for o in n.output:
                if o not in keep and any(id(r) not in inside for r in self.readers.get(o, [])):
                    return False
        return True


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def fold_unrolled(
    nodes: list[Any], consts: dict[str, np.ndarray], outputs: set[str]
) -> tuple[list[Any], dict[str, np.ndarray], int]:
    """Rewrite every unrolled nn.RNN direction (module doc) into an RNN op: (the new node list, the
    new constants, how many directions were rewritten)."""
    from onnx import helper  # noqa: PLC0415

    g = _Graph(nodes, consts)
    steps = {id(n): g.step(n) for n in nodes if n.op_type in CELLS}
    chains = []
    for n in nodes:
        c = g.chain(n, steps) if n.op_type in CELLS else None
        if c is not None and not outputs & ({o for m in c.nodes for o in m.output} - {c.y_h, c.y}):
            chains.append(c)
    new: dict[str, np.ndarray] = {}
    replace: dict[int, list[Any]] = {}
    drop: set[int] = set()
    done: set[int] = set()
    count = 0
    pairs = _bidirectional(chains, g)
    for c in chains:
        if id(c) in done:
            continue
        group, cat = pairs.get(id(c), ([c], None))
        done.update(id(m) for m in group)
        members = [n for m in group for n in m.nodes] + ([] if cat is None else [cat])
        at = min(g.nodes.index(n) for n in members)  # then sorted (_topological)
        tag = f"{c.y or c.y_h}__rnn"
        new[f"{tag}_W"] = np.stack([m.wih.T for m in group]).astype(np.float32)
        new[f"{tag}_R"] = np.stack([m.whh.T for m in group]).astype(np.float32)
        biases = [np.concatenate([m.bih, m.bhh]) for m in group]
        new[f"{tag}_B"] = np.stack(biases).astype(np.float32)
        replace.setdefault(at, []).extend(_replacement(group, cat, tag, new, helper))
        drop.update(id(n) for n in members)
        count += len(group)
    result = []
    for k, n in enumerate(nodes):
        result.extend(replace.get(k, []))
        if id(n) not in drop:
            result.append(n)
    return (_topological(result) if count else result), new, count


def _topological(nodes: list[Any]) -> list[Any]:
    """The nodes in an order where each comes after the nodes computing its inputs, as close to
    the given order as that allows (a replacement's inputs may be computed after its place)."""
    import heapq  # noqa: PLC0415

    made = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    waiting = [{made[i] for i in n.input if i in made} for n in nodes]
    users: dict[int, list[int]] = {}
    for k, deps in enumerate(waiting):
        for d in deps:
            users.setdefault(d, []).append(k)
    ready = [k for k, deps in enumerate(waiting) if not deps]
    heapq.heapify(ready)
    out: list[Any] = []
    while ready:
        k = heapq.heappop(ready)
        out.append(nodes[k])
        for u in users.get(k, []):
            waiting[u].discard(k)
            if not waiting[u]:
                heapq.heappush(ready, u)
    return out if len(out) == len(nodes) else nodes


def _bidirectional(chains: list[Chain], g: _Graph) -> dict[int, tuple[list[Chain], Any]]:
    """Forward and reverse directions over the same X, either both read only through their
    final states or with their Ys side by side on the features (one Concat): one bidirectional
    op (its directions are independent: the same as two ops). chain -> (the pair, the Concat)."""
    out: dict[int, tuple[list[Chain], Any]] = {}
    for fw in chains:
        for bw in chains:
            if fw.reverse or not bw.reverse or fw.x != bw.x or fw.act != bw.act:
                continue
            if fw.whh.shape != bw.whh.shape or id(fw) in out or id(bw) in out:
                continue
            cat = None
            if fw.y is not None or bw.y is not None:
                readers = [r for c in (fw, bw) for r in g.readers.get(c.y or "", [])]
                cat = readers[0] if readers else None
                if (
                    fw.y is None
                    or bw.y is None
                    or readers != [cat, cat]
                    or cat.op_type != "Concat"
                    or list(cat.input) != [fw.y, bw.y]
                    or g.ints_attr(cat, "axis") not in (2, -1)
                ):
                    continue
            out[id(fw)] = out[id(bw)] = ([fw, bw], cat)
    return out


def _replacement(
    group: list[Chain], cat: Any, tag: str, new: dict[str, np.ndarray], helper: Any
) -> list[Any]:
    """The nodes that replace one direction (RNN, Squeeze) or a bidirectional pair (RNN,
    Transpose and Reshape for the Concat of the Ys, a Slice per direction's final state)."""
    c = group[0]
    units = c.whh.shape[0]
    if len(group) == 1:
        new[f"{tag}_axes"] = np.array([1], dtype=np.int64)
        rnn = helper.make_node(
            "RNN",
            [c.x, f"{tag}_W", f"{tag}_R", f"{tag}_B", "", c.h0],
            [f"{tag}_Y" if c.y else "", c.y_h],
            name=tag,
            hidden_size=units,
            activations=[c.act],
            direction="reverse" if c.reverse else "forward",
        )
        if c.y is None:
            return [rnn]
        return [rnn, helper.make_node("Squeeze", [f"{tag}_Y", f"{tag}_axes"], [c.y])]
    fw, bw = group
    for k in range(3):
        new[f"{tag}_s{k}"] = np.array([k], dtype=np.int64)
    out = [
        helper.make_node("Concat", [fw.h0, bw.h0], [f"{tag}_h0"], axis=0),
        helper.make_node(
            "RNN",
            [c.x, f"{tag}_W", f"{tag}_R", f"{tag}_B", "", f"{tag}_h0"],
            [f"{tag}_Y" if cat is not None else "", f"{tag}_Yh"],
            name=tag,
            hidden_size=units,
            activations=[c.act, c.act],
            direction="bidirectional",
        ),
        helper.make_node("Slice", [f"{tag}_Yh", f"{tag}_s0", f"{tag}_s1", f"{tag}_s0"], [fw.y_h]),
        helper.make_node("Slice", [f"{tag}_Yh", f"{tag}_s1", f"{tag}_s2", f"{tag}_s0"], [bw.y_h]),
    ]
    if cat is not None:
        new[f"{tag}_shape"] = np.array([0, 0, -1], dtype=np.int64)
        out += [
            helper.make_node("Transpose", [f"{tag}_Y"], [f"{tag}_T"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{tag}_T", f"{tag}_shape"], [cat.output[0]]),
        ]
    return out
