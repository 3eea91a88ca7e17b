"""Stream context: a speech-embedding model whose windows hear the audio around them, with a stream
embedded once. What a user relies on: the live window and `classify` compute exactly what the
model computes for each window with its real surroundings, and a clip alone is a clip in silence."""

import numpy as np
import pytest
import torch

from speechcmd.model.checkpoint import load_model, save_checkpoint
from speechcmd.model.config import FeatureConfig, ModelConfig
from speechcmd.model.detection import DetectionPolicy
from speechcmd.model.features import EmbeddingStream, SpeechEmbedding
from speechcmd.model.inference import Classifier
from speechcmd.model.network import SpeechCommandsModel
from speechcmd.model.streaming import StreamingRecognizer

LABELS = ["_silence_", "_unknown_", "yes", "no"]
CONFIG = FeatureConfig.speech_embedding(stream_context=True)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Gliding tones switched on and off over faint noise: frames that differ from hop to hop."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    on = np.sin(2 * np.pi * 0.7 * t) > 0
    return (0.2 * np.sin(2 * np.pi * 300 * t * (1 + t)) * on + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(hidden_size=16, pooling="mean", features=CONFIG), LABELS).eval()
    model.frontend.set_statistics(torch.full((96,), 0.5), torch.full((96,), 3.0))
    return model


def with_context(audio: np.ndarray, start: int) -> torch.Tensor:
    """The window starting at `start` with `context_samples` of the stream (zeros before and after it) each side."""
    context = CONFIG.context_samples
    padded = np.concatenate([np.zeros(context, np.float32), audio, np.zeros(CONFIG.input_samples, np.float32)])
    return torch.from_numpy(padded[start : start + CONFIG.input_samples])[None]


def test_a_stream_embedded_once_gives_each_window_what_its_real_context_gives(model):
    audio = speechlike(3.0)
    stream = EmbeddingStream(model.frontend)
    rng = np.random.default_rng(1)
    pieces, at = [], 0
    while at < len(audio):  # blocks of any size, as a sound card delivers them
        size = int(rng.integers(1, 2500))
        pieces.append(stream.push(audio[at : at + size]))
        at += size
    pieces.append(stream.push(np.zeros(CONFIG.lookahead_samples + CONFIG.hop_samples, np.float32)))
    embedded = torch.cat(pieces)
    assert stream.count == len(embedded) >= 13 + (len(audio) - 16_000) // 1280
    for window in range(0, len(embedded) - 13, 5):
        with torch.no_grad():
            alone = model.frontend(with_context(audio, window * 1280), context_included=True)[0]
        torch.testing.assert_close(embedded[window : window + 13], alone, atol=2e-4, rtol=1e-4)


def test_a_clip_alone_is_the_clip_in_silence(model):
    clip = speechlike(1.0, seed=2)
    stream = EmbeddingStream(model.frontend)
    embedded = torch.cat([stream.push(clip), stream.push(np.zeros(CONFIG.lookahead_samples, np.float32))])
    with torch.no_grad():
        torch.testing.assert_close(model.frontend(torch.from_numpy(clip)[None])[0], embedded[:13], atol=2e-4, rtol=1e-4)


def test_its_floor_is_fixed_so_a_quiet_band_does_not_depend_on_the_loudest_one():
    quiet = torch.from_numpy(speechlike(1.0) * 1e-3)[None]
    loud_burst = quiet.clone()
    loud_burst[0, :800] = 0.9  # a loud click elsewhere in the window
    stream, window = SpeechEmbedding(CONFIG), SpeechEmbedding()
    later = slice(60, None)  # mel frames well after the click
    assert torch.equal(stream.log_mel(quiet)[:, later], stream.log_mel(loud_burst)[:, later])
    assert not torch.equal(window.log_mel(quiet)[:, later], window.log_mel(loud_burst)[:, later])  # the per-window floor moves


def test_the_live_window_and_classify_score_the_same_windows_alike_every_80_ms(model):
    audio = speechlike(4.0, seed=3)
    policy = DetectionPolicy.default_for(model)
    assert policy.hop_seconds == pytest.approx(0.08)
    live = StreamingRecognizer(model, policy, hop_seconds=0.1, with_gates=True)
    updates = [u for start in range(0, len(audio), 700) for u in live.push(audio[start : start + 700])]
    updates += live.push(np.zeros(CONFIG.lookahead_samples, np.float32))  # what comes after is silence
    scanned = list(Classifier(model, batch_size=7).window_probabilities([audio]))
    assert [round(u.time, 4) for u in updates] == [round(end, 4) for end, _ in scanned]
    assert np.diff([end for end, _ in scanned]) == pytest.approx(0.08)
    assert 4.0 - 0.08 < scanned[-1][0] <= 4.0  # every window that ends within the recording
    for update, (_, probabilities) in zip(updates, scanned):
        np.testing.assert_allclose(update.probabilities, probabilities, atol=1e-5)
        assert update.mfcc.shape == (13, 96) and update.gates[0]["forget_gate"].shape == (13, 16)
        assert len(update.window) == 16_000
    # ...and both are the model on each window with its real context around it
    end, probabilities = scanned[10]
    start = round(end * 16_000) - 16_000
    with torch.no_grad():
        features = model.frontend(with_context(audio, start), context_included=True)
        peak = torch.from_numpy(audio[start : start + 16_000]).abs().amax()[None]
        expected = model.logits_of_stream(features, peak).softmax(-1)[0].numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_muted_input_is_silence_in_a_stream(model):
    scanned = list(Classifier(model).window_probabilities([np.zeros(32_000, np.float32)]))
    assert scanned and all(LABELS[int(p.argmax())] == "_silence_" for _, p in scanned)


def test_a_detector_hop_off_the_80_ms_grid_is_one_sentence(model):
    with pytest.raises(ValueError, match="whole number of 80 ms, not 100 ms"):
        Classifier(model, policy=DetectionPolicy(hop_seconds=0.1)).scan([speechlike(2.0)])
    live = StreamingRecognizer(model, DetectionPolicy(hop_seconds=0.16))
    assert live.hop_samples == 1280  # drawn every 80 ms, decided every 160 ms
    with pytest.raises(ValueError, match="whole number of 80 ms"):
        live.policy = DetectionPolicy(hop_seconds=0.1)


def test_stream_context_round_trips_and_is_for_the_embedding_only(tmp_path, model):
    loaded = load_model(save_checkpoint(tmp_path / "m.pt", model))
    assert loaded.config.features.stream_context and loaded.config == model.config
    assert CONFIG.input_samples == 16_000 + 2 * 6080 and CONFIG.lookahead_samples == 5792
    with pytest.raises(ValueError, match="speech_embedding front-end only"):
        FeatureConfig(stream_context=True)
    with pytest.raises(ValueError, match="only a front-end with stream_context"):
        SpeechEmbedding().log_mel(torch.zeros(1, CONFIG.input_samples), context_included=True)


def test_a_file_played_in_the_window_ends_with_the_detections_classify_finds(model, tmp_path):
    """The last windows of a file wait for audio after them; at its end they hear silence there, in
    the window as in `classify`, so a command at the very end of a file is found by both."""
    from dataclasses import replace

    from speechcmd.app.file_source import FileSource
    from speechcmd.app.recognition_worker import RecognitionWorker
    from tests.conftest import write_wav

    says_yes = SpeechCommandsModel(model.config, LABELS, pretrained=False)
    says_yes.load_state_dict(model.state_dict())
    with torch.no_grad():
        says_yes.head.bias[LABELS.index("yes")] = 20.0  # every window that is not silent is "yes"
    policy = replace(DetectionPolicy.default_for(says_yes), suppression_seconds=0.5)
    audio = np.concatenate([np.zeros(40_000, np.float32), speechlike(1.5, seed=4)])  # speech up to the very end
    path = write_wav(tmp_path / "ends-talking.wav", audio)
    worker = RecognitionWorker()
    worker.set_model(says_yes.eval(), policy)
    source = FileSource.from_path(path, paced=False)
    assert source.recording  # played as it is, not padded as a short clip
    worker.set_source(source)
    found = []
    while worker.source is not None:
        worker.step()
        found += worker.take().detections
    scanned = Classifier(says_yes, policy=policy).scan([audio])
    assert [(d.label, round(d.end, 3)) for d in found] == [(d.label, round(d.end, 3)) for d in scanned]
    assert found and found[-1].end > len(audio) / 16_000 - 0.36  # decided on windows the end of the file completed


def test_a_window_with_its_context_scores_as_in_the_stream(model):
    audio = speechlike(3.0, seed=5)
    scanned = list(Classifier(model).window_probabilities([audio]))
    starts = [round(end * 16_000) - 16_000 for end, _ in scanned[3:6]]
    scenes = np.concatenate([with_context(audio, start).numpy() for start in starts])
    np.testing.assert_allclose(Classifier(model).probabilities_in_context(scenes), [p for _, p in scanned[3:6]], atol=1e-5)
    with pytest.raises(ValueError, match="with their context are 28160 samples"):
        Classifier(model).probabilities_in_context(scenes[:, :16_000])


def test_the_suites_noisy_words_are_the_same_with_the_room_going_on_around_them():
    """bench.robustness gives a stream-context model the noise around each window too: the window
    itself must be what a window model hears, mixed at the SNR it claims."""
    from bench.robustness import _mix, _noise_cuts
    from speechcmd.train.noise import measured_snr_db

    rng_words = np.random.default_rng(0)
    words = np.stack([speechlike(1.0, seed=k) * rng_words.uniform(0.1, 1) for k in range(4)])
    recordings = [np.random.default_rng(9).standard_normal(40_000).astype(np.float32) * 0.1]
    alone = _mix(words, _noise_cuts(recordings, 4, 16_000, np.random.default_rng(3)), 10)
    around = _mix(words, _noise_cuts(recordings, 4, 16_000, np.random.default_rng(3), context=6080), 10)
    assert around.shape == (4, 28_160)
    np.testing.assert_array_equal(around[:, 6080:-6080], alone)
    snr = measured_snr_db(torch.from_numpy(words), torch.from_numpy(alone))
    assert snr.numpy() == pytest.approx(10, abs=0.05)
    under, before = (alone - words).std(axis=1), around[:, :6080].std(axis=1)
    np.testing.assert_allclose(20 * np.log10(before / under), 0, atol=1.5)  # the same noise goes on before the window
