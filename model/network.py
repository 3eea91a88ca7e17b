"""The classifier: front-end frames (MFCC or speech embedding) -> recurrent layers -> one score per label.

One small module per cell, each with its textbook `step` beside its fast `trace`:

- `LSTMLayer`: an `nn.LSTM` layer (Hochreiter & Schmidhuber 1997). Training and plain inference run
  the fused kernel; `trace` takes h_t for every step from that kernel and recomputes every gate from
  (x_t, h_{t-1}) in a few matrix products.
- `PeepholeLSTMLayer`: an LSTM whose gates also see the cell state (Gers & Schmidhuber 2000). No
  fused kernel exists for it, so it always runs its step loop, which keeps the gates for free.
- `GRULayer`: an `nn.GRU` layer (Cho et al. 2014), with reset and update gates instead of f, i, o.

`trace` returns, for every layer, a dict of (batch, time, hidden) tensors keyed by the gate's name
(`GATE_NAMES[cell]`): what the GUI draws, and what the tests hold equal to the step loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speechcmd.model import SILENCE
from speechcmd.model.config import CELLS, POOLINGS, ModelConfig  # noqa: F401  (re-exported)
from speechcmd.model.features import MFCC, FeatureConfig, make_frontend  # noqa: F401  (re-exported)

LSTM_GATES = ("forget_gate", "input_gate", "candidate", "output_gate", "cell_state", "hidden_state")
GRU_GATES = ("reset_gate", "update_gate", "candidate", "hidden_state")
GATE_NAMES = {"lstm": LSTM_GATES, "peephole": LSTM_GATES, "gru": GRU_GATES}

Gates = dict[str, torch.Tensor]  # gate name -> (batch, time, hidden)


def _stack(outputs: list[torch.Tensor], kept: dict[str, list[torch.Tensor]]) -> tuple[torch.Tensor, Gates]:
    """Per-step (batch, hidden) tensors -> (batch, time, hidden)."""
    return torch.stack(outputs, dim=1), {name: torch.stack(values, dim=1) for name, values in kept.items()}


class LSTMLayer(nn.Module):
    """One LSTM layer: (batch, time, input) -> (batch, time, hidden)."""

    gate_names = LSTM_GATES

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]

    def _input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """W x_t + b for every step and gate in one product: (B, T, 4H), rows in nn.LSTM's order
        i, f, g, o."""
        rnn = self.rnn
        batch, steps, _ = x.shape
        x_proj = torch.addmm(rnn.bias_ih_l0 + rnn.bias_hh_l0, x.reshape(batch * steps, -1), rnn.weight_ih_l0.t())
        return x_proj.view(batch, steps, -1)

    def step(self, x_t: tuple[torch.Tensor, ...], h: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """One time step, as the textbook writes it:

            f_t = sigma(W_f x_t + U_f h_{t-1} + b_f)      forget gate
            i_t = sigma(W_i x_t + U_i h_{t-1} + b_i)      input gate
            g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)       candidate
            o_t = sigma(W_o x_t + U_o h_{t-1} + b_o)      output gate
            c_t = f_t * c_{t-1} + i_t * g_t               cell state
            h_t = o_t * tanh(c_t)                         hidden state
        """
        x_i, x_f, x_g, x_o = x_t  # W x_t + b, (B, H) each
        h_i, h_f, h_g, h_o = (h @ self.rnn.weight_hh_l0.t()).chunk(4, dim=1)  # U h_{t-1}, (B, H) each
        f = torch.sigmoid(x_f + h_f)
        i = torch.sigmoid(x_i + h_i)
        g = torch.tanh(x_g + h_g)
        o = torch.sigmoid(x_o + h_o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return dict(zip(LSTM_GATES, (f, i, g, o, c, h)))

    def step_loop(self, x: torch.Tensor) -> tuple[torch.Tensor, Gates]:
        """Every step through `step`, keeping every gate."""
        batch, steps, _ = x.shape
        x_proj = self._input_projection(x).chunk(4, dim=2)  # x_i, x_f, x_g, x_o: (B, T, H) each
        h = c = x.new_zeros(batch, self.hidden_size)
        outputs, kept = [], {name: [] for name in LSTM_GATES}
        for t in range(steps):
            gates = self.step(tuple(p[:, t] for p in x_proj), h, c)
            h, c = gates["hidden_state"], gates["cell_state"]
            outputs.append(h)
            for name, value in gates.items():
                kept[name].append(value)
        return _stack(outputs, kept)

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, Gates]:
        """The fused kernel gives h_t for every t, so each gate of every step is one matrix product
        away from (x_t, h_{t-1}); the cell state c_t = f_t * c_{t-1} + i_t * g_t is a scan over
        time (`cell_states`)."""
        batch, steps, _ = x.shape
        h = self.rnn(x)[0]  # (B, T, H)
        h_previous = torch.cat([h.new_zeros(batch, 1, self.hidden_size), h[:, :-1]], dim=1)  # h_{t-1}
        z = torch.addmm(  # W x_t + b + U h_{t-1}: (B, T, 4H)
            self._input_projection(x).view(batch * steps, -1), h_previous.view(batch * steps, -1), self.rnn.weight_hh_l0.t()
        ).view(batch, steps, -1)
        z_i, z_f, z_g, z_o = z.chunk(4, dim=2)
        f, i, g, o = torch.sigmoid(z_f), torch.sigmoid(z_i), torch.tanh(z_g), torch.sigmoid(z_o)
        return h, dict(zip(LSTM_GATES, (f, i, g, o, cell_states(f, i * g), h)))


def cell_states(forget: torch.Tensor, written: torch.Tensor) -> torch.Tensor:
    """c_t = f_t * c_{t-1} + w_t for every t of (B, T, H) tensors, from c_{-1} = 0.

    A scan in ceil(log2 T) rounds of whole-tensor products (Hillis & Steele 1986): after the round
    of shift s, c_t holds the sum over the 2s steps up to t, each w_k kept by the forget gates
    after it, and `kept` (for the steps still incomplete, t >= 2s) the product of those 2s gates.
    Six rounds for a window's 49 steps instead of 49 one-step ops, each of which costs more in
    dispatch than in arithmetic. Gates are in (0, 1), so the products only shrink: the result is
    the step loop's to float rounding (tests/test_network.py)."""
    steps = forget.shape[1]
    c, kept, shift = written, forget[:, 1:], 1  # kept[:, j]: the gates for step shift + j
    while shift < steps:
        c = torch.cat([c[:, :shift], torch.addcmul(c[:, shift:], kept, c[:, : steps - shift])], dim=1)
        if 2 * shift < steps:
            kept = kept[:, shift:] * kept[:, : steps - 2 * shift]
        shift *= 2
    return c


class PeepholeLSTMLayer(LSTMLayer):
    """An LSTM layer whose gates also look at the cell state through one diagonal weight per unit."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.peephole = nn.Parameter(torch.zeros(3, hidden_size))  # p_i, p_f, p_o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step_loop(x)[0]

    def step(self, x_t: tuple[torch.Tensor, ...], h: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """The LSTM step with peepholes (Gers & Schmidhuber 2000):

            f_t = sigma(W_f x_t + U_f h_{t-1} + p_f * c_{t-1} + b_f)
            i_t = sigma(W_i x_t + U_i h_{t-1} + p_i * c_{t-1} + b_i)
            g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
            c_t = f_t * c_{t-1} + i_t * g_t
            o_t = sigma(W_o x_t + U_o h_{t-1} + p_o * c_t + b_o)     (sees the new cell state)
            h_t = o_t * tanh(c_t)
        """
        x_i, x_f, x_g, x_o = x_t
        h_i, h_f, h_g, h_o = (h @ self.rnn.weight_hh_l0.t()).chunk(4, dim=1)
        p_i, p_f, p_o = self.peephole  # (H,) each
        f = torch.sigmoid(x_f + h_f + p_f * c)
        i = torch.sigmoid(x_i + h_i + p_i * c)
        g = torch.tanh(x_g + h_g)
        c = f * c + i * g
        o = torch.sigmoid(x_o + h_o + p_o * c)
        h = o * torch.tanh(c)
        return dict(zip(LSTM_GATES, (f, i, g, o, c, h)))

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, Gates]:
        return self.step_loop(x)


class GRULayer(nn.Module):
    """One GRU layer: (batch, time, input) -> (batch, time, hidden)."""

    gate_names = GRU_GATES

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]

    def _projections(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """W x_t + b_i for every step, in one product; nn.GRU orders the rows r, z, n."""
        batch, steps, _ = x.shape
        x_proj = torch.addmm(self.rnn.bias_ih_l0, x.reshape(batch * steps, -1), self.rnn.weight_ih_l0.t())
        return x_proj.view(batch, steps, -1).chunk(3, dim=-1)

    def _recurrent(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """U h_{t-1} + b_h; the reset gate scales the candidate's part, bias included."""
        return (h @ self.rnn.weight_hh_l0.t() + self.rnn.bias_hh_l0).chunk(3, dim=-1)

    def step(self, x_t: tuple[torch.Tensor, ...], h: torch.Tensor) -> dict[str, torch.Tensor]:
        """One time step (PyTorch's convention of Cho et al. 2014):

            r_t = sigma(W_r x_t + b_ir + U_r h_{t-1} + b_hr)           reset gate
            z_t = sigma(W_z x_t + b_iz + U_z h_{t-1} + b_hz)           update gate
            n_t = tanh(W_n x_t + b_in + r_t * (U_n h_{t-1} + b_hn))    candidate
            h_t = (1 - z_t) * n_t + z_t * h_{t-1}                      hidden state
        """
        x_r, x_z, x_n = x_t
        h_r, h_z, h_n = self._recurrent(h)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return dict(zip(GRU_GATES, (r, z, n, h)))

    def step_loop(self, x: torch.Tensor) -> tuple[torch.Tensor, Gates]:
        batch, steps, _ = x.shape
        x_proj = self._projections(x)
        h = x.new_zeros(batch, self.hidden_size)
        outputs, kept = [], {name: [] for name in GRU_GATES}
        for t in range(steps):
            gates = self.step(tuple(p[:, t] for p in x_proj), h)
            h = gates["hidden_state"]
            outputs.append(h)
            for name, value in gates.items():
                kept[name].append(value)
        return _stack(outputs, kept)

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, Gates]:
        """h_t from the fused kernel; every gate of every step from (x_t, h_{t-1}) at once."""
        h = self.rnn(x)[0]  # (B, T, H)
        h_previous = torch.cat([h.new_zeros(h.shape[0], 1, h.shape[2]), h[:, :-1]], dim=1)
        x_r, x_z, x_n = self._projections(x)
        h_r, h_z, h_n = self._recurrent(h_previous)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return h, dict(zip(GRU_GATES, (r, z, n, h)))


LAYERS = {"lstm": LSTMLayer, "peephole": PeepholeLSTMLayer, "gru": GRULayer}


class Recurrent(nn.Module):
    """A stack of recurrent layers over (batch, time, input) -> (batch, time, hidden), with dropout
    between layers in training."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.hidden_size = hidden_size
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(LAYERS[cell](size, hidden_size) for size in sizes)
        self.between = nn.Dropout(dropout if num_layers > 1 else 0.0)

    def _dropped(self, x: torch.Tensor, index: int) -> torch.Tensor:
        # Only in training, and not before the first layer (the front-end's features).
        return self.between(x) if index and self.training else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(self._dropped(x, index))
        return x

    def trace(self, x: torch.Tensor, steps: bool = False) -> tuple[torch.Tensor, list[Gates]]:
        """The top layer's outputs and every layer's gates; `steps=True` runs the textbook step
        loops, otherwise each layer's fast recomputation (the same values, what live display uses)."""
        layers: list[Gates] = []
        for index, layer in enumerate(self.layers):
            x, gates = (layer.step_loop if steps else layer.trace)(self._dropped(x, index))
            layers.append(gates)
        return x, layers


def upgrade_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint saved before one module per layer (format 1), renamed: there,
    one multi-layer `recurrent.rnn` had `_l{k}` suffixes and one (layers, 3, hidden) peephole tensor."""
    upgraded = {}
    for key, value in state_dict.items():
        if key.startswith("recurrent.rnn."):
            name, _, layer = key.removeprefix("recurrent.rnn.").rpartition("_l")
            key = f"recurrent.layers.{layer}.rnn.{name}_l0"
        elif key == "recurrent.peephole" and isinstance(value, torch.Tensor) and value.dim() == 3:
            for layer in range(value.shape[0]):
                upgraded[f"recurrent.layers.{layer}.peephole"] = value[layer]
            continue
        upgraded[key] = value
    return upgraded


@dataclass
class Trace:
    """Everything the model computed for a batch of windows, for display and inspection."""

    logits: torch.Tensor  # (batch, labels)
    mfcc: torch.Tensor  # (batch, frames, feature size): the front-end's normalized frames (MFCC or embedding)
    layers: list[Gates]  # per layer: gate name -> (batch, frames, hidden)

    @property
    def probabilities(self) -> torch.Tensor:
        return self.logits.softmax(dim=-1)


class SpeechCommandsModel(nn.Module):
    """Waveform windows (batch, samples) at 16 kHz -> label scores (batch, labels)."""

    def __init__(self, config: ModelConfig, labels: list[str] | tuple[str, ...], pretrained: bool = True):
        """`pretrained`: a pretrained front-end starts from its shipped weights; False for a model
        whose full state dict is loaded next (a checkpoint, a taught copy), which needs no file read."""
        super().__init__()
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError("a model needs at least two distinct labels.")
        self.config = config
        self.labels = list(labels)
        self.frontend = make_frontend(config.features, pretrained)
        self.recurrent = Recurrent(
            config.cell, config.features.feature_size, config.hidden_size, config.num_layers, config.dropout
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.head_input_size, len(self.labels))
        self.metadata: dict[str, Any] = {}  # provenance from the checkpoint (data, accuracy, version)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self.config.cell]

    def _pool(self, outputs: torch.Tensor) -> torch.Tensor:
        """(batch, frames, hidden) -> (batch, hidden)."""
        return outputs[:, -1] if self.config.pooling == "last" else outputs.mean(dim=1)

    def head_input(self, features: torch.Tensor, outputs: torch.Tensor, reads_frontend: bool | None = None) -> torch.Tensor:
        """What the head reads: the pooled recurrent `outputs` (batch, hidden), and with
        `config.head_reads_frontend` (or `reads_frontend`, for a head being taught) the front-end
        `features` averaged over the window after them."""
        pooled = self._pool(outputs)
        reads_frontend = self.config.head_reads_frontend if reads_frontend is None else reads_frontend
        return torch.cat([pooled, features.mean(dim=1)], dim=-1) if reads_frontend else pooled

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, frames, feature size) normalized features -> (batch, labels) logits."""
        return self.head(self.dropout(self.head_input(features, self.recurrent(features))))

    def gate_silence(self, waveform: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Windows quieter than `config.silence_gate_dbfs` at their loudest sample get the logits
        of certain silence: the network never heard digital zeros as a word, and must not say one."""
        return self.gate_silence_peaks(waveform.abs().amax(dim=-1), logits)

    def gate_silence_peaks(self, peak: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """`gate_silence` for windows given by their loudest sample, (batch,)."""
        gate = self.config.silence_gate_dbfs
        if gate is None or SILENCE not in self.labels:
            return logits
        quiet = peak < 10 ** (gate / 20)  # (batch,)
        if not quiet.any():
            return logits
        certain = torch.full_like(logits, -30.0)
        certain[:, self.labels.index(SILENCE)] = 30.0
        return torch.where(quiet[:, None], certain, logits)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.gate_silence(waveform, self.logits_from_features(self.frontend(waveform)))

    def trace(self, waveform: torch.Tensor, steps: bool = False) -> Trace:
        """Like `forward`, keeping the features and every gate (`steps=True`: the step loop)."""
        return self.trace_features(self.frontend(waveform), waveform.abs().amax(dim=-1), steps)

    def trace_features(self, features: torch.Tensor, peak: torch.Tensor, steps: bool = False) -> Trace:
        """`trace` of windows given by their front-end features (batch, frames, feature size) and
        loudest sample (batch,): how a stream, embedded once, is traced window by window."""
        outputs, layers = self.recurrent.trace(features, steps)
        logits = self.gate_silence_peaks(peak, self.head(self.dropout(self.head_input(features, outputs))))
        return Trace(logits=logits, mfcc=features, layers=layers)

    def logits_of_stream(self, features: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
        """`forward` of windows given by their front-end features and loudest sample."""
        return self.gate_silence_peaks(peak, self.logits_from_features(features))
