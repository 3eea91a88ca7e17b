"""`speechcmd adapt`: a folder of recordings in, a model that knows the new words out."""

from __future__ import annotations

import json

import numpy as np

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model
from conftest import LABELS_12, write_wav
from test_teach_takes import burst

QUICK = ["--steps", "30", "--copies", "2", "--folds", "2", "--no-replay"]


def takes_folder(root, counts: dict[str, int]):
    for label, count in counts.items():
        for k in range(count):
            write_wav(root / label / f"me_nohash_{k}.wav", burst(seed=hash(label) % 100 + k))
    return root


def test_adapt_writes_a_model_with_the_new_word_and_prints_the_report(tmp_path, tiny_checkpoint, capsys):
    data = takes_folder(tmp_path / "takes", {"lights": 4, "_silence_": 2})
    (data / "lights" / "broken.wav").write_bytes(b"")
    out = tmp_path / "taught.pt"
    code = main(["adapt", "--base", str(tiny_checkpoint), "--data", str(data), "--out", str(out), *QUICK])
    printed = capsys.readouterr()
    assert code == 0
    assert "learned 'lights'; the model now knows 13 labels." in printed.out
    assert "held-out takes (rows: recorded as" in printed.out
    assert "skipped " in printed.err and "broken.wav: the file is empty" in printed.err
    model = load_model(out)
    assert model.labels == LABELS_12 + ["lights"]
    assert model.metadata["takes"] == {"_silence_": 2, "lights": 4}
    assert model.metadata["command"].startswith("speechcmd adapt --base")
    assert model.metadata["takes_folder"] == str(data.resolve())


def test_adapt_json_report_names_the_output(tmp_path, tiny_checkpoint, capsys):
    data = takes_folder(tmp_path / "takes", {"lights": 3, "music": 3})
    out = tmp_path / "taught.pt"
    assert main(["adapt", "--base", str(tiny_checkpoint), "--data", str(data), "--out", str(out), "--json", *QUICK]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new_words"] == ["lights", "music"] and report["out"] == str(out)
    assert np.array(report["confusion"]["matrix"]).sum() == 6


def test_adapt_refuses_too_few_takes_and_missing_folders_in_one_sentence(tmp_path, tiny_checkpoint, capsys):
    data = takes_folder(tmp_path / "takes", {"lights": 2})
    out = tmp_path / "taught.pt"
    assert main(["adapt", "--base", str(tiny_checkpoint), "--data", str(data), "--out", str(out), *QUICK]) == 2
    assert "speechcmd adapt: Too few takes of 'lights' (2)" in capsys.readouterr().err
    assert not out.exists()
    assert main(["adapt", "--base", str(tiny_checkpoint), "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "nothing: no such folder" in capsys.readouterr().err
    assert main(["adapt", "--base", str(tiny_checkpoint), "--data", str(data), "--out", str(out), "--folds", "1"]) == 2
    assert "--folds must be a whole number from 2 to" in capsys.readouterr().err
