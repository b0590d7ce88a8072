"""The ``llamacpp`` backend: any GGUF model through llama-cpp-python, in process.

``LlamaCppBackend`` is composed of one class per concern; the first four are layers, each built
on the one before it, and the chat template stands on the engine alone:

* :mod:`.engine`: loading and closing the model, its tokens (``ids(text)``), what fits;
* :mod:`.prefix`: the main context's KV cache, reused for the prefix a sequence shares with the last;
* :mod:`.streams`: batched generation in independent KV streams, and CoT follow-ups scored from them;
* :mod:`.scoring`: the contract's continuation log-probs, sequence log-probs and generation;
* :mod:`.chat`: chat prompts in the GGUF's own template.

:mod:`.numerics` says how decodes are cut so that every number is the same whatever was scored
before, in whichever order, alone or in a batch; :mod:`.greedy` decodes one prompt greedily, the
same way in the main context and in a stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from promptsel import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    BackendError,
    TokenMemo,
    default_model_path,
    file_fingerprint,
    option,
)

from .chat import ChatTemplate
from .engine import cpu_count
from .scoring import Scoring

#: Default context size, capped at the model's training context. 8192 holds the longest IMDB
#: review (~3,300 tokens) with its template, or a CoT turn; for SmolLM2-135M its f16 KV cache
#: is 23 KB a token (189 MB at 8192).
DEFAULT_N_CTX = 8192
_TOKEN_CACHE_MAX = 8192
#: Prompts generated together (KV streams of the generation context).
DEFAULT_N_PARALLEL = 16


class LlamaCppBackend(Scoring, ChatTemplate, Backend):
    """A GGUF model in llama.cpp. ``model=None`` is the embedded default (SmolLM2-135M-Instruct).

    Options: ``n_ctx`` (default 8192, capped at the model's training context), ``n_threads``
    (default: every usable core), ``n_batch`` (tokens per decode, default 512), ``n_gpu_layers``
    (layers offloaded by a GPU build of llama.cpp; default 0), ``seed`` (kept for sampling
    engines; greedy decoding ignores it), ``prefix_reuse`` (default true), ``n_parallel`` (prompts
    generated together, default 16; 1 generates one at a time; the text is the same either way),
    ``repack`` (llama.cpp's repacked weight layouts, AMX among them; default false: its AMX
    kernels crash some machines).
    """

    backend_id = "llamacpp"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})
    reuses_prefix: ClassVar[bool] = True
    #: One request per call: the progress bar moves, and the cache is written, per sequence.
    chunk_size = 1

    @dataclass(frozen=True)
    class Options(Backend.Options):
        # GPU kernels give different numbers from CPU ones; the other options do not change them
        # (n_parallel neither: each prompt decodes in its own KV stream, bit-identical to one at a time).
        n_ctx: int = option(DEFAULT_N_CTX, key=False, minimum=16)
        #: None: every usable core.
        n_threads: int | None = option(None, key=False, minimum=1)
        n_batch: int = option(512, key=False, minimum=8)
        n_gpu_layers: int = option(0, minimum=-1)
        seed: int = option(0, key=False, minimum=0)
        prefix_reuse: bool = option(True, key=False)
        n_parallel: int = option(DEFAULT_N_PARALLEL, key=False, minimum=1)
        #: Other kernels, other last digits: in keys only when set, so scores stored before stay valid.
        repack: bool = option(False, key="set")

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        o = self.options
        self.path = self._resolve(model)
        self.n_ctx, self.n_threads, self.n_batch = o.n_ctx, o.n_threads or cpu_count(), o.n_batch
        self.n_gpu_layers, self.seed, self.prefix_reuse = o.n_gpu_layers, o.seed, o.prefix_reuse
        self.repack = o.repack
        self.n_parallel = self.generate_batch = o.n_parallel
        self._fingerprint: str | None = None
        self._llm: Any = None
        self._tokens = TokenMemo(_TOKEN_CACHE_MAX)
        self._streams: Any = None
        self._formatters: dict[bool, Any] = {}
        #: Work done: tokens of the sequences asked for, tokens evaluated (decoded), tokens generated.
        self.counters = {"requested": 0, "evaluated": 0, "generated": 0}

    @staticmethod
    def _resolve(model: str | None) -> Path:
        if model is None:
            return default_model_path()
        path = Path(model).expanduser()
        if not path.is_file():
            raise BackendError(
                f"GGUF model file not found: {path}.",
                hint="Pass the path of a .gguf file with --model, or leave --model out for the default model.",
            )
        return path

    # --- identity -------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.path.stem if self.path.suffix == ".gguf" else self.path.name

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = file_fingerprint(self.path)
        return self._fingerprint

    def versions(self) -> dict[str, str]:
        try:
            return {"llama-cpp-python": metadata.version("llama-cpp-python")}
        except metadata.PackageNotFoundError:
            return {}
