"""The speech_embedding front-end: Google's network, ported exactly, frozen, saved with the model."""

from pathlib import Path

import numpy as np
import pytest
import torch

from speechcmd.model.checkpoint import load_model, save_checkpoint
from speechcmd.model.config import FeatureConfig, ModelConfig
from speechcmd.model.features import SpeechEmbedding
from speechcmd.model.network import SpeechCommandsModel

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def chirp() -> np.ndarray:
    """The signal `scripts/convert_speech_embedding.py` checks with: a 200 -> 3200 Hz sweep in faint noise."""
    t = np.arange(16_000) / 16_000
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.01 * rng.standard_normal(16_000)).astype(np.float32)


@pytest.fixture(scope="module")
def embedding_model():
    torch.manual_seed(0)
    return SpeechCommandsModel(ModelConfig(hidden_size=16, pooling="mean", features=FeatureConfig.speech_embedding()), LABELS)


def test_the_port_computes_what_googles_onnx_graphs_compute():
    # Reference: openwakeword 0.4.0's melspectrogram.onnx and embedding_model.onnx run by onnxruntime
    # on the chirp with 380 ms of zeros on each side (13 windows of 76 mel frames, every 8).
    expected = np.load(Path(__file__).parent / "data" / "speech_embedding_chirp.npy")
    frontend = SpeechEmbedding().load_pretrained()
    with torch.no_grad():
        embedding = frontend.raw(torch.from_numpy(chirp())[None])[0].numpy()
    assert embedding.shape == (13, 96) == expected.shape
    np.testing.assert_allclose(embedding, expected, atol=1e-3 * np.abs(expected).max())


def test_one_second_gives_13_frames_of_96_values_centred_across_the_window():
    config = FeatureConfig.speech_embedding()
    frames = SpeechEmbedding(config).load_pretrained()(torch.zeros(2, 16_000) + 1e-3)
    assert frames.shape == (2, config.num_frames(16_000), 96) == (2, 13, 96)
    first = config.first_frame_centre
    last = first + 12 * config.hop_samples
    assert 0 < first < 0.05 * 16_000 and 0.95 * 16_000 < last < 16_000  # 11 ms and 971 ms into the window


def test_a_clip_gets_the_same_embedding_alone_or_in_a_batch():
    frontend = SpeechEmbedding().load_pretrained()
    batch = torch.from_numpy(np.stack([chirp(), 0.01 * chirp()[::-1].copy()]))
    with torch.no_grad():
        torch.testing.assert_close(frontend.raw(batch)[1:], frontend.raw(batch[1:]), atol=1e-3, rtol=1e-4)  # values up to ~60


def test_clips_shorter_than_the_embedding_span_still_give_a_frame():
    frontend = SpeechEmbedding().load_pretrained()
    assert frontend(torch.full((1, 128), 0.01)).shape == (1, 1, 96)


def test_training_leaves_the_pretrained_front_end_untouched(embedding_model):
    before = {k: v.clone() for k, v in embedding_model.frontend.state_dict().items()}
    assert not list(embedding_model.frontend.parameters())  # nothing for an optimizer to move
    embedding_model.train()
    optimizer = torch.optim.AdamW(embedding_model.parameters(), lr=0.1, weight_decay=0.5)
    loss = embedding_model(torch.randn(4, 16_000) * 0.1).logsumexp(-1).sum()
    loss.backward()
    optimizer.step()
    embedding_model.eval()
    for name, value in embedding_model.frontend.state_dict().items():
        torch.testing.assert_close(value, before[name], msg=name)


def test_an_embedding_model_round_trips_through_a_checkpoint(tmp_path, embedding_model):
    embedding_model.frontend.set_statistics(torch.full((96,), 0.5), torch.full((96,), 2.0))
    loaded = load_model(save_checkpoint(tmp_path / "m.pt", embedding_model))
    assert loaded.config.features.kind == "speech_embedding" and loaded.config == embedding_model.config
    waveform = torch.from_numpy(chirp())[None]
    with torch.no_grad():
        torch.testing.assert_close(loaded(waveform), embedding_model.eval()(waveform))
        trace = loaded.trace(waveform)
    assert trace.mfcc.shape == (1, 13, 96) and trace.layers[0]["forget_gate"].shape == (1, 13, 16)


def test_the_embedding_settings_are_fixed_by_its_weights():
    with pytest.raises(ValueError, match="speech_embedding front-end is fixed"):
        FeatureConfig(kind="speech_embedding")
    with pytest.raises(ValueError, match="front-end kind"):
        FeatureConfig(kind="wav2vec")
    assert ModelConfig.from_dict(ModelConfig(features=FeatureConfig.speech_embedding()).to_dict()).features.kind == "speech_embedding"
    assert ModelConfig.from_dict({"features": {"n_mfcc": 20}}).features.kind == "mfcc"  # files from before the option


def test_unfreezing_the_top_convolutions_keeps_the_embedding_and_lets_only_them_learn():
    frontend = SpeechEmbedding().load_pretrained()
    names = list(frontend.state_dict())
    waveform = torch.from_numpy(chirp())[None]
    with torch.no_grad():
        before = frontend(waveform)
    tuned = frontend.unfreeze(3)
    assert [tuple(p.shape) for p in tuned] == [(96, 96, 1, 3), (96,), (96, 96, 3, 1), (96,), (96, 96, 3, 1)]
    assert sorted(frontend.state_dict()) == sorted(names)  # a checkpoint saved while tuning loads into a frozen front-end
    after = frontend(waveform)
    torch.testing.assert_close(after, before)
    after.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tuned)
    assert list(frontend.parameters()) == tuned
    with pytest.raises(ValueError, match="tune 1 to 20"):
        SpeechEmbedding().unfreeze(21)
