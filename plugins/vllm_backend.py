"""The ``vllm`` backend: a ``vllm.LLM`` in this process, on the GPU(s) of a CUDA machine.

vLLM is imported only when the engine is first needed (``promptsel --help`` and machines
without vLLM never import it), and the engine (``vllm.LLM``) is created on first use.

Log-probs come from ``prompt_logprobs``, never from generated tokens: each text to score is sent
as token ids (a ``TokensPrompt``) with ``SamplingParams(max_tokens=1, temperature=0,
prompt_logprobs=1)``, and vLLM returns log p(t_i | t_<i) for every prompt token i >= 1 (its
``RequestOutput.prompt_logprobs``: ``None`` for the first token, then a dict holding the actual
token). A continuation's log-prob is the sum over its tokens at the end of prompt +
continuation. All the texts of one call go to one ``LLM.generate`` call, which batches them.

Tokenization is the hf backend's, with vLLM's own Hugging Face tokenizer
(``LLM.get_tokenizer()``): ``ids(text)`` is the tokenizer's special prefix (its BOS, where it adds
one) unless the text already starts with it, then the text's tokens with special tokens parsed;
a continuation's tokens follow :func:`promptsel.backend.continuation_tokens`. Sending ids rather
than text keeps vLLM from adding a second BOS to chat-rendered prompts that carry their own.

Model options (``-M key=value``) go to ``vllm.LLM(...)`` as they are (tensor_parallel_size,
dtype, max_model_len, gpu_memory_utilization, seed, enforce_eager, quantization, ...); strings
from the library are given the Python type vLLM expects. Prefix caching is off unless asked for.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from promptsel import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    BackendError,
    ContinuationRequest,
    PassthroughOptions,
    ScoringMode,
    TokenMemo,
    UsageError,
    file_fingerprint,
    option,
)

from .hf_checkpoint import HFTokens, directory_fingerprint


def _typed(value: Any) -> Any:
    """An engine option vLLM's arguments are not declared for here: typed as its text suggests."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
        for kind in (int, float):
            with contextlib.suppress(ValueError):
                return kind(value)
    return value


class VLLMBackend(HFTokens, Backend):
    """vLLM's offline engine. ``model`` is a Hugging Face model directory, a hub id or a GGUF file
    (vLLM then wants ``-M tokenizer=...``); there is no default model.

    Options: anything ``vllm.LLM`` takes (tensor_parallel_size, dtype, max_model_len,
    gpu_memory_utilization, seed, enforce_eager, quantization, revision, ...). An option vLLM does
    not know is a usage error when the engine starts.
    """

    backend_id = "vllm"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})
    #: Requests per scoring call: vLLM schedules a whole call at once, so big calls keep the
    #: GPU busy; each call's results are cached when it ends, so an interruption loses one.
    chunk_size = 256

    @dataclass(frozen=True)
    class Options(PassthroughOptions):
        """vLLM's engine arguments. The declared ones get their types; any other ``-M`` key is
        passed to ``vllm.LLM`` as given (typed as its text suggests), and vLLM judges it.

        In the cache key: the weights' dtype and quantisation, the KV cache's dtype (attention
        reads it back), the tokenizer (other token ids) and config overrides. Not max_model_len
        (a text that fits scores the same; one that does not is an error), not parallelism or
        CUDA graphs (the same computation in another order: float noise, not a different model),
        not seed (decoding is greedy). A hub model's revision is part of its fingerprint."""

        dtype: str | None = None
        quantization: str | None = None
        kv_cache_dtype: str | None = None
        tokenizer: str | None = None
        tokenizer_revision: str | None = None
        hf_overrides: Any = None
        revision: str | None = option(None, key=False)
        tensor_parallel_size: int | None = option(None, key=False, minimum=1)
        pipeline_parallel_size: int | None = option(None, key=False, minimum=1)
        max_model_len: int | None = option(None, key=False, minimum=1)
        max_num_seqs: int | None = option(None, key=False, minimum=1)
        max_logprobs: int | None = option(None, key=False, minimum=1)
        seed: int | None = option(None, key=False)
        gpu_memory_utilization: float | None = option(None, key=False, minimum=0.0)
        enforce_eager: bool | None = option(None, key=False)
        trust_remote_code: bool | None = option(None, key=False)
        # Prompt log-probs with prefix caching crashed or came back wrong in several vLLM
        # versions (vllm#3251, #8268, #13105; stale cached buffers as late as #42245). Recent
        # versions skip the prefix cache for such requests anyway, so off costs scoring nothing.
        enable_prefix_caching: bool = option(False, key=False)

        def engine_arguments(self) -> dict[str, Any]:
            declared = {k: v for k, v in self.as_dict().items() if k != "extra" and v is not None}
            return {**declared, **{k: _typed(v) for k, v in self.extra.items()}}

    def __init__(self, model: str | None = None, **options: Any) -> None:
        if model is None:
            raise UsageError(
                "The vllm backend has no default model.",
                hint="Pass --model with a Hugging Face model directory or hub id.",
            )
        super().__init__(model, **options)
        self.source, self.hub = self._resolve_source(model)
        self._fingerprint: str | None = None
        self._llm: Any = None
        self._tok: Any = None
        self._prefix: tuple[int, ...] = ()
        self._tokens = TokenMemo()

    @staticmethod
    def _resolve_source(model: str) -> tuple[str, bool]:
        """(local path or hub id, whether it is a hub id)."""
        path = Path(model).expanduser()
        if path.is_dir() or path.is_file():
            return str(path), False
        if model.startswith((".", "/", "~")) or model.endswith(".gguf") or model.count("/") > 1:
            raise BackendError(
                f"Model path not found: {model}.",
                hint="Pass an existing model directory or a Hugging Face hub id such as org/name.",
            )
        return model, True

    # --- identity -------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        if self.hub:
            return self.source
        path = Path(self.source)
        return path.stem if path.suffix == ".gguf" else path.name

    @property
    def fingerprint(self) -> str:
        """The sha256 of the model's files (weights, config, tokenizer) for a local model.

        A hub id is not downloaded here (vLLM does that), so its fingerprint is only the hash
        of the id and ``revision``: weaker, since a branch such as ``main`` can move. Pin
        ``-M revision=<commit>`` or use a local directory for a cache that follows the weights.
        """
        if self._fingerprint is None:
            path = Path(self.source)
            if self.hub:
                ident = f"hub:{self.source}@{self.options.revision or 'main'}"
                self._fingerprint = hashlib.sha256(ident.encode()).hexdigest()
            elif path.is_file():
                self._fingerprint = file_fingerprint(path)
            else:
                self._fingerprint = directory_fingerprint(path)
        return self._fingerprint

    def versions(self) -> dict[str, str]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return {"vllm": metadata.version("vllm")}
        version = getattr(_import_vllm(), "__version__", None) if self._llm is not None else None
        return {"vllm": str(version)} if version else {}

    # --- loading --------------------------------------------------------------------------
    def _engine(self) -> Any:
        if self._llm is None:
            vllm = _import_vllm()
            try:
                self._llm = vllm.LLM(model=self.source, **self.options.engine_arguments())
            except TypeError as exc:  # an option name (or type) vLLM's engine arguments do not take
                raise UsageError(
                    f"vLLM does not accept these model options ({_one_line(exc)}).",
                    hint="Check the -M names against vLLM's engine arguments (vllm serve --help).",
                ) from exc
            except Exception as exc:
                raise BackendError(
                    f"vLLM could not start {self.model_name}: {type(exc).__name__}: {_one_line(exc)}",
                    hint="Check the model path, the GPU memory (-M gpu_memory_utilization) and -M max_model_len.",
                ) from exc
        return self._llm

    def _load_tokenizer(self) -> Any:
        return self._engine().get_tokenizer()

    def close(self) -> None:
        if self._llm is not None:
            self._llm = self._tok = None
            gc.collect()  # vLLM releases the GPU memory and its engine process when the LLM is collected

    # --- the engine -----------------------------------------------------------------------
    def _run(self, seqs: Sequence[tuple[int, ...]], params: Any) -> list[Any]:
        """One ``LLM.generate`` call over token-id prompts; one RequestOutput per sequence, in order."""
        from vllm.inputs import TokensPrompt  # _import_vllm() (via _engine) has checked it is there

        llm = self._engine()
        try:
            outputs = llm.generate([TokensPrompt(prompt_token_ids=list(s)) for s in seqs], params, use_tqdm=False)
        except ValueError as exc:  # vLLM's input checks: too long, empty, ...
            raise BackendError(
                f"vLLM refused a batch of {len(seqs)} prompts: {_one_line(exc)}",
                hint="Shorten the inputs (--max-chars) or raise -M max_model_len.",
            ) from exc
        if len(outputs) != len(seqs):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(seqs)} prompts.")
        return outputs

    def _prompt_logprobs(self, seqs: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
        """log p(t_i | t_<i) for i = 1 ... len-1 of each sequence, from vLLM's prompt_logprobs."""
        vllm = _import_vllm()
        # prompt_logprobs=1 (the actual token plus the top one), as lm-evaluation-harness asks, not
        # 0: a falsy 0 once meant "none" for sample log-probs (vllm#3707). One generated token is
        # the least vLLM allows.
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        out = []
        for seq, result in zip(seqs, self._run(seqs, params)):
            plp = result.prompt_logprobs
            echoed = getattr(result, "prompt_token_ids", None)
            if echoed is not None and list(echoed) != list(seq):
                raise BackendError("vLLM scored other token ids than it was sent.")
            if plp is None or len(plp) != len(seq):
                got = "no" if plp is None else len(plp)
                raise BackendError(
                    f"vLLM returned {got} prompt log-probs for a prompt of {len(seq)} tokens.",
                    hint="This vLLM build mis-reports prompt_logprobs; try another vLLM version.",
                )
            values = []
            for token, entry in zip(seq[1:], plp[1:]):
                if not entry or token not in entry:
                    raise BackendError(f"vLLM's prompt log-probs lack the prompt's own token {token}.")
                values.append(entry[token].logprob)
            out.append(np.asarray(values, dtype=np.float64))
        return out

    # --- scoring --------------------------------------------------------------------------
    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        if mode not in ("full", "first_token"):
            raise UsageError(f"Unknown scoring mode {mode!r}; use 'full' or 'first_token'.")
        # One engine sequence per distinct prompt + continuation tokens; its last m prompt
        # log-probs are those of the m continuation tokens.
        seqs: dict[tuple[int, ...], int] = {}
        needs: list[tuple[int, int, int, int]] = []  # (request, continuation, sequence, m)
        for r, req in enumerate(requests):
            prompt_ids = self._ids(req.prompt)
            if not prompt_ids:
                raise BackendError("An empty prompt has no next-token distribution to score (the model adds no BOS).")
            for k, cont in enumerate(req.continuations):
                targets = self._continuation_ids(req.prompt, prompt_ids, cont)
                if mode == "first_token":
                    targets = targets[:1]
                needs.append((r, k, seqs.setdefault(prompt_ids + targets, len(seqs)), len(targets)))
        lps = self._prompt_logprobs(list(seqs)) if seqs else []
        out = [np.zeros(len(req.continuations)) for req in requests]
        for r, k, i, m in needs:
            out[r][k] = float(lps[i][-m:].sum())
        return out

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """log p(t_i | t_<i) for i = 1 ... len-1 over each text's ids ``t``, as the hf backend
        (with a BOS prefix the text's first token is scored; without one it is not)."""
        seqs = [self._ids(t) for t in texts]
        todo = list(dict.fromkeys(s for s in seqs if len(s) >= 2))
        by_seq = dict(zip(todo, self._prompt_logprobs(todo))) if todo else {}
        return [by_seq.get(s, np.zeros(0)) for s in seqs]

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy decoding; stops at EOS or a stop string, which vLLM cuts off."""
        seqs = [self._ids(p) for p in prompts]
        if any(not s for s in seqs):
            raise BackendError("An empty prompt cannot be continued (the model adds no BOS).")
        if not seqs:
            return []
        vllm = _import_vllm()
        params = vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=[s for s in stop or [] if s] or None)
        return [result.outputs[0].text for result in self._run(seqs, params)]


def _one_line(exc: BaseException) -> str:
    """vLLM's message on one line (some span several), for promptsel's one-line errors."""
    return " ".join(str(exc).split())


def _import_vllm() -> Any:
    try:
        import vllm
        import vllm.inputs  # TokensPrompt lives here; check it with the package
    except ImportError as exc:
        raise BackendError(
            "The vllm backend needs the vllm package, which is not installed.",
            hint="Run pip install vllm on a Linux machine with a CUDA GPU (it does not install on CPU-only machines).",
        ) from exc
    return vllm
