"""The classifier: MFCC frames -> recurrent layers -> one score per label.

Three cells share one interface, chosen by `ModelConfig.cell`:

- "lstm": parameters are exactly those of `torch.nn.LSTM`, so training and plain inference run the
  fused kernel; `trace` recomputes the same outputs step by step and keeps every gate.
- "peephole": an LSTM whose gates also see the cell state (Gers & Schmidhuber 2000). It holds an
  `nn.LSTM` for its ordinary weights plus one peephole vector per gate; no fused kernel exists for
  it, so it always runs the step path.
- "gru": parameters of `torch.nn.GRU`; `trace` keeps reset, update, candidate and hidden state.

`trace` returns, for every layer, a dict of (batch, time, hidden) tensors keyed by the gate's name
(`GATE_NAMES[cell]`), which the GUI draws and the tests compare with the fused path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from model.features import MFCC, FeatureConfig

LSTM_GATES = ("forget_gate", "input_gate", "candidate", "output_gate", "cell_state", "hidden_state")
GRU_GATES = ("reset_gate", "update_gate", "candidate", "hidden_state")
GATE_NAMES = {"lstm": LSTM_GATES, "peephole": LSTM_GATES, "gru": GRU_GATES}
CELLS = tuple(GATE_NAMES)
POOLINGS = ("last", "mean")

Gates = dict[str, torch.Tensor]  # gate name -> (batch, time, hidden)


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1  # between recurrent layers and before the head, in training only
    pooling: str = "last"  # how the per-step outputs become one vector: last step or mean over time
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r}.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}.")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("hidden_size and num_layers must be positive.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown))}.")
        values = dict(data)
        if "features" in values:
            values["features"] = FeatureConfig(**values["features"])
        return cls(**values)


class Recurrent(nn.Module):
    """A stack of recurrent layers over (batch, time, input) -> (batch, time, hidden)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout if num_layers > 1 else 0.0
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(input_size, hidden_size, num_layers, batch_first=True, dropout=self.dropout)
        if cell == "peephole":
            # One diagonal peephole weight per unit for the input, forget and output gates.
            self.peephole = nn.Parameter(torch.zeros(num_layers, 3, hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cell == "peephole":
            return self._layers(x, self._lstm_layer, keep_gates=False)[0]
        return self.rnn(x)[0]

    def trace(self, x: torch.Tensor, steps: bool = False) -> tuple[torch.Tensor, list[Gates]]:
        """The top layer's outputs and every layer's gates.

        `steps=True` runs the textbook step loop (`_lstm_layer`, `_gru_layer`). Otherwise, for the
        LSTM and the GRU, the fused kernel computes h_t for every step and `_gates_from_outputs`
        recomputes the gates from (x_t, h_{t-1}) for all steps at once: the same values, about
        three times faster, which is what live display needs. The peephole cell always steps.
        """
        if steps or self.cell == "peephole":
            layer_function = self._gru_layer if self.cell == "gru" else self._lstm_layer
            return self._layers(x, layer_function, keep_gates=True)
        return self._layers(x, self._gates_from_outputs, keep_gates=True)

    def _layers(self, x: torch.Tensor, layer_function, keep_gates: bool) -> tuple[torch.Tensor, list[Gates]]:
        layers: list[Gates] = []
        for layer in range(self.num_layers):
            if layer > 0:
                x = F.dropout(x, self.dropout, self.training)
            x, gates = layer_function(x, layer, keep_gates)
            layers.append(gates)
        return x, layers

    def _weights(self, layer: int):
        rnn = self.rnn
        return (
            getattr(rnn, f"weight_ih_l{layer}"),
            getattr(rnn, f"weight_hh_l{layer}"),
            getattr(rnn, f"bias_ih_l{layer}"),
            getattr(rnn, f"bias_hh_l{layer}"),
        )

    def _lstm_layer(self, x: torch.Tensor, layer: int, keep_gates: bool) -> tuple[torch.Tensor, Gates]:
        """One LSTM layer, written as the textbook equations (Hochreiter & Schmidhuber 1997):

            f_t = sigma(W_f x_t + U_f h_{t-1} [+ p_f * c_{t-1}] + b_f)    forget gate
            i_t = sigma(W_i x_t + U_i h_{t-1} [+ p_i * c_{t-1}] + b_i)    input gate
            g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)                       candidate
            c_t = f_t * c_{t-1} + i_t * g_t                               cell state
            o_t = sigma(W_o x_t + U_o h_{t-1} [+ p_o * c_t] + b_o)        output gate
            h_t = o_t * tanh(c_t)                                         hidden state

        The bracketed peephole terms exist only for the "peephole" cell. W, U and b are the rows of
        nn.LSTM's weight_ih, weight_hh and bias_ih + bias_hh, which nn.LSTM orders i, f, g, o.
        """
        weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer)
        batch, steps, _ = x.shape
        # The input's contribution to every gate, for all time steps in one matrix product.
        x_proj = torch.addmm(bias_ih + bias_hh, x.reshape(batch * steps, -1), weight_ih.t())
        x_i, x_f, x_g, x_o = x_proj.view(batch, steps, 4 * self.hidden_size).chunk(4, dim=2)  # (B, T, H)
        if self.cell == "peephole":
            p_i, p_f, p_o = self.peephole[layer]  # (H,) each
        h = x.new_zeros(batch, self.hidden_size)
        c = x.new_zeros(batch, self.hidden_size)
        outputs, kept = [], {name: [] for name in LSTM_GATES}
        for t in range(steps):
            # The recurrent contribution to all four gates in one product: U = [U_i; U_f; U_g; U_o].
            h_i, h_f, h_g, h_o = (h @ weight_hh.t()).chunk(4, dim=1)  # (B, H) each
            z_f = x_f[:, t] + h_f
            z_i = x_i[:, t] + h_i
            if self.cell == "peephole":
                z_f = z_f + p_f * c
                z_i = z_i + p_i * c
            f = torch.sigmoid(z_f)
            i = torch.sigmoid(z_i)
            g = torch.tanh(x_g[:, t] + h_g)
            c = f * c + i * g
            z_o = x_o[:, t] + h_o
            if self.cell == "peephole":
                z_o = z_o + p_o * c
            o = torch.sigmoid(z_o)
            h = o * torch.tanh(c)
            outputs.append(h)
            if keep_gates:
                for name, value in zip(LSTM_GATES, (f, i, g, o, c, h)):
                    kept[name].append(value)
        gates = {name: torch.stack(values, dim=1) for name, values in kept.items() if values}
        return torch.stack(outputs, dim=1), gates

    def _gru_layer(self, x: torch.Tensor, layer: int, keep_gates: bool) -> tuple[torch.Tensor, Gates]:
        """One GRU layer (Cho et al. 2014, in PyTorch's convention):

            r_t = sigma(W_r x_t + b_ir + U_r h_{t-1} + b_hr)              reset gate
            z_t = sigma(W_z x_t + b_iz + U_z h_{t-1} + b_hz)              update gate
            n_t = tanh(W_n x_t + b_in + r_t * (U_n h_{t-1} + b_hn))       candidate
            h_t = (1 - z_t) * n_t + z_t * h_{t-1}                         hidden state
        """
        weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer)
        batch, steps, _ = x.shape
        x_proj = torch.addmm(bias_ih, x.reshape(batch * steps, -1), weight_ih.t())
        x_r, x_z, x_n = x_proj.view(batch, steps, 3 * self.hidden_size).chunk(3, dim=2)  # (B, T, H)
        h = x.new_zeros(batch, self.hidden_size)
        outputs, kept = [], {name: [] for name in GRU_GATES}
        for t in range(steps):
            h_r, h_z, h_n = torch.addmm(bias_hh, h, weight_hh.t()).chunk(3, dim=1)  # U h_{t-1} + b_h
            r = torch.sigmoid(x_r[:, t] + h_r)
            z = torch.sigmoid(x_z[:, t] + h_z)
            n = torch.tanh(x_n[:, t] + r * h_n)
            h = (1 - z) * n + z * h
            outputs.append(h)
            if keep_gates:
                for name, value in zip(GRU_GATES, (r, z, n, h)):
                    kept[name].append(value)
        gates = {name: torch.stack(values, dim=1) for name, values in kept.items() if values}
        return torch.stack(outputs, dim=1), gates

    def _gates_from_outputs(self, x: torch.Tensor, layer: int, keep_gates: bool = True) -> tuple[torch.Tensor, Gates]:
        """One layer through the fused kernel, then its gates from the equations above, vectorized:
        with h_{t-1} known for every t, each gate of every step is one matrix product away. Only the
        LSTM's cell state c_t = f_t * c_{t-1} + i_t * g_t remains a loop, of one op per step."""
        weights = self._weights(layer)
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        batch, steps, _ = x.shape
        h0 = x.new_zeros(1, batch, self.hidden_size)
        if self.cell == "gru":
            h = torch.gru(x, h0, list(weights), True, 1, 0.0, False, False, True)[0]  # (B, T, H)
        else:
            h = torch.lstm(x, (h0, h0), list(weights), True, 1, 0.0, False, False, True)[0]
        h_previous = torch.cat([h0.transpose(0, 1), h[:, :-1]], dim=1)  # (B, T, H): h_{t-1}
        x_proj = x @ weight_ih.t() + bias_ih  # (B, T, gates * H)
        h_proj = h_previous @ weight_hh.t() + bias_hh
        if self.cell == "gru":
            x_r, x_z, x_n = x_proj.chunk(3, dim=2)
            h_r, h_z, h_n = h_proj.chunk(3, dim=2)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            return h, dict(zip(GRU_GATES, (r, z, n, h)))
        z_i, z_f, z_g, z_o = (x_proj + h_proj).chunk(4, dim=2)
        f, i, g, o = torch.sigmoid(z_f), torch.sigmoid(z_i), torch.tanh(z_g), torch.sigmoid(z_o)
        written = (i * g).transpose(0, 1).contiguous()  # (T, B, H)
        kept = f.transpose(0, 1).contiguous()
        c = x.new_empty(steps, batch, self.hidden_size)
        c_previous = h0[0]
        for t in range(steps):
            c_previous = torch.addcmul(written[t], kept[t], c_previous, out=c[t])
        return h, dict(zip(LSTM_GATES, (f, i, g, o, c.transpose(0, 1), h)))


@dataclass
class Trace:
    """Everything the model computed for a batch of windows, for display and inspection."""

    logits: torch.Tensor  # (batch, labels)
    mfcc: torch.Tensor  # (batch, frames, n_mfcc), normalized
    layers: list[Gates]  # per layer: gate name -> (batch, frames, hidden)

    @property
    def probabilities(self) -> torch.Tensor:
        return self.logits.softmax(dim=-1)


class SpeechCommandsModel(nn.Module):
    """Waveform windows (batch, samples) at 16 kHz -> label scores (batch, labels)."""

    def __init__(self, config: ModelConfig, labels: list[str] | tuple[str, ...]):
        super().__init__()
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError("a model needs at least two distinct labels.")
        self.config = config
        self.labels = list(labels)
        self.frontend = MFCC(config.features)
        self.recurrent = Recurrent(
            config.cell, config.features.n_mfcc, config.hidden_size, config.num_layers, config.dropout
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, len(self.labels))
        self.metadata: dict[str, Any] = {}  # provenance from the checkpoint (data, accuracy, version)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self.config.cell]

    def _pool(self, outputs: torch.Tensor) -> torch.Tensor:
        """(batch, frames, hidden) -> (batch, hidden)."""
        return outputs[:, -1] if self.config.pooling == "last" else outputs.mean(dim=1)

    def logits_from_features(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mfcc) normalized features -> (batch, labels) logits."""
        return self.head(self.dropout(self._pool(self.recurrent(mfcc))))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.frontend(waveform))

    def trace(self, waveform: torch.Tensor, steps: bool = False) -> Trace:
        """Like `forward`, keeping the features and every gate (`steps=True`: the step loop)."""
        mfcc = self.frontend(waveform)
        outputs, layers = self.recurrent.trace(mfcc, steps)
        logits = self.head(self.dropout(self._pool(outputs)))
        return Trace(logits=logits, mfcc=mfcc, layers=layers)
