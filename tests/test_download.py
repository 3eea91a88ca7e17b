"""The Speech Commands downloader, against a real HTTP server that each test starts on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from speechcmd.train import download
from speechcmd.train.download import RESUME_ATTEMPTS, DownloadError, default_cache_dir, download_speech_commands

FOLDER = "speech_commands_v0.02"
CUT_AFTER = 1000  # bytes a "cut" answer sends before the server drops the connection
VALIDATION_LIST = "yes/bbbb2222_nohash_0.wav\n"
TESTING_LIST = "no/cccc3333_nohash_0.wav\n"


def wav_bytes(seed: int, seconds: float = 0.1) -> bytes:
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, int(16_000 * seconds)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, noise, 16_000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


OFFICIAL_LAYOUT = {
    "yes/aaaa1111_nohash_0.wav": wav_bytes(1),
    "yes/bbbb2222_nohash_0.wav": wav_bytes(2),
    "no/aaaa1111_nohash_0.wav": wav_bytes(3),
    "no/cccc3333_nohash_0.wav": wav_bytes(4),
    "_background_noise_/white_noise.wav": wav_bytes(5, seconds=0.3),
    "validation_list.txt": VALIDATION_LIST.encode(),
    "testing_list.txt": TESTING_LIST.encode(),
}


def tar_gz(files: dict[str, bytes], prefix: str = "./", extra: list[tuple[str, bytes, str]] = ()) -> bytes:
    """A .tar.gz in memory; names start with './' as in the official archives. `extra` holds
    (name, tarfile type, link target) members added after the files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, kind, linkname in extra:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, linkname
            info.size = 4 if info.isfile() else 0
            tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ARCHIVE = tar_gz(OFFICIAL_LAYOUT)


class ArchiveServer:
    """Serves `body` at `url`; `script` says how each request in turn is answered:
    "cut" (drop the connection after CUT_AFTER bytes), "ignore-range", "corrupt", "missing" (404);
    requests beyond the script are answered properly, honouring Range. `requests` records each
    request's Range header (None when absent)."""

    def __init__(self, body: bytes, script: list[str] = ()):
        self.body, self.script, self.requests = body, list(script), []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.archive_server = self
        self.url = f"http://127.0.0.1:{self._http.server_port}/{FOLDER}.tar.gz"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02})
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=2)


class _Handler(BaseHTTPRequestHandler):
    timeout = 2  # every server socket is bounded too

    def do_GET(self):
        server: ArchiveServer = self.server.archive_server
        wanted = self.headers.get("Range")
        server.requests.append(wanted)
        how = server.script.pop(0) if server.script else "honour"
        body = server.body if how != "corrupt" else bytes(b ^ 0xFF for b in server.body)
        if how == "missing":
            self.send_error(404)
            return
        start = 0
        if wanted and how != "ignore-range":
            start = int(wanted.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:][:CUT_AFTER] if how == "cut" else body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture()
def serve():
    """serve(body, script) starts an ArchiveServer on 127.0.0.1 that is shut down after the test."""
    servers = []

    def start(body: bytes = ARCHIVE, script: list[str] = ()) -> ArchiveServer:
        servers.append(ArchiveServer(body, script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def fetch(server: ArchiveServer, cache, body: bytes = ARCHIVE, **options):
    options = {"sha256": sha256(body), "progress": False, "timeout": 2.0, **options}
    return download_speech_commands("v0.02", cache_dir=cache, url=server.url, **options)


def assert_official_layout(folder):
    for name, data in OFFICIAL_LAYOUT.items():
        assert (folder / name).read_bytes() == data, name


# --- downloading ---------------------------------------------------------------------------------


def test_downloads_verifies_and_unpacks_into_the_official_layout(tmp_path, serve):
    server = serve()

    folder = fetch(server, tmp_path, progress=True)

    assert folder == tmp_path / FOLDER
    assert_official_layout(folder)
    assert sf.info(str(folder / "yes" / "aaaa1111_nohash_0.wav")).samplerate == 16_000
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER], "archive, .part and staging folder are gone"


def test_a_dataset_already_unpacked_is_returned_without_contacting_the_server(tmp_path, serve):
    server = serve()
    first = fetch(server, tmp_path)

    again = fetch(server, tmp_path)

    assert again == first
    assert server.requests == [None], "only the first call downloaded"


def test_a_dropped_connection_is_resumed_with_a_range_request(tmp_path, serve):
    server = serve(script=["cut"])

    folder = fetch(server, tmp_path)

    assert server.requests == [None, f"bytes={CUT_AFTER}-"]
    assert_official_layout(folder)


def test_a_connection_that_keeps_dropping_keeps_the_part_file_and_the_next_run_resumes(tmp_path, serve):
    drops = RESUME_ATTEMPTS + 1
    server = serve(script=["cut"] * drops)

    with pytest.raises(DownloadError, match="run the same command again to resume"):
        fetch(server, tmp_path)
    part = tmp_path / f"{FOLDER}.tar.gz.part"
    assert part.stat().st_size == drops * CUT_AFTER
    assert not (tmp_path / FOLDER).exists()

    folder = fetch(server, tmp_path)

    assert server.requests[-1] == f"bytes={drops * CUT_AFTER}-"
    assert_official_layout(folder)


def test_a_server_that_ignores_range_makes_the_download_start_again_from_zero(tmp_path, serve):
    server = serve(script=["cut", "ignore-range"])

    folder = fetch(server, tmp_path)

    assert server.requests == [None, f"bytes={CUT_AFTER}-"]
    assert_official_layout(folder)  # the 200 answer replaced the .part file instead of being appended to it


def test_a_part_file_that_is_already_whole_is_used_when_the_server_answers_416(tmp_path, serve):
    server = serve()
    (tmp_path / f"{FOLDER}.tar.gz.part").write_bytes(ARCHIVE)

    folder = fetch(server, tmp_path)

    assert server.requests == [f"bytes={len(ARCHIVE)}-"]
    assert_official_layout(folder)


def test_a_corrupt_download_is_deleted_and_fetched_again_once(tmp_path, serve):
    server = serve(script=["corrupt"])

    folder = fetch(server, tmp_path)

    assert server.requests == [None, None]
    assert_official_layout(folder)


def test_a_checksum_that_never_matches_is_one_clear_error_and_leaves_nothing_behind(tmp_path, serve):
    server = serve()

    with pytest.raises(DownloadError, match=r"sha256 .* instead of 0{64}, twice") as error:
        fetch(server, tmp_path, sha256="0" * 64)

    assert len(server.requests) == 2, "fetched again exactly once"
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_checksum_is_refused_before_anything_is_downloaded(tmp_path, serve):
    server = serve()

    with pytest.raises(DownloadError, match="'abc' is not a sha256 checksum"):
        fetch(server, tmp_path, sha256="abc")

    assert server.requests == []


def test_an_http_error_names_the_url_and_the_status(tmp_path, serve):
    server = serve(script=["missing"])

    with pytest.raises(DownloadError, match=r"\.tar\.gz: the server answered HTTP 404"):
        fetch(server, tmp_path)


# --- no network ----------------------------------------------------------------------------------


def test_an_unreachable_host_is_one_sentence_and_fails_fast(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()

    with pytest.raises(DownloadError, match="could not reach 127.0.0.1 .*check the internet connection") as error:
        url = f"http://127.0.0.1:{port}/x.tar.gz"
        download_speech_commands(cache_dir=tmp_path, url=url, progress=False, timeout=2.0)

    assert time.monotonic() - started < 1.0
    assert "\n" not in str(error.value) and error.value.__cause__ is None and error.value.__suppress_context__


def test_a_server_that_never_answers_times_out_with_a_clear_sentence(tmp_path):
    with socket.socket() as silent:  # accepts connections in the backlog but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.tar.gz"
        started = time.monotonic()

        with pytest.raises(DownloadError, match=r"could not reach 127.0.0.1 \(timed out\)"):
            download_speech_commands(cache_dir=tmp_path, url=url, progress=False, timeout=0.3)

    assert time.monotonic() - started < 1.5


# --- unpacking -----------------------------------------------------------------------------------

FILE, SYMLINK, HARDLINK, DEVICE = tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.BLKTYPE
ESCAPES = {  # the offending member, then the members added to an otherwise official archive
    "dot-dot path": ("../../evil.txt", [("../../evil.txt", FILE, "")]),
    "absolute path": ("{outside}/evil.txt", [("{outside}/evil.txt", FILE, "")]),
    "symlink out": ("yes/escape", [("yes/escape", SYMLINK, "../../.."), ("yes/escape/evil.txt", FILE, "")]),
    "absolute symlink": ("yes/escape", [("yes/escape", SYMLINK, "{outside}")]),
    "symlink through a symlink": (
        "here/up",
        [("here", SYMLINK, "."), ("here/up", SYMLINK, ".."), ("here/up/evil.txt", FILE, "")],  # 'here/..' looks inside
    ),
    "hard link out": ("yes/hard", [("yes/hard", HARDLINK, "../../evil.txt")]),
    "device file": ("yes/disk", [("yes/disk", DEVICE, "")]),
}


@pytest.mark.parametrize("offender, members", ESCAPES.values(), ids=ESCAPES.keys())
def test_an_archive_member_that_reaches_outside_is_refused_and_nothing_is_written(tmp_path, serve, offender, members):
    cache = tmp_path / "cache"
    outside = str(tmp_path)
    members = [(name.format(outside=outside), kind, target.format(outside=outside)) for name, kind, target in members]
    body = tar_gz(OFFICIAL_LAYOUT, extra=members)
    server = serve(body)

    offender = offender.format(outside=outside)
    with pytest.raises(DownloadError, match=re.escape(f"refusing to unpack, member {offender!r}")):
        fetch(server, cache, body)

    assert list(tmp_path.iterdir()) == [cache], "nothing written beside the cache"
    assert list(cache.iterdir()) == [], "no dataset, no staging folder, and the unsafe archive deleted"


def test_an_interrupted_unpack_leaves_no_dataset_and_the_next_run_unpacks_the_kept_archive(
    tmp_path, serve, monkeypatch
):
    server = serve()
    real_extract, calls = tarfile.TarFile.extract, []

    def crash_midway(tar, member, *args, **kwargs):
        calls.append(member)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_extract(tar, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        fetch(server, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{FOLDER}.tar.gz"], "no half dataset, no staging left"

    monkeypatch.setattr(tarfile.TarFile, "extract", real_extract)
    folder = fetch(server, tmp_path)

    assert server.requests == [None], "the verified archive was reused"
    assert_official_layout(folder)


def test_an_archive_wrapped_in_one_top_folder_is_unwrapped(tmp_path, serve):
    body = tar_gz(OFFICIAL_LAYOUT, prefix="SpeechCommands/")
    server = serve(body)

    folder = fetch(server, tmp_path, body)

    assert_official_layout(folder)


def test_an_archive_without_the_speech_commands_layout_is_refused(tmp_path, serve):
    body = tar_gz({"README.md": b"not a dataset"})
    server = serve(body)

    with pytest.raises(DownloadError, match=r"does not have the Speech Commands layout \(no validation_list.txt\)"):
        fetch(server, tmp_path, body)

    assert list(tmp_path.iterdir()) == []


# --- arguments and cache -------------------------------------------------------------------------


def test_an_existing_incomplete_folder_is_reported_and_left_alone(tmp_path, serve):
    server = serve()
    (tmp_path / FOLDER / "yes").mkdir(parents=True)

    with pytest.raises(DownloadError, match=rf"{FOLDER}: exists but is not a complete .* delete it and run again"):
        fetch(server, tmp_path)

    assert server.requests == []
    assert (tmp_path / FOLDER / "yes").is_dir()


def test_an_unknown_version_names_the_versions_there_are(tmp_path):
    choices = "choose one of v0.01, v0.02, v0.02-test"
    with pytest.raises(DownloadError, match=f"unknown Speech Commands version 'v3'; {choices}"):
        download_speech_commands("v3", cache_dir=tmp_path)


def test_the_official_archives_carry_their_published_sha256():
    assert {version: archive.url for version, archive in download.ARCHIVES.items()} == {
        "v0.01": "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
        "v0.02": "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        "v0.02-test": "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz",
    }
    # torchaudio.datasets.speechcommands._CHECKSUMS (v0.01, v0.02); the test set's sha256 and size as
    # other projects that verify it publish them.
    assert {version: archive.sha256 for version, archive in download.ARCHIVES.items()} == {
        "v0.01": "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
        "v0.02": "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        "v0.02-test": "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df",
    }
    assert download.ARCHIVES["v0.02-test"].size == 112_563_277


def test_the_cache_is_SPEECHCMD_CACHE_else_XDG_CACHE_HOME_else_home_dot_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHCMD_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"

    monkeypatch.delenv("SPEECHCMD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "speechcmd"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "speechcmd"
