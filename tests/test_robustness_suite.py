"""The robustness suite (`bench.robustness`) measures every room it has recordings for, people
talking among them, on the speakers of the split it is asked for."""

import numpy as np

from bench.robustness import format_table, run_suite
from conftest import LABELS_12, tone, write_wav
from test_data import make_folder


def test_the_suite_scores_people_talking_as_clips_talk_alone_and_a_long_recording(tmp_path, tiny_model):
    data = make_folder(tmp_path / "data", speakers=12, clips_per_speaker=1)
    noise = tmp_path / "heldout_noise"
    rng = np.random.default_rng(0)
    write_wav(noise / "doing_the_dishes.wav", rng.normal(0, 0.05, 48_000).astype(np.float32))
    write_wav(noise / "talk_readers.wav", tone(180, 20.0, amplitude=0.2) * (1 + np.sin(np.linspace(0, 60, 320_000))).astype(np.float32))
    split = {"labels": LABELS_12, "validation_fraction": 0.3, "test_fraction": 0.3, "salt": "speechcmd", "unknown_fraction": 0.3, "seed": 0}

    report = run_suite(tiny_model, data, noise, "validation", split, stream_minutes=0.5, quiet_minutes=0.5)
    results = report["results"]
    for row in ("talk_snr_20", "talk_snr_10"):
        assert results[row]["n"] == results["clean_words"]["n"] > 0
    assert results["talk_only_taken_for_command"]["n"] == 200
    assert results["stream_talk_snr_10"]["seconds"] == 30.0
    # No babble recordings, no babble rows: each room is measured only where it has recordings.
    assert "babble_snr_20" not in results and "stream_babble_snr_10" not in results
    assert "stream_talk_snr_10" in format_table(report)
