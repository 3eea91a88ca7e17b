"""`speechcmd classify`: tables and JSON lines for clips, recordings and bad inputs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import bundled_model_path
from conftest import tone, write_wav


def run(capsys, *argv):
    code = main(["classify", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


def test_json_line_for_a_clip_has_label_score_and_top_k(tmp_path, capsys, tiny_checkpoint):
    clip = write_wav(tmp_path / "tone.wav", tone())
    code, out, _ = run(capsys, "--json", "--top-k", 4, "--model", tiny_checkpoint, clip)
    (result,) = json_lines(out)
    assert code == 0
    assert set(result) == {"path", "label", "score", "top"}
    assert len(result["top"]) == 4 and result["top"][0] == [result["label"], result["score"]]
    assert [s for _, s in result["top"]] == sorted((s for _, s in result["top"]), reverse=True)


def _bad_inputs(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "random.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "text.wav").write_text("hello")
    good = write_wav(tmp_path / "full.wav", tone())
    (tmp_path / "truncated.wav").write_bytes(good.read_bytes()[:20])
    return [tmp_path / n for n in ("empty.wav", "random.wav", "text.wav", "truncated.wav")]


def test_bad_inputs_fail_alone_with_one_sentence_and_a_nonzero_exit(tmp_path, capsys, tiny_checkpoint):
    good = write_wav(tmp_path / "good" / "silence.wav", np.zeros(16_000, np.float32))
    stereo = write_wav(tmp_path / "good" / "stereo48k.wav", np.stack([tone(440, 1.0, 48_000)] * 2, 1), 48_000)
    bad = _bad_inputs(tmp_path / "bad")
    code, out, err = run(capsys, "--json", "--model", tiny_checkpoint, good, *bad, stereo)
    results = json_lines(out)
    assert code == 1
    assert [r["path"] for r in results] == [str(p) for p in (good, *bad, stereo)]
    assert "label" in results[0] and "label" in results[-1]
    for result in results[1:-1]:
        assert set(result) == {"path", "error"}
        assert result["path"] in result["error"] and "\n" not in result["error"]
    assert "Traceback" not in err


def test_human_output_is_a_readable_table(tmp_path, capsys, tiny_checkpoint):
    clip = write_wav(tmp_path / "tone.wav", tone())
    bad = tmp_path / "bad.wav"
    bad.write_text("x")
    code, out, err = run(capsys, "--model", tiny_checkpoint, clip, bad)
    assert code == 1
    assert str(clip) in out and "error:" in out and "1 of 2 files could not be classified" in err


def test_folders_are_searched_recursively(tmp_path, capsys, tiny_checkpoint):
    for name in ("a/one.wav", "a/b/two.wav"):
        write_wav(tmp_path / name, tone())
    code, out, _ = run(capsys, "--json", "--model", tiny_checkpoint, tmp_path)
    assert code == 0 and len(json_lines(out)) == 2


def test_bad_model_file_is_one_sentence_and_exit_2(tmp_path, capsys):
    clip = write_wav(tmp_path / "tone.wav", tone())
    model = tmp_path / "model.pt"
    model.write_text("not a model")
    code, out, err = run(capsys, "--model", model, clip)
    assert code == 2 and out == "" and str(model) in err and len(err.strip().splitlines()) == 1


def test_no_audio_found_is_an_error(tmp_path, capsys, tiny_checkpoint):
    code, _, err = run(capsys, "--model", tiny_checkpoint, tmp_path)
    assert code == 2 and "no audio files" in err


def test_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "speechcmd.app.cli", "classify", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for explained in ("a bundled model's name (speechcmd-lstm, the default, or speechcmd-mfcc-lstm) or a model file", "how many labels to list", "one JSON object per line",
                      "detection threshold for long recordings", "auto (CUDA when available), cpu or cuda"):
        assert explained in " ".join(result.stdout.split())


def test_top_level_help_lists_the_subcommands():
    result = subprocess.run([sys.executable, "-m", "speechcmd.app.cli", "--help"], capture_output=True, text=True)
    for command in ("classify", "train", "evaluate", "gui"):
        assert command in result.stdout


@pytest.mark.skipif(not bundled_model_path().exists(), reason="the bundled model has not been trained yet")
def test_bundled_model_is_the_default(tmp_path, capsys, tiny_checkpoint):
    clip = write_wav(tmp_path / "t.wav", tone(700, amplitude=0.2))
    code, default, _ = run(capsys, "--json", clip)
    _, bundled, _ = run(capsys, "--json", "--model", bundled_model_path(), clip)
    _, tiny, _ = run(capsys, "--json", "--model", tiny_checkpoint, clip)
    assert code == 0
    assert json_lines(default) == json_lines(bundled) != json_lines(tiny)


def test_detections_of_a_long_recording_line_up_past_10_and_100_seconds():
    from speechcmd.app.cli import format_result

    detections = [{"start": start, "end": start + 0.8, "label": label, "score": 0.9, "top": [[label, 0.9], ["_unknown_", 0.05]]}
                  for start, label in ((1.2, "yes"), (9.6, "stop"), (12.4, "go"), (123.45, "off"))]
    rows = format_result({"path": "long.wav", "detections": detections}).splitlines()[1:]
    assert len(rows) == 4
    columns = {row.index(label) for row, label in zip(rows, ("yes", "stop", "go", "off"))}
    assert len(columns) == 1, rows


def test_output_to_a_full_device_is_one_sentence_not_a_traceback(tmp_path, tiny_checkpoint):
    clip = write_wav(tmp_path / "tone.wav", tone())
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "speechcmd.app.cli", "classify", "--model", str(tiny_checkpoint), str(clip)],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["speechcmd classify: could not write the output (No space left on device); free some space or write it elsewhere."]


def test_a_file_name_with_escape_sequences_cannot_drive_the_terminal(tmp_path, capsys, tiny_checkpoint):
    clip = write_wav(tmp_path / "evil\x1b[2Jname\nsecond line.wav", tone())
    code, out, err = run(capsys, "--model", tiny_checkpoint, clip)
    assert code == 0
    assert "\x1b" not in out and "\\x1b[2Jname\\nsecond line.wav" in out
    assert len(out.splitlines()) == 2  # the name's line and the label's: the newline did not split it


def test_evaluate_skips_a_long_recording_by_its_header_without_scanning_it(tmp_path, capsys, tiny_checkpoint, monkeypatch):
    from speechcmd.model import inference

    for k in range(2):
        write_wav(tmp_path / "data" / "yes" / f"spk{k}_nohash_0.wav", tone())
    long = write_wav(tmp_path / "data" / "yes" / "spk9_nohash_0.wav", np.tile(tone(), 30))
    monkeypatch.setattr(inference, "stream_audio", lambda *args: pytest.fail("the long recording was decoded"))
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"skipped {long}: 30.0 s long, not a clip of up to 1.5 s" in err
    assert "on 2 clips" in out
