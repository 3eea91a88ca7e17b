"""`scripts/make_room_data.py`, the bundled recipe's data: built from the full Speech Commands
release fetched from a server this test starts on 127.0.0.1 (`--download`), and kept from mixing
with a tree built from other clips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_download import ArchiveServer, sha256, tar_gz, wav_bytes

from speechcmd.train.data import build_dataset, scan_folder, split_of

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_room_data.py"
RECORDINGS = ["white_noise", "pink_noise", "exercise_bike", "running_tap", "doing_the_dishes", "dude_miaowing"]
WORDS = ["yes", "no", "dog", "cat"]  # two commands, two other words: the release's layout, one folder per word
# Speakers of all three of the recipe's splits (validation 8%, test 15%, salt "speechcmd"), four of each.
NAMES = [f"{k:04x}beef" for k in range(400)]
SPEAKERS = sorted(sum(([n for n in NAMES if split_of(n, 0.08, 0.15, "speechcmd") == split][:4] for split in ("train", "validation", "test")), []))


def full_release() -> dict[str, bytes]:
    files = {f"{word}/{speaker}_nohash_0.wav": wav_bytes(100 * w + s) for w, word in enumerate(WORDS) for s, speaker in enumerate(SPEAKERS)}
    files |= {f"_background_noise_/{name}.wav": wav_bytes(k, seconds=1.0) for k, name in enumerate(RECORDINGS)}
    # The release's own split lists, which the recipe does not use: its speaker hash splits the release.
    return files | {"validation_list.txt": f"yes/{SPEAKERS[0]}_nohash_0.wav\n".encode(), "testing_list.txt": f"no/{SPEAKERS[1]}_nohash_0.wav\n".encode()}


def make_room_data(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def served_release():
    archive = tar_gz(full_release())
    server = ArchiveServer(archive)
    yield server.url, sha256(archive)
    server.close()


def test_the_room_data_is_built_from_the_full_release_downloaded_and_split_by_the_recipes_speaker_hash(tmp_path, served_release):
    url, checksum = served_release
    out = tmp_path / "room-data"
    done = make_room_data("--download", "v0.02", "--url", url, "--sha256", checksum, "--cache-dir", str(tmp_path / "cache"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    release = tmp_path / "cache" / "datasets" / "speech_commands_v0.02"
    assert (release / "yes").is_dir()  # unpacked into the cache, where the next run finds it

    merged = out / "merged"
    clips = scan_folder(merged)
    assert len(clips) == len(WORDS) * len(SPEAKERS)  # the release alone: no subset of ../shared/data linked in
    assert {c.path.resolve().parent.parent for c in clips} == {release.resolve()}
    noise = {p.name for p in (merged / "_background_noise_").iterdir()}
    assert {"white_noise.wav", "pink_noise.wav", "exercise_bike.wav", "running_tap.wav", "synthetic_impacts_0.wav"} <= noise
    assert not noise & {"doing_the_dishes.wav", "dude_miaowing.wav"}  # held out of training for the suite
    assert {p.name for p in (out / "heldout_noise").iterdir()} >= {"doing_the_dishes.wav", "dude_miaowing.wav", "babble_flite_0.wav"}

    dataset = build_dataset(merged, labels="12", validation_fraction=0.08, test_fraction=0.15, salt="speechcmd")
    everyone = set().union(*(dataset.speakers(split) for split in ("train", "validation", "test")))
    assert everyone == set(SPEAKERS)  # every speaker placed by the hash, none dropped by the release's lists
    train = {dataset.labels[y] for _, y in dataset.splits["train"]}
    assert {"yes", "no", "_unknown_", "_silence_"} <= train  # other words are unknown; silence is cut from the noise

    # The next build into the same folder from other clips is refused, naming the folder: nothing mixes.
    other = tmp_path / "subset"
    for name, data in full_release().items():
        if name.startswith(("yes/", "_background_noise_/")):
            (other / name).parent.mkdir(parents=True, exist_ok=True)
            (other / name).write_bytes(data)
    refused = make_room_data("--data", str(other), "--out", str(out))
    assert refused.returncode == 1
    assert str(out) in refused.stderr and "another --out" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert len(scan_folder(merged)) == len(WORDS) * len(SPEAKERS)


def test_a_folder_without_the_background_recordings_is_one_sentence_before_anything_is_written(tmp_path):
    bare = tmp_path / "bare"
    (bare / "yes").mkdir(parents=True)
    (bare / "yes" / "aaaa1111_nohash_0.wav").write_bytes(wav_bytes(1))
    done = make_room_data("--data", str(bare), "--extra", str(bare), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "_background_noise_" in done.stderr and "white_noise.wav" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    missing = make_room_data("--data", str(bare), "--extra", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 1 and "nowhere: no such folder (--extra)" in missing.stderr
