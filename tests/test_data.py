"""Datasets: labels from folders, speaker-disjoint deterministic splits, official lists honoured."""

import numpy as np
import pytest

from speechcmd.train.data import (
    SILENCE,
    UNKNOWN,
    ClipCache,
    DatasetError,
    build_dataset,
    resolve_labels,
    scan_folder,
    speaker_of,
    trained_speakers,
)
from conftest import tone, write_wav

WORDS = ["yes", "no", "up", "cat"]


def make_folder(root, speakers=30, clips_per_speaker=2, words=WORDS, noise=True, shared_speakers=False):
    """`shared_speakers`: every speaker says every word, as in Speech Commands."""
    rng = np.random.default_rng(0)
    for w, word in enumerate(words):
        for s in range(speakers):
            for n in range(clips_per_speaker):
                samples = tone(200 + 150 * w, 1.0, amplitude=0.3) + rng.normal(0, 0.01, 16_000).astype(np.float32)
                speaker = f"spk{s:03d}" if shared_speakers else f"spk{s:03d}{word[0]}"
                write_wav(root / word / f"{speaker}_nohash_{n}.wav", samples)
    if noise:
        write_wav(root / "_background_noise_" / "white.wav", rng.normal(0, 0.1, 48_000).astype(np.float32))
    return root


def test_speaker_is_the_part_before_nohash():
    from pathlib import Path

    assert speaker_of(Path("yes/0a7c2a8d_nohash_1.wav")) == "0a7c2a8d"
    assert speaker_of(Path("_unknown_/bed_0a7c2a8d_nohash_0.wav")) == "0a7c2a8d"
    assert speaker_of(Path("mine/recording3.wav")) == "recording3"


def test_label_sets():
    assert resolve_labels("12", []) == [SILENCE, UNKNOWN, "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    assert resolve_labels("35", ["yes", "cat", "_unknown_"]) == [SILENCE, "cat", "yes"]
    assert resolve_labels("yes, no,_unknown_", []) == ["yes", "no", UNKNOWN]
    with pytest.raises(DatasetError):
        resolve_labels("yes", [])


def test_words_outside_the_label_set_become_unknown(tmp_path):
    dataset = build_dataset(make_folder(tmp_path), "yes,no,_unknown_", 0.2, 0.2)
    words = {clip.word for items in dataset.splits.values() for clip, y in items if dataset.labels[y] == UNKNOWN}
    assert words == {"up", "cat"}


def test_many_other_words_are_subsampled_to_the_unknown_fraction_and_a_larger_one_keeps_them(tmp_path):
    # One command against seven other words: unknown far outnumbers a tenth of the data.
    root = make_folder(tmp_path, words=["yes", "cat", "dog", "bed", "bird", "wow", "tree", "house"], noise=False)
    for fraction, most in ((0.1, 0.15), (0.5, 0.55)):
        dataset = build_dataset(root, "yes,_unknown_", 0.2, 0.2, unknown_fraction=fraction)
        train = [dataset.labels[y] for _, y in dataset.splits["train"]]
        assert train.count(UNKNOWN) / len(train) == pytest.approx(fraction, abs=0.05) and train.count(UNKNOWN) / len(train) < most
    with pytest.raises(DatasetError, match="unknown_fraction must be"):
        build_dataset(root, "yes,_unknown_", 0.2, 0.2, unknown_fraction=1.0)


def test_splits_are_speaker_disjoint_and_cover_every_label(tmp_path):
    dataset = build_dataset(make_folder(tmp_path, shared_speakers=True), "yes,no,up,cat", 0.2, 0.2)
    train, validation, test = (dataset.speakers(name) for name in ("train", "validation", "test"))
    assert not (train & validation) and not (train & test) and not (validation & test)
    splits_of_speaker = {}
    for name, items in dataset.splits.items():
        for clip, _ in items:
            splits_of_speaker.setdefault(clip.speaker, set()).add(name)
    assert len(splits_of_speaker) == 30 and all(len(splits) == 1 for splits in splits_of_speaker.values())
    for name, counts in dataset.counts().items():
        assert set(counts) == {"yes", "no", "up", "cat"}, name


def test_splits_are_deterministic_and_the_salt_changes_them(tmp_path):
    root = make_folder(tmp_path)
    first = build_dataset(root, "yes,no,up,cat", 0.2, 0.2)
    again = build_dataset(root, "yes,no,up,cat", 0.2, 0.2)
    salted = build_dataset(root, "yes,no,up,cat", 0.2, 0.2, salt="other")
    assert first.speakers("test") == again.speakers("test")
    assert first.speakers("test") != salted.speakers("test")


def test_a_smaller_validation_share_never_moves_test_speakers(tmp_path):
    root = make_folder(tmp_path, speakers=60, clips_per_speaker=1)
    wide = build_dataset(root, "yes,no,up,cat", 0.3, 0.2)
    narrow = build_dataset(root, "yes,no,up,cat", 0.05, 0.2)
    assert wide.speakers("test") == narrow.speakers("test")
    assert narrow.speakers("validation") < wide.speakers("validation")


def test_a_refit_on_the_validation_speakers_is_known_to_have_heard_them_and_never_the_test_speakers(tmp_path):
    """A model's own split tells a suite which speakers it trained on, so that a refit on train +
    validation (`--validation-fraction 0`) is never scored on its validation speakers as if new."""
    root = make_folder(tmp_path, speakers=60, clips_per_speaker=1)
    recipe = build_dataset(root, "yes,no,up,cat", 0.2, 0.2)
    refit = build_dataset(root, "yes,no,up,cat", 0.0, 0.2)
    as_saved = {"split_parameters": refit.split_parameters, "split": refit.split_rule}
    assert trained_speakers(as_saved, recipe.speakers("validation")) == recipe.speakers("validation")
    assert trained_speakers(as_saved, recipe.speakers("test")) == set()
    same = {"split_parameters": recipe.split_parameters, "split": recipe.split_rule}
    assert trained_speakers(same, recipe.speakers("validation") | recipe.speakers("test")) == set()
    assert trained_speakers(same, recipe.speakers("train")) == recipe.speakers("train")
    assert trained_speakers({}, recipe.speakers("train")) == set()  # no record: nothing claimed


def test_fractions_are_respected_roughly(tmp_path):
    dataset = build_dataset(make_folder(tmp_path, speakers=100, clips_per_speaker=1), "yes,no,up,cat", 0.1, 0.3)
    total = sum(len(items) for items in dataset.splits.values())
    assert 0.2 < len(dataset.splits["test"]) / total < 0.4
    assert 0.03 < len(dataset.splits["validation"]) / total < 0.2


def test_official_list_files_are_honoured(tmp_path):
    root = make_folder(tmp_path, speakers=5, clips_per_speaker=1)
    (root / "validation_list.txt").write_text("yes/spk000y_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("no/spk001n_nohash_0.wav\nup/spk002u_nohash_0.wav\n")
    dataset = build_dataset(root, "yes,no,up,cat")
    assert dataset.split_rule == "official lists"
    assert [c.path.name for c, _ in dataset.splits["validation"]] == ["spk000y_nohash_0.wav"]
    assert sorted(c.path.name for c, _ in dataset.splits["test"]) == ["spk001n_nohash_0.wav", "spk002u_nohash_0.wav"]


def test_background_noise_is_not_a_word(tmp_path):
    dataset = build_dataset(make_folder(tmp_path), "35", 0.2, 0.2)
    assert "_background_noise_" not in dataset.labels and len(dataset.noise_files) == 1


def test_a_missing_or_empty_folder_is_one_sentence(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset folder"):
        build_dataset(tmp_path / "nope")
    (tmp_path / "yes").mkdir()
    with pytest.raises(DatasetError, match="no audio files"):
        build_dataset(tmp_path)


def test_clip_cache_decodes_once_and_pads_to_one_second(tmp_path):
    root = make_folder(tmp_path / "data", speakers=2, clips_per_speaker=1, words=["yes"], noise=False)
    write_wav(root / "yes" / "short_nohash_0.wav", tone(440, 0.5))
    clips = scan_folder(root)
    cache = ClipCache(clips, tmp_path / "cache", progress=False)
    assert cache.samples.shape == (3, 16_000) and cache.samples.dtype == np.int16
    short = [k for k, c in enumerate(clips) if c.path.name.startswith("short")][0]
    assert np.abs(cache.samples[short, 8_000:]).max() == 0 and np.abs(cache.samples[short, :8_000]).max() > 10_000
    mtime = cache.path.stat().st_mtime_ns
    assert ClipCache(clips, tmp_path / "cache", progress=False).path.stat().st_mtime_ns == mtime


def test_a_full_disk_while_building_the_cache_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import os

    root = make_folder(tmp_path / "data", speakers=2, clips_per_speaker=1, words=["yes"], noise=False)

    def disk_full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", disk_full, raising=False)
    with pytest.raises(DatasetError, match="No space left on device"):
        ClipCache(scan_folder(root), tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_without_a_silence_folder_silence_is_cut_from_the_background_noise(tmp_path):
    root = make_folder(tmp_path / "data", speakers=40, clips_per_speaker=1, words=["yes", "no", "cat"])
    dataset = build_dataset(root, "12", 0.2, 0.2)
    for name, counts in dataset.counts().items():
        total = sum(counts.values())
        assert 0.05 < counts[SILENCE] / total < 0.15, name  # about a tenth, as in the standard protocol
    silence = [clip for clip, y in dataset.splits["train"] if dataset.labels[y] == SILENCE]
    cache = ClipCache([clip for clip, _ in dataset.splits["train"]], tmp_path / "cache", progress=False)
    rows = [k for k, (clip, y) in enumerate(dataset.splits["train"]) if dataset.labels[y] == SILENCE]
    levels = np.abs(cache.samples[rows]).max(axis=1)
    assert len(silence) == len(rows) > 0 and (levels > 0).mean() > 0.8  # noise, at random gains
    assert len({clip.noise_cut for clip in silence}) == len(silence)


def test_a_silence_folder_is_used_as_it_is(tmp_path):
    root = make_folder(tmp_path / "data", speakers=20, clips_per_speaker=1, words=["yes", "no"])
    for k in range(20):
        write_wav(root / "_silence_" / f"{k}.wav", np.zeros(16_000, np.float32))
    dataset = build_dataset(root, "12", 0.2, 0.2)
    silence = [clip for items in dataset.splits.values() for clip, y in items if dataset.labels[y] == SILENCE]
    assert len(silence) == 20 and all(clip.noise_cut is None for clip in silence)


def test_silence_clips_are_not_counted_as_speakers(tmp_path):
    root = make_folder(tmp_path / "data", speakers=20, clips_per_speaker=1, words=["yes", "no"])
    dataset = build_dataset(root, "12", 0.2, 0.2)
    for name in ("train", "validation", "test"):
        assert all(speaker.startswith("spk") for speaker in dataset.speakers(name)), name


def test_two_data_sets_linked_into_one_tree_split_speakers_over_their_union(tmp_path):
    from speechcmd.train.data import link_clips

    first = make_folder(tmp_path / "first", speakers=6, words=["yes", "no"])
    second = make_folder(tmp_path / "second", speakers=4, words=["no", "cat"], noise=False)
    for path in (second / "no").iterdir():  # the second set's speakers are other people
        path.rename(path.with_name("x" + path.name))
    merged = tmp_path / "merged"
    assert link_clips(first, merged) + link_clips(second, merged) == 6 * 2 * 2 + 4 * 2 * 2
    assert link_clips(first, merged) == 0  # again: nothing new, nothing refused
    assert not (merged / "_background_noise_").exists()
    assert {c.word for c in scan_folder(merged)} == {"yes", "no", "cat"} and len(scan_folder(merged)) == 40
    copy = tmp_path / "copy" / "yes" / "spk000y_nohash_0.wav"  # the same recording in another folder
    copy.parent.mkdir(parents=True)
    copy.write_bytes((first / "yes" / copy.name).read_bytes())
    assert link_clips(copy.parent.parent, merged) == 0  # a subset merged with its dataset: skipped
    assert (merged / "yes" / copy.name).resolve() == (first / "yes" / copy.name).resolve()
    clash = write_wav(tmp_path / "clash" / "yes" / copy.name, tone(900.0, 1.0))  # another recording, the same name
    with pytest.raises(DatasetError, match="two different clips with this name"):
        link_clips(clash.parent.parent, merged)


def test_background_recordings_beyond_the_memory_budget_are_refused_before_they_are_decoded(tmp_path, monkeypatch):
    from speechcmd.train import data
    from speechcmd.train.data import DatasetError, load_noise

    files = [write_wav(tmp_path / f"noise{k}.wav", np.zeros(16_000 * 3, np.float32)) for k in range(2)]
    monkeypatch.setattr(data, "MAX_NOISE_SECONDS", 5.0)
    decoded = []
    real = data.load_audio
    monkeypatch.setattr(data, "load_audio", lambda path, *args: decoded.append(path) or real(path, *args))
    with pytest.raises(DatasetError, match=r"noise1.wav: the background recordings add up to more than 0 minutes"):
        load_noise(files)
    assert decoded == [files[0]]  # the one over the budget was judged by its header alone
    assert len(load_noise(files[:1])) == 48_000
