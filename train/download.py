"""Fetch the Speech Commands dataset (Warden, 2018) into a local cache and unpack it.

`download_speech_commands("v0.02")` returns the unpacked folder: one sub-folder per label,
`_background_noise_`, `validation_list.txt` and `testing_list.txt`. A folder that is already there
is returned without touching the network. Otherwise the archive is streamed into a `.part` file
(resumed with an HTTP Range request after a dropped connection), checked against its published
sha256, and unpacked into a hidden sibling folder that is renamed into place only when complete,
so a half-unpacked dataset never looks ready. Every failure a user can cause or fix (no network, a
corrupt download, a full disk, an unsafe archive) is a `DownloadError` with one sentence.

HTTP goes through the standard library (urllib) only.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

from speechcmd.train.locks import FolderBusy, folder_lock

TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole download
RESUME_ATTEMPTS = 3  # dropped connections survived within one call before giving up
CHUNK_BYTES = 1 << 20
# A server that trickles (a byte every 2 s never trips the socket timeout) counts as a dropped
# connection: fewer than STALL_BYTES in STALL_SECONDS. So every call ends within about
# (RESUME_ATTEMPTS + 1) x STALL_SECONDS of no real progress.
STALL_SECONDS = 60.0
STALL_BYTES = 64 << 10
MAX_ARCHIVE_BYTES = 8 << 30  # a body of unknown length is cut off here (v0.02 is 2.4 GB)
USER_AGENT = "speechcmd-downloader/1"
_DATA_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12 / 3.11.4
_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()


class DownloadError(RuntimeError):
    """The dataset could not be fetched or unpacked; the message is one sentence saying what to do."""


@dataclass(frozen=True)
class Archive:
    """One published Speech Commands archive and what a complete unpacked copy contains."""

    version: str
    url: str
    sha256: str
    size: int  # bytes; for the progress bar and to spot a .part file larger than the archive
    expected: tuple[str, ...]  # entries at the top of a complete unpacked copy

    @property
    def filename(self) -> str:
        return PurePosixPath(urllib.parse.urlsplit(self.url).path).name

    @property
    def folder(self) -> str:
        return self.filename.removesuffix(".tar.gz")


# sha256 of v0.01 and v0.02: torchaudio/datasets/speechcommands.py (_CHECKSUMS); sha256 and sizes of
# v0.02 and its test set: tensorflow/datasets url_checksums/speech_commands.txt; v0.01 size: the
# "Successfully downloaded speech_commands_v0.01.tar.gz (1488293908 bytes)" line of TF's train.py.
_SPLIT_LAYOUT = ("validation_list.txt", "testing_list.txt", "_background_noise_", "yes", "no")
ARCHIVES = {
    archive.version: archive
    for archive in (
        Archive(
            "v0.01",
            "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
            "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
            1_488_293_908,
            _SPLIT_LAYOUT,
        ),
        Archive(
            "v0.02",
            "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
            "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
            2_428_923_189,
            _SPLIT_LAYOUT,
        ),
        # The canonical 12-label test set: yes..go plus _silence_ and _unknown_ folders, no split lists.
        Archive(
            "v0.02-test",
            "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz",
            "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df",
            112_563_277,
            ("yes", "no", "_silence_", "_unknown_"),
        ),
    )
}


def default_cache_dir() -> Path:
    """`$SPEECHCMD_CACHE`, else `$XDG_CACHE_HOME/speechcmd`, else `~/.cache/speechcmd`."""
    if os.environ.get("SPEECHCMD_CACHE"):
        return Path(os.environ["SPEECHCMD_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "speechcmd"


def download_speech_commands(
    version: str = "v0.02",
    cache_dir: str | os.PathLike | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Return the unpacked Speech Commands `version` under `cache_dir`, downloading it if needed.

    `url` replaces the official address (a mirror); `sha256` replaces the official checksum and
    must be given for any archive other than the official one. Raises `DownloadError`.
    """
    if version not in ARCHIVES:
        raise DownloadError(
            f"unknown Speech Commands version {version!r}; choose one of {', '.join(ARCHIVES)}."
        )
    archive = ARCHIVES[version]
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / archive.folder
    if target.exists():
        _require_layout(target, archive)
        return target

    url = url or archive.url
    sha256 = (sha256 or archive.sha256).lower()
    if len(sha256) != 64 or not set(sha256) <= set("0123456789abcdef"):
        raise DownloadError(f"{sha256!r} is not a sha256 checksum; give the 64 hex digits of the archive's sha256.")
    size = archive.size if sha256 == archive.sha256 else None  # the published size belongs to that file
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(
            f"{cache}: cannot create the cache folder ({error.strerror}); "
            "pass --cache-dir DIR or set SPEECHCMD_CACHE to a writable folder."
        ) from None
    tarball = cache / archive.filename
    try:
        with folder_lock(cache, "downloading Speech Commands"):
            if target.exists():  # another run finished it while this one waited to start
                _require_layout(target, archive)
                return target
            _fetch_verified(url, tarball, sha256, size, progress, timeout)
            _unpack_atomically(tarball, target, archive, url, progress)
            tarball.unlink()
    except FolderBusy as error:
        raise DownloadError(f"{error}; wait for it to finish, then run again.") from None
    return target


def _missing(folder: Path, archive: Archive) -> str | None:
    return next((name for name in archive.expected if not (folder / name).exists()), None)


def _require_layout(folder: Path, archive: Archive) -> None:
    missing = _missing(folder, archive)
    if missing is not None:
        raise DownloadError(
            f"{folder}: exists but is not a complete Speech Commands {archive.version} folder "
            f"(no {missing}); delete it and run again."
        )


# --- download -----------------------------------------------------------------------------------


def _fetch_verified(url: str, tarball: Path, sha256: str, size: int | None, progress: bool, timeout: float) -> None:
    """Leave at `tarball` a file with the expected sha256, fetching it at most twice."""
    for _ in range(2):
        if not tarball.exists():
            _download(url, tarball, size, progress, timeout)
        actual = _sha256_of(tarball, progress)
        if actual == sha256:
            return
        tarball.unlink()
    raise DownloadError(
        f"{url}: the downloaded archive has sha256 {actual} instead of {sha256}, twice; "
        "it was deleted, try again later or check the URL and checksum."
    )


def _sha256_of(path: Path, progress: bool) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=f"checking {path.name}", disable=not progress
    ) as bar:
        while block := file.read(CHUNK_BYTES):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


class _Interrupted(Exception):
    """The connection dropped mid-body; what arrived is kept in the .part file."""


def _download(url: str, tarball: Path, size: int | None, progress: bool, timeout: float) -> None:
    """Stream `url` into `tarball`, resuming from `tarball.part` where an earlier try stopped."""
    part = tarball.with_name(tarball.name + ".part")
    interruptions = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        response, start, total = _request(url, offset, timeout)
        if response is None:  # 416: the server has nothing past `offset`
            if total in (None, offset):
                break
            part.unlink()  # the .part file is not a prefix of this archive
            continue
        if start not in (0, offset):
            response.close()
            if not offset:
                raise DownloadError(f"{url}: the server sent a part of the file nobody asked for; try again later.")
            part.unlink()  # a range we did not ask for: start again from zero
            continue
        try:
            with response:
                _copy(response, part, start, total or size, progress)
            break
        except _Interrupted as error:
            interruptions += 1
            if interruptions > RESUME_ATTEMPTS:
                have = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"{url}: the connection dropped {interruptions} times ({error}), "
                    f"{have:,} bytes kept in {part}; run the same command again to resume."
                ) from None
    os.replace(part, tarball)


def _request(url: str, offset: int, timeout: float) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """Open `url` from byte `offset`: (response or None for 416, first byte sent, total size)."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            return None, offset, _content_range(error.headers.get("Content-Range"))[1]
        raise DownloadError(
            f"{url}: the server answered HTTP {error.code} {error.reason}; check the URL or try again later."
        ) from None
    except ValueError:  # urllib's word for a malformed or unsupported URL
        raise DownloadError(f"{url}: not a valid http(s) URL; check the address.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        reason = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        host = urllib.parse.urlsplit(url).hostname or url
        raise DownloadError(
            f"could not reach {host} ({reason}); check the internet connection, "
            "or pass --data DIR with a Speech Commands folder you already have."
        ) from None
    if response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range"))
        return response, (offset if start is None else start), total
    length = response.headers.get("Content-Length")
    return response, 0, int(length) if length and length.isdigit() else None


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-999/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000)."""
    if not header or not header.startswith("bytes "):
        return None, None
    span, _, total = header[len("bytes "):].partition("/")
    first = span.partition("-")[0]
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


def _copy(response: http.client.HTTPResponse, part: Path, start: int, total: int | None, progress: bool) -> None:
    """Write the body after byte `start` of `part` (a 200 answer truncates it); raise _Interrupted if cut short."""
    length = response.headers.get("Content-Length")
    expected = int(length) if length and length.isdigit() else None
    limit = total if total is not None else MAX_ARCHIVE_BYTES
    received = 0
    mark_time, mark_received = time.monotonic(), 0
    try:
        with open(part, "ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"),
            disable=not progress,
        ) as bar:
            while True:
                try:
                    block = response.read1(CHUNK_BYTES)  # what has arrived: read() would wait for a whole chunk
                except (OSError, http.client.HTTPException) as error:
                    raise _Interrupted(str(error) or type(error).__name__) from None
                if not block:
                    break
                if start + received + len(block) > limit:
                    out.close()
                    part.unlink()
                    raise DownloadError(
                        f"{response.url}: the server sent more than the {limit:,} bytes expected; "
                        "the download was deleted, check the URL."
                    )
                out.write(block)
                received += len(block)
                bar.update(len(block))
                now = time.monotonic()
                if now - mark_time >= STALL_SECONDS:
                    if received - mark_received < STALL_BYTES:
                        raise _Interrupted(f"fewer than {STALL_BYTES:,} bytes came in {STALL_SECONDS:g} s")
                    mark_time, mark_received = now, received
    except OSError as error:
        raise DownloadError(
            f"{part}: cannot write the download ({error.strerror}); "
            "free some space or pass --cache-dir DIR on a disk with room."
        ) from None
    if expected is not None and received < expected:
        raise _Interrupted(f"got {received:,} of {expected:,} bytes")


# --- unpacking ----------------------------------------------------------------------------------


def _unpack_atomically(tarball: Path, target: Path, archive: Archive, url: str, progress: bool) -> None:
    """Unpack into a hidden sibling of `target`, then rename it into place in one step."""
    for stale in target.parent.glob(f".{target.name}.*.partial"):  # left by a killed earlier run
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        _safe_extract(tarball, staging, progress)
        root = _dataset_root(staging, archive)
        if root is None:
            tarball.unlink()
            raise DownloadError(
                f"{url}: the archive does not have the Speech Commands layout "
                f"(no {_missing(staging, archive)}); it was deleted, check the URL."
            )
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(root, 0o777 & ~umask)  # mkdtemp's 0700 would hide the dataset from other users
        try:
            os.rename(root, target)
        except OSError:
            if not target.exists():
                raise
            _require_layout(target, archive)  # another run finished first
    except OSError as error:
        raise DownloadError(
            f"{target.parent}: cannot unpack the dataset here ({error.strerror}); "
            "free some space or pass --cache-dir DIR on a disk with room."
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _dataset_root(staging: Path, archive: Archive) -> Path | None:
    """The folder holding the layout: `staging` itself (official archives) or its only sub-folder."""
    if _missing(staging, archive) is None:
        return staging
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and _missing(entries[0], archive) is None:
        return entries[0]
    return None


def _safe_extract(tarball: Path, staging: Path, progress: bool) -> None:
    try:
        with tarfile.open(tarball, "r:gz") as tar, tqdm(
            unit=" files", desc=f"unpacking {tarball.name}", disable=not progress
        ) as bar:
            for member in tar:
                problem = _escape(member, staging)
                if problem:
                    raise _Unsafe(f"member {member.name!r} {problem}")
                tar.extract(member, staging, **_DATA_FILTER)
                bar.update()
    except (_Unsafe, *_FILTER_ERRORS) as error:  # the data filter is the second line of defence
        tarball.unlink()
        raise DownloadError(
            f"{tarball}: refusing to unpack, {error}; the archive was deleted, check where it came from."
        ) from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        tarball.unlink()
        raise DownloadError(
            f"{tarball}: not a readable .tar.gz archive ({error}); it was deleted, run again to fetch it anew."
        ) from None


class _Unsafe(Exception):
    """An archive member would be written, or would point, outside the unpack folder."""


def _escape(member: tarfile.TarInfo, staging: Path) -> str | None:
    """How `member` would reach outside `staging`, or None if it stays inside."""
    name = member.name
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the dataset folder with '..'"
    if member.isdev():
        return "is a device file"
    root = os.path.realpath(staging)

    def outside(path: str) -> bool:  # realpath follows the links unpacked so far
        return os.path.commonpath([root, os.path.realpath(path)]) != root

    if outside(os.path.join(root, name)):
        return "would be written through a link to outside the dataset folder"
    if member.issym() and (
        os.path.isabs(member.linkname) or outside(os.path.join(root, os.path.dirname(name), member.linkname))
    ):
        return f"is a symlink to {member.linkname!r}, outside the dataset folder"
    if member.islnk() and (os.path.isabs(member.linkname) or outside(os.path.join(root, member.linkname))):
        return f"is a hard link to {member.linkname!r}, outside the dataset folder"
    return None
