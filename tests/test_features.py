"""MFCC front-end: shapes, units and device-independent, batch-independent features."""

import numpy as np
import torch

from speechcmd.model.features import MFCC, FeatureConfig
from conftest import tone


def test_one_second_gives_97_frames_of_40_coefficients():
    config = FeatureConfig()
    features = MFCC(config)(torch.zeros(3, 16_000))
    assert features.shape == (3, config.num_frames(16_000), 40) == (3, 97, 40)


def test_frames_follow_the_10_ms_hop():
    mfcc = MFCC()
    assert mfcc(torch.zeros(1, 32_000)).shape[1] == 1 + (32_000 - 512) // 160


def test_a_clip_gets_the_same_features_alone_or_in_a_batch():
    mfcc = MFCC()
    clip = torch.from_numpy(tone(300))
    loud = torch.from_numpy(tone(2000, amplitude=0.9))
    alone = mfcc(clip[None])[0]
    batched = mfcc(torch.stack([loud, clip]))[1]
    torch.testing.assert_close(alone, batched, atol=1e-4, rtol=1e-4)


def test_coefficients_are_torchaudios_mfcc_transform():
    # The front-end computes torchaudio's MFCC (same window, mel filters and DCT) in fewer ops; the
    # values must stay the transform's, for the recipe's 20 ms hop and the default 10 ms one.
    rng = np.random.default_rng(0)
    waveform = torch.from_numpy(rng.normal(0, 0.1, (3, 16_000)).astype(np.float32))
    waveform[1] *= 1e-4  # faint: the log's offset matters
    waveform[2, :8_000] = 0  # half digital silence
    for config in (FeatureConfig(), FeatureConfig(n_mfcc=20, hop_ms=20, window_mean_normalization=True)):
        mfcc = MFCC(config)
        reference = mfcc.mfcc(waveform).transpose(-1, -2)  # torchaudio.transforms.MFCC: (batch, n_mfcc, frames)
        torch.testing.assert_close(mfcc.coefficients(waveform), reference, atol=1e-4, rtol=1e-5)


def test_normalization_statistics_are_saved_with_the_module():
    mfcc = MFCC()
    mfcc.set_statistics(torch.full((40,), 2.0), torch.full((40,), 4.0))
    restored = MFCC()
    restored.load_state_dict(mfcc.state_dict())
    x = torch.from_numpy(tone())[None]
    torch.testing.assert_close(restored(x), (mfcc.raw(x) - 2.0) / 4.0)


def test_louder_tone_raises_energy_coefficient():
    mfcc = MFCC()
    quiet = mfcc(torch.from_numpy(tone(amplitude=0.01))[None])[0, :, 0].mean()
    loud = mfcc(torch.from_numpy(tone(amplitude=0.5))[None])[0, :, 0].mean()
    assert loud > quiet


def test_clips_shorter_than_one_frame_still_give_a_frame():
    assert MFCC()(torch.zeros(1, 100)).shape == (1, 1, 40)
    assert np.isfinite(MFCC()(torch.zeros(1, 100)).numpy()).all()
