"""The network at its edges: the cell-state scan for every length of window (1 step, powers of two
and one past them), the silence gate exactly at its level, dropout only between layers and only in
training, and the fewest labels a model may have."""

import pytest
import torch

from speechcmd.model.network import ModelConfig, Recurrent, SpeechCommandsModel, cell_states

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def stepwise(forget: torch.Tensor, written: torch.Tensor) -> torch.Tensor:
    """c_t = f_t * c_{t-1} + w_t, one step at a time from c_{-1} = 0."""
    c, states = torch.zeros_like(written[:, 0]), []
    for t in range(forget.shape[1]):
        c = forget[:, t] * c + written[:, t]
        states.append(c)
    return torch.stack(states, dim=1)


@pytest.mark.parametrize("steps", [*range(1, 18), 31, 32, 33, 49, 64, 65])
def test_the_cell_state_scan_equals_the_step_recurrence_for_any_number_of_steps(steps):
    generator = torch.Generator().manual_seed(steps)
    forget = torch.rand(2, steps, 3, generator=generator, dtype=torch.float64)
    written = torch.randn(2, steps, 3, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(cell_states(forget, written), stepwise(forget, written), rtol=1e-12, atol=1e-12)


def tiny(**settings) -> SpeechCommandsModel:
    torch.manual_seed(0)
    return SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1, **settings), LABELS).eval()


def test_a_window_whose_loudest_sample_is_exactly_at_the_silence_gate_is_heard():
    model = tiny()  # the gate: -60 dBFS, a peak of 0.001
    logits = torch.zeros(3, len(LABELS))
    logits[:, LABELS.index("yes")] = 5.0  # the network hears "yes" in each
    gated = model.gate_silence_peaks(torch.tensor([0.001, 0.000999, 0.5]), logits)
    torch.testing.assert_close(gated[0], logits[0])  # at the gate: what the network says
    torch.testing.assert_close(gated[2], logits[2])
    assert gated[1].tolist() == [30.0, -30.0, -30.0, -30.0]  # just below: certain silence


def test_a_window_below_the_gate_is_certain_silence_however_the_network_scores_it():
    model = tiny()
    waveform = torch.zeros(2, 16_000)
    waveform[1, 100] = 0.5  # one window heard, one muted
    logits = torch.full((2, len(LABELS)), 5.0)
    logits[:, LABELS.index("yes")] = 50.0
    gated = model.gate_silence(waveform, logits)
    # logits of +30 for silence and -30 for the rest: every other label below 1e-26
    assert gated[0].tolist() == [30.0, -30.0, -30.0, -30.0]
    torch.testing.assert_close(gated[1], logits[1])
    assert model(waveform)[0].tolist() == [30.0, -30.0, -30.0, -30.0]


def test_the_silence_gate_follows_its_setting():
    logits = torch.zeros(1, len(LABELS))
    logits[0, LABELS.index("yes")] = 5.0
    quieter = tiny(silence_gate_dbfs=-40.0)  # a peak of 0.01
    assert quieter.gate_silence_peaks(torch.tensor([0.00999]), logits).tolist() == [[30.0, -30.0, -30.0, -30.0]]
    torch.testing.assert_close(quieter.gate_silence_peaks(torch.tensor([0.01]), logits), logits)


def test_a_speech_embedding_model_starts_from_the_shipped_embedding_unless_told_not_to():
    from speechcmd.model.config import FeatureConfig

    config = ModelConfig(hidden_size=4, num_layers=1, features=FeatureConfig.speech_embedding())
    torch.manual_seed(0)
    default = SpeechCommandsModel(config, LABELS).frontend.state_dict()
    torch.manual_seed(0)
    shipped = SpeechCommandsModel(config, LABELS, pretrained=True).frontend.state_dict()
    torch.manual_seed(0)
    blank = SpeechCommandsModel(config, LABELS, pretrained=False).frontend.state_dict()
    assert all(torch.equal(default[k], shipped[k]) for k in shipped)
    assert not all(torch.equal(blank[k], shipped[k]) for k in shipped)


def test_without_a_gate_or_a_silence_label_a_muted_window_is_scored_by_the_network():
    muted = torch.zeros(1, 16_000)
    logits = torch.arange(len(LABELS), dtype=torch.float32)[None]
    torch.testing.assert_close(tiny(silence_gate_dbfs=None).gate_silence(muted, logits), logits)
    torch.manual_seed(0)
    no_silence = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), ["_unknown_", "yes", "no", "up"]).eval()
    torch.testing.assert_close(no_silence.gate_silence(muted, logits), logits)


def test_dropout_acts_only_between_layers_and_only_in_training():
    torch.manual_seed(0)
    recurrent = Recurrent("lstm", 4, 6, 2, dropout=0.9)
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        recurrent.eval()
        first_alone = recurrent.layers[0](x)
        torch.testing.assert_close(recurrent(x), recurrent.layers[1](first_alone))  # no dropout when deciding
        recurrent.train()
        _, gates = recurrent.trace(x)
        # the features reach the first layer untouched...
        torch.testing.assert_close(gates[0]["hidden_state"], first_alone)
        # ...and what passes to the second is dropped (most of it, at 0.9)
        assert not torch.allclose(recurrent(x), recurrent.layers[1](first_alone))


@pytest.mark.parametrize(("labels", "ok"), [(["_silence_", "yes"], True), (["yes"], False), (["yes", "yes", "no"], False)])
def test_a_model_needs_at_least_two_distinct_labels(labels, ok):
    config = ModelConfig(hidden_size=4, num_layers=1)
    if ok:
        assert SpeechCommandsModel(config, labels).labels == labels
    else:
        with pytest.raises(ValueError, match="at least two distinct labels"):
            SpeechCommandsModel(config, labels)


@pytest.mark.parametrize(("cell", "names"), [
    ("lstm", ("forget_gate", "input_gate", "candidate", "output_gate", "cell_state", "hidden_state")),
    ("peephole", ("forget_gate", "input_gate", "candidate", "output_gate", "cell_state", "hidden_state")),
    ("gru", ("reset_gate", "update_gate", "candidate", "hidden_state")),
])
def test_a_model_names_the_gates_its_cell_has(cell, names):
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(cell=cell, hidden_size=4, num_layers=1), LABELS)
    assert model.gate_names == names


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tracing_uses_the_fast_recomputation_unless_the_step_loop_is_asked_for(cell):
    # the live display traces every window: the step loop gives the same values (to rounding) far slower
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(cell=cell, hidden_size=8, num_layers=2), LABELS).eval()
    waveform = torch.randn(1, 16_000) * 0.1
    with torch.no_grad():
        features = model.frontend(waveform)
        fast = [layer.trace for layer in model.recurrent.layers]
        first, first_gates = fast[0](features)
        _, second_gates = fast[1](first)
        for trace in (model.trace(waveform), model.trace_features(features, waveform.abs().amax(dim=-1))):
            assert torch.equal(trace.layers[0]["candidate"], first_gates["candidate"])
            assert torch.equal(trace.layers[1]["candidate"], second_gates["candidate"])
        assert torch.equal(model.recurrent.trace(features)[1][1]["candidate"], second_gates["candidate"])


def test_a_format_1_peephole_tensor_is_split_into_as_many_layers_as_it_has():
    from speechcmd.model.network import upgrade_state_dict

    peepholes = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)  # 2 layers, (p_i, p_f, p_o), 5 units
    upgraded = upgrade_state_dict({"recurrent.peephole": peepholes, "head.bias": torch.zeros(4)})
    assert sorted(upgraded) == ["head.bias", "recurrent.layers.0.peephole", "recurrent.layers.1.peephole"]
    assert torch.equal(upgraded["recurrent.layers.1.peephole"], peepholes[1])
