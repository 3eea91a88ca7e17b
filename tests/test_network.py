"""The recurrent network: the step path that exposes every gate equals the fused path."""

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
    model = _model("lstm")
    with torch.no_grad():
        g = model.trace(torch.randn(1, 16_000) * 0.1, steps=True).layers[1]
    for name in ("forget_gate", "input_gate", "output_gate"):
        assert 0 <= g[name].min() and g[name].max() <= 1
    assert g["candidate"].abs().max() <= 1
    c_prev = torch.cat([torch.zeros_like(g["cell_state"][:, :1]), g["cell_state"][:, :-1]], dim=1)
    torch.testing.assert_close(g["cell_state"], g["forget_gate"] * c_prev + g["input_gate"] * g["candidate"])
    torch.testing.assert_close(g["hidden_state"], g["output_gate"] * torch.tanh(g["cell_state"]))


def test_gru_hidden_state_interpolates_between_candidate_and_previous_state():
    model = _model("gru")
    with torch.no_grad():
        g = model.trace(torch.randn(1, 16_000) * 0.1, steps=True).layers[0]
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
