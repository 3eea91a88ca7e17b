"""The recurrent network: the step path that exposes every gate equals the fused path."""

import math

import pytest
import torch

from speechcmd.model.network import CELLS, GATE_NAMES, ModelConfig, SpeechCommandsModel

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _model(cell, **kw):
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(cell=cell, hidden_size=24, num_layers=3, **kw), LABELS).eval()
    if cell == "peephole":
        with torch.no_grad():
            for layer in model.recurrent.layers:
                layer.peephole.normal_(0, 0.5)  # non-zero, or the peephole terms are untested
    return model


@pytest.mark.parametrize("cell", CELLS)
def test_step_path_equals_fused_path(cell):
    model = _model(cell)
    waveform = torch.randn(4, 16_000) * 0.1
    with torch.no_grad():
        fused = model(waveform)
        trace = model.trace(waveform, steps=True)
    torch.testing.assert_close(trace.logits, fused, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_gates_recomputed_from_fused_outputs_equal_the_step_loop(cell):
    model = _model(cell)
    waveform = torch.randn(3, 16_000) * 0.1
    with torch.no_grad():
        stepped = model.trace(waveform, steps=True)
        fast = model.trace(waveform)
    torch.testing.assert_close(fast.logits, stepped.logits, atol=1e-5, rtol=1e-5)
    for fast_layer, step_layer in zip(fast.layers, stepped.layers):
        assert fast_layer.keys() == step_layer.keys()
        for name in step_layer:
            torch.testing.assert_close(fast_layer[name], step_layer[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("steps", [True, False])
def test_trace_exposes_every_gate_of_every_layer_at_every_step(cell, steps):
    model = _model(cell)
    with torch.no_grad():
        trace = model.trace(torch.randn(2, 16_000) * 0.1, steps=steps)
    assert len(trace.layers) == 3
    frames = model.config.features.num_frames(16_000)
    for layer in trace.layers:
        assert tuple(layer) == GATE_NAMES[cell]
        for name, value in layer.items():
            assert value.shape == (2, frames, 24), name
    assert trace.mfcc.shape == (2, frames, 40)


def test_lstm_gates_obey_their_ranges_and_the_cell_equations():
    # The fast path: h_t from the fused kernel, the gates recomputed, so the equations are a check.
    model = _model("lstm")
    with torch.no_grad():
        g = model.trace(torch.randn(1, 16_000) * 0.1).layers[1]
    for name in ("forget_gate", "input_gate", "output_gate"):
        assert 0 <= g[name].min() and g[name].max() <= 1
    assert g["candidate"].abs().max() <= 1
    c_prev = torch.cat([torch.zeros_like(g["cell_state"][:, :1]), g["cell_state"][:, :-1]], dim=1)
    torch.testing.assert_close(g["cell_state"], g["forget_gate"] * c_prev + g["input_gate"] * g["candidate"])
    torch.testing.assert_close(g["hidden_state"], g["output_gate"] * torch.tanh(g["cell_state"]))


def test_gru_hidden_state_interpolates_between_candidate_and_previous_state():
    model = _model("gru")
    with torch.no_grad():
        g = model.trace(torch.randn(1, 16_000) * 0.1).layers[0]
    h_prev = torch.cat([torch.zeros_like(g["hidden_state"][:, :1]), g["hidden_state"][:, :-1]], dim=1)
    z = g["update_gate"]
    torch.testing.assert_close(g["hidden_state"], (1 - z) * g["candidate"] + z * h_prev)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_stack_of_layers_computes_what_a_multi_layer_torch_rnn_computes(cell):
    model = _model(cell)
    reference = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(40, 24, 3, batch_first=True).eval()
    with torch.no_grad():
        for name, weight in reference.named_parameters():
            layer = int(name.rpartition("_l")[2])
            getattr(model.recurrent.layers[layer].rnn, name.rpartition("_l")[0] + "_l0").copy_(weight)
        mfcc = torch.randn(2, 50, 40)
        torch.testing.assert_close(model.recurrent(mfcc), reference(mfcc)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.recurrent.trace(mfcc)[0], reference(mfcc)[0], atol=1e-5, rtol=1e-5)


def test_peephole_weights_change_the_output():
    model = _model("peephole")
    waveform = torch.randn(1, 16_000) * 0.1
    with torch.no_grad():
        before = model(waveform)
        for layer in model.recurrent.layers:
            layer.peephole.zero_()
        after = model(waveform)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_trace_matches_fused_for_both_poolings(pooling):
    model = _model("lstm", pooling=pooling)
    waveform = torch.randn(2, 16_000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(model.trace(waveform, steps=True).logits, model(waveform), atol=1e-5, rtol=1e-5)


def test_pooling_is_the_last_step_or_the_mean_over_time():
    waveform = torch.randn(2, 16_000) * 0.1
    with torch.no_grad():
        last, mean = _model("lstm", pooling="last"), _model("lstm", pooling="mean")  # the same weights
        outputs = last.recurrent(last.frontend(waveform))  # (batch, frames, hidden)
        torch.testing.assert_close(last(waveform), last.head(outputs[:, -1]))
        torch.testing.assert_close(mean(waveform), mean.head(outputs.mean(dim=1)))
        assert not torch.allclose(last(waveform), mean(waveform))


@pytest.mark.parametrize("cell", CELLS)
def test_a_head_that_reads_the_frontend_sees_the_mean_feature_beside_the_pooled_output(cell):
    """Taught models' heads (`head_reads_frontend`): the pooled recurrent output, then the window's
    mean front-end feature; the gates and the trace are those of the same network."""
    model = _model(cell, head_reads_frontend=True)
    waveform = torch.randn(2, 16_000) * 0.1
    hidden, size = model.config.hidden_size, model.config.features.feature_size
    assert model.head.in_features == hidden + size
    with torch.no_grad():
        features = model.frontend(waveform)
        outputs = model.recurrent(features)
        torch.testing.assert_close(model(waveform), model.head(torch.cat([outputs[:, -1], features.mean(dim=1)], dim=1)))
        torch.testing.assert_close(model.trace(waveform, steps=True).logits, model(waveform), atol=1e-5, rtol=1e-5)
        # The front-end's share is real: without it the scores change.
        model.head.weight[:, hidden:] = 0
        torch.testing.assert_close(model(waveform), model.head(torch.cat([outputs[:, -1], torch.zeros(2, size)], dim=1)))
    with pytest.raises(ValueError, match="head_reads_frontend"):
        ModelConfig(head_reads_frontend="yes")


def test_a_peephole_layer_without_peepholes_is_a_plain_lstm():
    model = _model("peephole")
    mfcc = torch.randn(2, 30, 40)
    with torch.no_grad():
        layer = model.recurrent.layers[0]
        layer.peephole.zero_()
        torch.testing.assert_close(layer(mfcc), layer.rnn(mfcc)[0], atol=1e-5, rtol=1e-5)


def test_peephole_gates_follow_gers_and_schmidhuber_by_hand():
    # One unit, no input or recurrent weights: every gate is its bias plus its peephole term, so
    # two steps can be worked out by hand. nn.LSTM orders the biases i, f, g, o.
    from speechcmd.model.network import PeepholeLSTMLayer

    layer = PeepholeLSTMLayer(input_size=1, hidden_size=1)
    b_i, b_f, b_g, b_o = 0.3, -0.2, 0.9, 0.1
    p_i, p_f, p_o = 0.5, -0.7, 1.3
    with torch.no_grad():
        for weight in (layer.rnn.weight_ih_l0, layer.rnn.weight_hh_l0, layer.rnn.bias_hh_l0):
            weight.zero_()
        layer.rnn.bias_ih_l0.copy_(torch.tensor([b_i, b_f, b_g, b_o]))
        layer.peephole.copy_(torch.tensor([[p_i], [p_f], [p_o]]))
        _, gates = layer.step_loop(torch.zeros(1, 2, 1))
    sigma = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    c0 = 0.0
    f1, i1, g1 = sigma(b_f + p_f * c0), sigma(b_i + p_i * c0), math.tanh(b_g)
    c1 = f1 * c0 + i1 * g1
    o1 = sigma(b_o + p_o * c1)  # the output gate sees the new cell state
    f2, i2 = sigma(b_f + p_f * c1), sigma(b_i + p_i * c1)
    c2 = f2 * c1 + i2 * g1
    o2 = sigma(b_o + p_o * c2)
    expected = {"forget_gate": (f1, f2), "input_gate": (i1, i2), "output_gate": (o1, o2),
                "cell_state": (c1, c2), "hidden_state": (o1 * math.tanh(c1), o2 * math.tanh(c2))}
    for name, values in expected.items():
        torch.testing.assert_close(gates[name].flatten(), torch.tensor(values), msg=name)


def test_training_mode_gradients_flow_through_the_peephole_step_path():
    model = _model("peephole").train()
    loss = model(torch.randn(2, 16_000) * 0.1).logsumexp(-1).sum()
    loss.backward()
    for layer in model.recurrent.layers:
        assert layer.peephole.grad is not None and layer.peephole.grad.abs().sum() > 0


def test_bad_settings_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="cell must be one of"):
        ModelConfig(cell="transformer")
    with pytest.raises(ValueError, match="at least two distinct labels"):
        SpeechCommandsModel(ModelConfig(), ["yes"])
