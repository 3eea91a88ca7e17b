"""The LSTM's gate path: the step loop, the fused-kernel path `model.trace` uses, and a leaner loop.

`model.trace(steps=True)` runs the textbook step loop (`LSTMLayer.step_loop`): about a dozen small
torch ops per time step, 97 steps x 2 layers per window, each costing microseconds of dispatch for
little arithmetic. `model.trace()` takes h_t from the fused kernel and recomputes every gate
vectorized (`LSTMLayer.trace`). The peephole cell has no fused kernel and always
steps; "lean step loop" below is the same recurrence in ~6 ops per step (one addmm for all four
gates, one sigmoid over all of them, addcmul for the cell state, outputs written into preallocated
buffers), to show what the step loop itself could gain. Timed with one thread, one 1 s window,
and checked against the step loop (largest absolute difference over logits and every gate).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.common import bench_model, timings_ms
from speechcmd.model.network import LSTM_GATES


def lean_lstm_layer(x: torch.Tensor, rnn: torch.nn.LSTM) -> tuple[torch.Tensor, dict]:
    weight_ih, weight_hh, bias_ih, bias_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    hidden = rnn.hidden_size
    batch, steps, _ = x.shape
    x_proj = torch.addmm(bias_ih + bias_hh, x.reshape(batch * steps, -1), weight_ih.t())
    x_proj = x_proj.view(batch, steps, 4 * hidden).transpose(0, 1).contiguous()  # (T, B, 4H)
    u = weight_hh.t().contiguous()  # (H, 4H)
    sig = x.new_empty(steps, batch, 4 * hidden)  # sigmoid of every gate; the g slice is overwritten by tanh
    c_all = x.new_empty(steps, batch, hidden)
    h_all = x.new_empty(steps, batch, hidden)
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden)
    for t in range(steps):
        z = torch.addmm(x_proj[t], h, u)  # (B, 4H) in nn.LSTM's order i, f, g, o
        s = torch.sigmoid(z, out=sig[t])
        g = torch.tanh(z[:, 2 * hidden : 3 * hidden], out=s[:, 2 * hidden : 3 * hidden])
        c = torch.addcmul(s[:, hidden : 2 * hidden] * c, s[:, :hidden], g, out=c_all[t])
        h = torch.mul(s[:, 3 * hidden :], torch.tanh(c), out=h_all[t])
    i, f, g, o = sig.transpose(0, 1).chunk(4, dim=2)
    gates = dict(zip(LSTM_GATES, (f, i, g, o, c_all.transpose(0, 1), h_all.transpose(0, 1))))
    return gates["hidden_state"], gates


def lean_trace(model, waveform: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
    features = x = model.frontend(waveform)
    layers = []
    for layer in model.recurrent.layers:
        x, gates = lean_lstm_layer(x, layer.rnn)
        layers.append(gates)
    return model.head(model.head_input(features, x)), layers


def max_difference(reference, logits: torch.Tensor, layers: list[dict]) -> float:
    worst = (logits - reference.logits).abs().max().item()
    for mine, theirs in zip(layers, reference.layers):
        for name in LSTM_GATES:
            worst = max(worst, (mine[name] - theirs[name]).abs().max().item())
    return worst


def run(options: dict) -> dict:
    repetitions = options.get("repetitions", 200)
    model, described = bench_model(path=options.get("model"))
    if model.config.cell != "lstm":
        return {**described, "skipped": "the comparison is for the lstm cell"}
    torch.set_num_threads(1)
    window = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (1, 16_000)).astype(np.float32))
    results = {}
    with torch.inference_mode():
        reference = model.trace(window, steps=True)
        fused = model.trace(window)
        variants = {
            "step_loop": ("`model.trace(steps=True)`: the textbook step loop", lambda: model.trace(window, steps=True), 0.0),
            "fused": ("`model.trace()`: fused kernel, gates recomputed vectorized", lambda: model.trace(window),
                      max_difference(reference, fused.logits, fused.layers)),
            "lean_step_loop": ("lean step loop (prototype here, ~6 ops per step)", lambda: lean_trace(model, window),
                               max_difference(reference, *lean_trace(model, window))),
        }
        for key, (what, function, difference) in variants.items():
            results[key] = {"what": what, **timings_ms(function, repetitions), "max_abs_difference": difference}
    return {**described, "timings_1_thread": results}
