"""Prototypes of a faster gate path for the LSTM, timed against `model.trace` (which they must match).

`Recurrent._lstm_layer` spends its time in Python: about a dozen small torch ops per time step
(97 steps x 2 layers per window), each costing microseconds of dispatch for little arithmetic.
Two rewrites of one LSTM layer, both returning the same gates:

- "lean step loop": the same recurrence with fewer, larger ops per step: one addmm for all four
  gates, one sigmoid over all of them, one tanh for the candidate, addcmul for the cell state,
  results written into preallocated (time, batch, hidden) buffers instead of lists + stack.
- "fused h, vectorized gates": the hidden states come from the fused kernel (`torch.lstm`, the
  op behind nn.LSTM, one layer at a time); given h_{t-1} for every t, every gate of every step is
  one matrix product and elementwise ops over the whole window; only c_t = f_t c_{t-1} + i_t g_t
  stays a loop, of one addcmul per step.

Nothing here is used by the application; it measures what a change to model/network.py would buy.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.common import bench_model, timings_ms
from model.network import LSTM_GATES


def lean_lstm_layer(x: torch.Tensor, weights, hidden: int) -> tuple[torch.Tensor, dict]:
    weight_ih, weight_hh, bias_ih, bias_hh = weights
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


def fused_lstm_layer(x: torch.Tensor, weights, hidden: int) -> tuple[torch.Tensor, dict]:
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    batch, steps, _ = x.shape
    zeros = x.new_zeros(1, batch, hidden)
    h = torch.lstm(x, (zeros, zeros), list(weights), True, 1, 0.0, False, False, True)[0]  # (B, T, H)
    h_previous = torch.cat([x.new_zeros(batch, 1, hidden), h[:, :-1]], dim=1)
    z = torch.addmm(bias_ih + bias_hh, x.reshape(batch * steps, -1), weight_ih.t())
    z = z.view(batch, steps, 4 * hidden) + h_previous @ weight_hh.t()  # (B, T, 4H)
    i, f, g, o = z.chunk(4, dim=2)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    ig = (i * g).transpose(0, 1).contiguous()  # (T, B, H)
    f_t = f.transpose(0, 1).contiguous()
    c_all = x.new_empty(steps, batch, hidden)
    c = x.new_zeros(batch, hidden)
    for t in range(steps):
        c = torch.addcmul(ig[t], f_t[t], c, out=c_all[t])
    gates = dict(zip(LSTM_GATES, (f, i, g, o, c_all.transpose(0, 1), h)))
    return h, gates


def trace_with(model, waveform: torch.Tensor, layer_function) -> tuple[torch.Tensor, list[dict]]:
    recurrent = model.recurrent
    x = model.frontend(waveform)
    layers = []
    for layer in range(recurrent.num_layers):
        x, gates = layer_function(x, recurrent._weights(layer), recurrent.hidden_size)
        layers.append(gates)
    return model.head(model._pool(x)), layers


def max_difference(model, waveform, layer_function) -> float:
    reference = model.trace(waveform)
    logits, layers = trace_with(model, waveform, layer_function)
    worst = (logits - reference.logits).abs().max().item()
    for mine, theirs in zip(layers, reference.layers):
        for name in LSTM_GATES:
            worst = max(worst, (mine[name] - theirs[name]).abs().max().item())
    return worst


def run(options: dict) -> dict:
    repetitions = options.get("repetitions", 200)
    model, described = bench_model()
    if model.config.cell != "lstm":
        return {**described, "skipped": "the prototypes are for the lstm cell"}
    torch.set_num_threads(1)
    window = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (1, 16_000)).astype(np.float32))
    variants = {
        "trace": ("`model.trace` as it is (reference)", None),
        "lean_step_loop": ("lean step loop (same recurrence, ~6 ops per step)", lean_lstm_layer),
        "fused_h_vectorized_gates": ("fused h, vectorized gates, cell-state loop", fused_lstm_layer),
    }
    results = {}
    with torch.inference_mode():
        for key, (what, layer_function) in variants.items():
            if layer_function is None:
                timing = timings_ms(lambda: model.trace(window), repetitions)
                difference = 0.0
            else:
                timing = timings_ms(lambda: trace_with(model, window, layer_function), repetitions)
                difference = max_difference(model, window, layer_function)
            results[key] = {"what": what, **timing, "max_abs_difference": difference}
        # The GUI's whole pipeline (StreamingRecognizer.push of one hop) with the fastest prototype in place.
        from model.network import Trace
        from model.streaming import StreamingRecognizer

        def fused_trace(waveform):
            mfcc = model.frontend(waveform)
            x, layers = mfcc, []
            for layer in range(model.recurrent.num_layers):
                x, gates = fused_lstm_layer(x, model.recurrent._weights(layer), model.recurrent.hidden_size)
                layers.append(gates)
            return Trace(logits=model.head(model._pool(x)), mfcc=mfcc, layers=layers)

        for key, trace in (("pipeline_with_trace", model.trace), ("pipeline_with_fused_h", fused_trace)):
            recognizer = StreamingRecognizer(model, hop_seconds=0.1, with_gates=True)
            recognizer.model = _WithTrace(model, trace)
            recognizer.push(np.zeros(recognizer.window_samples - recognizer.hop_samples, np.float32))
            hop = np.random.default_rng(1).uniform(-0.3, 0.3, recognizer.hop_samples).astype(np.float32)
            what = "full pipeline, push of one hop with gates, " + ("`model.trace`" if key == "pipeline_with_trace" else "fused h prototype")
            results[key] = {"what": what, **timings_ms(lambda: recognizer.push(hop), repetitions), "max_abs_difference": None}
    return {**described, "timings_1_thread": results}


class _WithTrace:
    """The model with its `trace` replaced, for StreamingRecognizer (which calls eval, parameters, trace)."""

    def __init__(self, model, trace):
        self._model, self.trace = model, trace

    def __getattr__(self, name):
        return getattr(self._model, name)
