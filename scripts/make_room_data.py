"""Build the room-robust training folder and the held-out noise for the robustness suite.

    python scripts/make_room_data.py --out runs/room-data [--negatives 12 --command-takes 3]
    python scripts/make_room_data.py --download v0.02 ...   # the full dataset instead of the two subsets

Writes, deterministically (seed 0), nothing into the checkout's tracked files:
- `OUT/merged/`: speech_commands_12 and speech_commands_extra in one folder-per-label tree of
  symbolic links, so that `build_dataset` splits speakers over the union (the extra README's rule);
  the extra's 25 other words become `_unknown_` under the 12-label protocol. With `--download`, the
  full Speech Commands release (fetched into the cache by the downloader `speechcmd train
  --download` uses, or found there) alone: both subsets are cut from it. Its list files are not
  linked, so the speaker hash splits it as it splits the subsets.
- `OUT/merged/_background_noise_/`: the TRAINING noise kinds: four of the dataset's six recordings
  (white and pink noise, exercise bike, running tap) and synthesized ones: brown, blue and violet
  noise, 50 and 60 Hz mains hum with harmonics, clicks and knocks, resonant impacts (things set
  down, dishes, a door; added 2026-12-01, run E5) and babble of 3 to 7 espeak-ng talkers (many
  voices and variants).
- with `--negatives VOICES`, `OUT/synthetic/`: 101 words that are not commands (the confusable ones
  first: dog/down, five/right, two/go, cat/yes, bed/left, wow/no, of/off, cup/up, own/on, yet/yes...)
  and each command `--command-takes` times, in that many espeak-ng voices, all of them speakers the
  hash puts in the training split; and `OUT/merged_synthetic/`, merged plus those.
- `OUT/heldout_noise/`: the noise kinds training never hears under a word, for the robustness
  suite: the dataset's dishes and cat recordings (everyday noise), babble of flite talkers
  (5 talkers each; another synthesizer, other voices), and `talk_flite.wav`, five minutes of
  people talking: two of eight flite talkers at a time reading aloud, each voice changing talker
  every 5 to 15 s, a third of the sentences with a command in passing ("turn it on"); and the
  eight talkers alone in `OUT/heldout_talkers/`, for `speechcmd evaluate --streaming --talk`. Caveat: the dataset's own `_silence_` clips are cuts of all
  six recordings, so the held-out two were heard as silence, never under a word.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from itertools import islice
from pathlib import Path

import numpy as np
import soundfile as sf

from speechcmd.model.audio import load_audio
from speechcmd.train.data import DatasetError, link_clips, split_of
from speechcmd.train.download import DownloadError, default_cache_dir, download_speech_commands
from speechcmd.train.noise import babble, clicks, coloured_noise, conversation, impacts, mains_hum

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
TRAIN_RECORDINGS = ["white_noise.wav", "pink_noise.wav", "exercise_bike.wav", "running_tap.wav"]
HELD_OUT_RECORDINGS = ["doing_the_dishes.wav", "dude_miaowing.wav"]
SR = 16_000
# The bundled recipe's split (scripts/train_bundled_model.sh): validation fraction, test fraction, salt.
# Synthetic voices and babble of training speakers must land in its training split.
RECIPE_SPLIT = (0.08, 0.15, "speechcmd")

# Babble text: everyday words, none of the ten commands (babble under a word must not say one).
VOCABULARY = """the a of and to in is it that was he for with as his they be at one have this from or had
by hot but some what there we can out other were all your when use word how said an each she which do
their time if will way about many then them would write like so these her long make thing see him
two has look more day could come did my sound number most people over know water than call first who
may down side been now find any new work part take get place made live where after back little only
round man year came show every good me give our under name very through just form much great think
say help low line before turn cause same mean differ move right boy old too does tell sentence set
three want air well also play small end put home read hand port large spell add even land here must
big high such follow act why ask men change went light kind need house picture try us again animal
point mother world near build self earth father head stand own page should country found answer
school grow study still learn plant cover food sun four thought let keep eye never last door between
city tree cross since hard start might story saw far sea draw left late run while press close night
real life few north open seem together next white children begin got walk example ease paper often
always music those both mark book letter until mile river car feet care second group carry took rain
eat room friend began idea fish mountain once base hear horse cut sure watch colour face wood main
enough plain girl usual young ready above ever red list though feel talk bird soon body dog family
direct pose leave song measure state product black short numeral class wind question happen complete
ship area half rock order fire south problem piece told knew pass farm top whole king size heard best
hour better true during hundred am remember step early hold west ground interest reach fast five sing
listen six table travel less morning ten simple several vowel toward war lay against pattern slow
center love person money serve appear road map science rule govern pull cold notice voice fall power
town fine certain fly unit lead cry dark machine note wait plan figure star box noun field rest
correct able pound done beauty drive stood contain front teach week final gave green quick develop
sleep warm free minute strong special mind behind clear tail produce fact street inch lot nothing
course stay wheel full force blue object decide surface deep moon island foot yet busy test record
boat common gold possible plane age dry wonder laugh thousand ago ran check game shape yes""".split()
COMMANDS = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}
VOCABULARY = [w for w in VOCABULARY if w not in COMMANDS]

ESPEAK_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "croak", "whisper"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]


def sentences(rng: np.random.Generator, count: int) -> str:
    return ". ".join(" ".join(rng.choice(VOCABULARY, rng.integers(4, 12))) for _ in range(count)) + "."


def synthesize(command: list[str], text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "talker.wav"
        subprocess.run([*command, str(path), text] if command[0] == "espeak-ng" else [*command, path.as_posix(), "-t", text],
                       check=True, capture_output=True)
        return load_audio(path, SR)


def espeak_talker(rng: np.random.Generator) -> np.ndarray:
    voice = f"{rng.choice(ESPEAK_VOICES)}+{rng.choice(ESPEAK_VARIANTS)}"
    speed, pitch = int(rng.integers(120, 200)), int(rng.integers(20, 80))
    return synthesize(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w"], sentences(rng, 12))


def flite_talker(rng: np.random.Generator) -> np.ndarray:
    return synthesize(["flite", "-voice", str(rng.choice(FLITE_VOICES)), "--setf", f"duration_stretch={rng.uniform(0.8, 1.3):.2f}",
                       "--setf", f"int_f0_target_mean={rng.uniform(90, 220):.0f}", "-o"], sentences(rng, 12))


# Talk that says the commands in passing: a command is a word said to the app, not one heard in a
# sentence behind the user. Read by the held-out talkers of `talk_flite_*.wav`.
COMMAND_PHRASES = ["turn it on", "switch that off", "go up the stairs", "sit down for a minute", "take a left at the lights",
                   "that is right", "stop by the shop", "yes of course", "no not today", "let's go now", "turn the music up",
                   "put it down", "off we go", "on the left", "right away", "stop it", "go on then", "up and down the road"]


def talk_text(rng: np.random.Generator, count: int) -> str:
    """Sentences of everyday words, about one in three with a command phrase in it."""
    parts = []
    for _ in range(count):
        words = " ".join(rng.choice(VOCABULARY, rng.integers(4, 12)))
        parts.append(f"{words} {rng.choice(COMMAND_PHRASES)}" if rng.random() < 0.35 else words)
    return ". ".join(parts) + "."


def flite_reader(rng: np.random.Generator) -> np.ndarray:
    """A held-out talker reading aloud for a minute or two, command phrases among the sentences."""
    return synthesize(["flite", "-voice", str(rng.choice(FLITE_VOICES)), "--setf", f"duration_stretch={rng.uniform(0.9, 1.2):.2f}",
                       "--setf", f"int_f0_target_mean={rng.uniform(90, 220):.0f}", "-o"], talk_text(rng, 24))


def babble_tracks(talker, count: int, seconds: float, rng: np.random.Generator, talker_range: tuple[int, int]) -> list[np.ndarray]:
    tracks = []
    for _ in range(count):
        talkers = [talker(rng) for _ in range(int(rng.integers(*talker_range)))]
        tracks.append(babble(talkers, int(seconds * SR), rng))
    return tracks


# Synthetic negatives (`--negatives`): words that are not commands, spoken by espeak-ng voices (flite
# stays held out: the suite's babble is flite). First the ones a listener confuses with a command,
# then the dataset's other words, then everyday words a user says near the microphone. No command and
# no homophone of one ("know", "write"), nor a word that means one ("yeah", "nope").
NEGATIVE_WORDS = """dog dug dawn done town gown crown round doubt five fine light bright night white fight ride rice
two do goal gone ghost goat grow glow coat cat yet yell guess less mess chess bed led lift loft laughed theft lest
wow now snow toe new of cough golf awe own an in song cup pup hub app top shop stock step stomp spot hop
bird eight four happy house marvin nine one seven sheila six three tree zero backward forward follow learn visual
hello okay computer music lights play pause next hey thanks please water coffee table window phone time""".split()


def negative_speakers(count: int, validation_fraction: float, test_fraction: float, salt: str) -> list[str]:
    """Names for synthetic voices that the speaker hash puts in the training split, so that the
    validation and test speakers stay real people."""
    names = (f"espeak{k:04d}" for k in range(1_000_000))
    return list(islice((n for n in names if split_of(n, validation_fraction, test_fraction, salt) == "train"), count))


def write_synthetic(out: Path, voices: int, takes_of_commands: int, seed: int = 0) -> int:
    """`out/<word>/<voice>_nohash_<n>.wav` in `voices` espeak-ng voices (accent, variant, speed and
    pitch drawn per voice): every word of NEGATIVE_WORDS once, and each command `takes_of_commands`
    times (speed and pitch varied a little per take). The same voices say both, so that a
    synthesizer's timbre is no cue for `_unknown_` (with negatives alone, the demo recording's
    synthetic voices were heard as other words). Each word lies at a random level and position inside
    1 s over a faint recorded-like hiss (no digital silence around it: another shortcut)."""
    written = 0
    for k, speaker in enumerate(negative_speakers(voices, *RECIPE_SPLIT)):
        rng = np.random.default_rng([seed, k])  # one stream per voice: files already there change nothing
        voice = f"{rng.choice(ESPEAK_VOICES)}+{rng.choice(ESPEAK_VARIANTS)}"
        speed, pitch = int(rng.integers(110, 210)), int(rng.integers(20, 80))
        words = [(word, 0) for word in NEGATIVE_WORDS] + [(word, n) for word in sorted(COMMANDS) for n in range(takes_of_commands)]
        for word, n in words:
            path = out / word / f"{speaker}_nohash_{n}.wav"
            jitter = (int(rng.integers(-15, 16)), int(rng.integers(-8, 9))) if n else (0, 0)
            level, noise, place = rng.uniform(-20, -3), rng.uniform(-75, -55), rng.uniform()
            if path.exists():
                written += 1
                continue
            spoken = synthesize(["espeak-ng", "-v", voice, "-s", str(speed + jitter[0]), "-p", str(pitch + jitter[1]), "-w"], word)
            loud = np.nonzero(np.abs(spoken) > 0.01 * np.abs(spoken).max())[0]
            spoken = spoken[loud[0] : loud[-1] + 1][: SR - 800] if len(loud) else spoken[: SR - 800]
            clip = rng.normal(0, 10 ** (noise / 20), SR)
            start = 400 + int(place * (SR - len(spoken) - 800))
            clip[start : start + len(spoken)] += spoken / max(np.abs(spoken).max(), 1e-9) * 10 ** (level / 20)
            write(path, clip)
            written += 1
    return written


def write(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1, 1), SR, subtype="PCM_16")


def sources(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The clips' folder (downloaded if asked) and the extra one to merge with it, if any; every
    folder the run needs checked first, so that a wrong path is one sentence, not a half-built tree."""
    if args.download:
        cache = args.cache_dir.expanduser() if args.cache_dir else default_cache_dir()
        data = download_speech_commands(args.download, cache / "datasets", url=args.url, sha256=args.sha256)
    elif args.url or args.sha256:
        raise DatasetError("--url and --sha256 name a mirror of the --download archive; give --download v0.02 with them.")
    else:
        data = args.data
    if args.extra is not None:
        extra = args.extra
    else:  # the default: ../shared/data's extra where it is, never with the full release (it is cut from it)
        default = DATA / "speech_commands_extra"
        extra = default if not args.download and default.is_dir() else None
    for folder, what in ((data, "--data"), (extra, "--extra")):
        if folder is not None and not folder.is_dir():
            raise DatasetError(f"{folder}: no such folder ({what}); give the folder of clips, one sub-folder per label.")
    missing = [name for name in TRAIN_RECORDINGS + HELD_OUT_RECORDINGS if not (data / "_background_noise_" / name).is_file()]
    if missing:
        raise DatasetError(
            f"{data / '_background_noise_'}: {', '.join(missing)} missing; the room's noise kinds are the Speech Commands "
            "background recordings, so give a folder that has them (the dataset's own _background_noise_)."
        )
    return data, extra


def same_sources(out: Path, data: Path, extra: Path | None, download: str | None) -> None:
    """Record in `out/sources.json` which folders `out/merged` links; refuse to add other ones to a
    tree built from them (the subsets' tree and the full release's would mix into one data set)."""
    record, merged = out / "sources.json", out / "merged"
    wanted = {"data": str(data.resolve()), "extra": str(extra.resolve()) if extra else None}
    if record.exists():
        built = json.loads(record.read_text())
        if built != wanted:
            raise DatasetError(
                f"{out} was built from {built['data']}" + (f" and {built['extra']}" if built["extra"] else "")
                + f"; give another --out, or delete {out}, to build from other clips."
            )
    elif download and merged.exists() and any(merged.iterdir()):
        raise DatasetError(f"{merged} already holds clips from an earlier build; give another --out, or delete {out}, to build from the download.")
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(wanted, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "room-data")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, default=DATA / "speech_commands_12", help="the clips, folder per label, with _background_noise_ (default: %(default)s)")
    source.add_argument("--download", choices=["v0.01", "v0.02"], help="the full Speech Commands release instead, downloaded into the cache if it is not there")
    parser.add_argument("--url", help="with --download: a mirror's address for the archive (give its --sha256 too)")
    parser.add_argument("--sha256", help="with --download: the mirror's archive checksum")
    parser.add_argument("--cache-dir", type=Path, default=None, help="with --download: where datasets are kept (default: $SPEECHCMD_CACHE or ~/.cache/speechcmd)")
    parser.add_argument("--extra", type=Path, default=None,
                        help=f"more clips, folder per label, merged by speaker (default: {DATA / 'speech_commands_extra'} where it exists; none with --download)")
    parser.add_argument("--negatives", type=int, default=0, metavar="VOICES",
                        help="also write OUT/synthetic (non-command words and commands in this many espeak-ng voices) "
                             "and OUT/merged_synthetic (merged plus those), default: none")
    parser.add_argument("--command-takes", type=int, default=3, help="takes of each command per synthetic voice (default: %(default)s)")
    args = parser.parse_args()
    try:
        data, extra = sources(args)
        merged, heldout = args.out / "merged", args.out / "heldout_noise"
        same_sources(args.out, data, extra, args.download)
        counts = [link_clips(data, merged), link_clips(extra, merged) if extra else 0]
    except (DatasetError, DownloadError) as error:
        print(f"make_room_data: {error}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    print(f"linked {counts[0]} + {counts[1]} clips into {merged}", file=sys.stderr)

    noise = merged / "_background_noise_"
    noise.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_RECORDINGS:
        if not (noise / name).exists():
            os.symlink((data / "_background_noise_" / name).resolve(), noise / name)
    for colour in ("brown", "blue", "violet"):
        write(noise / f"synthetic_{colour}_noise.wav", coloured_noise(colour, 30 * SR, rng))
    for hz in (50, 60):
        write(noise / f"synthetic_hum_{hz}hz.wav", mains_hum(hz, 30 * SR, rng))
    write(noise / "synthetic_clicks.wav", clicks(60 * SR, rng))
    impact_rng = np.random.default_rng(7)  # a stream of its own, so the kinds above stay as they were
    for k in range(2):
        write(noise / f"synthetic_impacts_{k}.wav", impacts(60 * SR, impact_rng))
    for k, track in enumerate(babble_tracks(espeak_talker, 4, 60, rng, (3, 8))):
        write(noise / f"synthetic_babble_espeak_{k}.wav", track)

    for name in HELD_OUT_RECORDINGS:
        if not (heldout / name).exists():
            heldout.mkdir(parents=True, exist_ok=True)
            os.symlink((data / "_background_noise_" / name).resolve(), heldout / name)
    for k, track in enumerate(babble_tracks(flite_talker, 2, 60, rng, (5, 6))):
        write(heldout / f"babble_flite_{k}.wav", track)
    talk_rng = np.random.default_rng(11)  # a stream of its own, so the files above stay as they were
    readers = [flite_reader(talk_rng) for _ in range(8)]
    write(heldout / "talk_flite.wav", conversation(readers, 300 * SR, talk_rng))
    for k, reader in enumerate(readers):  # each talker alone too: `speechcmd evaluate --streaming --talk` mixes its own
        write(args.out / "heldout_talkers" / f"flite_reader_{k}.wav", reader)
    print(f"wrote training noise to {noise} and held-out noise to {heldout}", file=sys.stderr)
    if args.negatives > 0:
        written = write_synthetic(args.out / "synthetic", args.negatives, args.command_takes)
        both = args.out / "merged_synthetic"
        counts = [link_clips(merged, both), link_clips(args.out / "synthetic", both)]
        if not (both / "_background_noise_").exists():
            os.symlink(noise.resolve(), both / "_background_noise_")
        print(f"wrote {written} synthetic clips; linked {counts[0]} + {counts[1]} clips into {both}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
