"""The ``hf`` backend: any transformers causal LM (local directory, hub id, or GGUF via ``gguf_file``).

It is the reference other backends are checked against: log-probs come from one batched forward
pass, ``log_softmax`` of the logits gathered at the next token ids (never from
``generate(output_scores=True)``, whose scores are processed).

Tokenization matches the ``llamacpp`` backend: ``ids(text)`` is the tokenizer's own special
prefix (the BOS for Llama-style tokenizers; nothing for SmolLM2, whose tokenizer adds no BOS),
unless the text already starts with it, followed by the text's tokens (special tokens parsed).
Suffix specials such as an EOS that some tokenizers append are never added. A continuation's
tokens are those of ``ids(prompt + continuation)`` after ``len(ids(prompt))`` when ``ids(prompt)``
is a prefix of it, otherwise the continuation tokenized alone without special tokens.

Batches are left-padded (so the last prompt token sits in the last column of every row) with
explicit ``position_ids``; only the needed last rows are projected to the vocabulary
(``logits_to_keep``) when the model supports it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from promptsel import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    BackendError,
    ContinuationRequest,
    ScoringMode,
    TokenMemo,
    UsageError,
    default_model_path,
    file_fingerprint,
    option,
)

from .hf_checkpoint import FINGERPRINT_GLOBS, HFTokens, directory_fingerprint

#: What a hub checkpoint is downloaded with (safetensors weights; .bin only when it has none).
_HUB_PATTERNS = [g for g in FINGERPRINT_GLOBS if g not in ("*.bin", "*.pt", "*.pth")]
#: Most vocabulary logits (float32 elements) held at once by sequence_logprobs (256 MiB).
_LOGIT_BUDGET = 1 << 26


class HFBackend(HFTokens, Backend):
    """A transformers causal LM. ``model=None`` is the embedded default GGUF (dequantised).

    Options: ``gguf_file`` (a GGUF inside the ``model`` directory or hub repo; ``model`` may also
    be the path of a .gguf file), ``device`` (``auto``: cuda when available, else cpu),
    ``dtype`` (``auto``: float32 on cpu, bfloat16 on cuda; or float32/bfloat16/float16),
    ``batch_size`` (default 8), ``revision`` (hub ids), ``trust_remote_code`` (default false).
    """

    backend_id = "hf"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})

    @dataclass(frozen=True)
    class Options(Backend.Options):
        # The GGUF and the revision are part of the model's fingerprint, not of the options key.
        gguf_file: str | None = option(None, key=False)
        #: auto: cuda when available, else cpu (the resolved device is what the key holds).
        device: str = "auto"
        #: auto: float32 on cpu, bfloat16 on cuda.
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
        batch_size: int = option(8, key=False, minimum=1)
        revision: str | None = option(None, key=False)
        trust_remote_code: bool = option(False, key=False)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        device, dtype = self._resolve_device(self.options.device, self.options.dtype)
        self.options = replace(self.options, device=device, dtype=dtype)  # keys hold what really runs
        self.device, self.dtype, self.batch_size = device, dtype, self.options.batch_size
        self.revision = self.options.revision
        self.trust_remote_code = self.options.trust_remote_code
        self.source, self.gguf_file, self.hub = self._resolve_source(model, self.options.gguf_file)
        self._fingerprint: str | None = None
        self._tok: Any = None
        self._model: Any = None
        self._prefix: tuple[int, ...] = ()
        self._tokens = TokenMemo()

    # --- configuration --------------------------------------------------------------------
    @staticmethod
    def _resolve_device(device: str, dtype: str) -> tuple[str, str]:
        torch = _import_torch()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device={device} was asked for, but torch sees no CUDA GPU.", hint="Use -M device=cpu.")
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        return device, dtype

    @staticmethod
    def _resolve_source(model: str | None, gguf_file: str | None) -> tuple[str, str | None, bool]:
        """(local directory or hub id, GGUF file name or None, whether it is a hub id)."""
        if model is None:
            if gguf_file is not None:
                raise UsageError("hf option gguf_file needs --model (the directory or hub repo that holds it).")
            path = default_model_path()
            return str(path.parent), path.name, False
        path = Path(model).expanduser()
        if path.is_file():
            if path.suffix != ".gguf":
                raise BackendError(
                    f"{path} is a file but not a .gguf; the hf backend takes a model directory, a hub id or a .gguf file."
                )
            return str(path.parent), path.name, False
        if path.is_dir():
            if gguf_file is not None and not (path / gguf_file).is_file():
                raise BackendError(f"GGUF file {gguf_file!r} not found in {path}.")
            return str(path), gguf_file, False
        if model.startswith((".", "/", "~")) or model.endswith(".gguf") or model.count("/") > 1:
            raise BackendError(
                f"Model path not found: {model}.",
                hint="Pass an existing model directory, a .gguf file, or a Hugging Face hub id such as org/name.",
            )
        return model, gguf_file, True

    # --- identity -------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        if self.gguf_file:
            return Path(self.gguf_file).stem
        return self.source if self.hub else Path(self.source).name

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            directory = Path(self._local_dir())
            if self.gguf_file:
                self._fingerprint = file_fingerprint(directory / self.gguf_file)
            else:
                self._fingerprint = directory_fingerprint(directory)
        return self._fingerprint

    def versions(self) -> dict[str, str]:
        out = {}
        for pkg in ("torch", "transformers") + (("gguf",) if self.gguf_file else ()):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[pkg] = metadata.version(pkg)
        return out

    # --- loading --------------------------------------------------------------------------
    def _local_dir(self) -> str:
        """The directory the files come from; a hub id is downloaded (or found in the hub cache)."""
        if not self.hub:
            return self.source
        try:
            import huggingface_hub
        except ImportError as exc:
            raise _missing_hf() from exc
        try:
            if self.gguf_file:
                path = huggingface_hub.hf_hub_download(self.source, self.gguf_file, revision=self.revision)
                local = str(Path(path).parent)
            else:
                local = huggingface_hub.snapshot_download(
                    self.source, revision=self.revision, allow_patterns=_HUB_PATTERNS
                )
                if not any(Path(local).glob("*.safetensors")):  # an old checkpoint: .bin weights only
                    local = huggingface_hub.snapshot_download(
                        self.source, revision=self.revision, allow_patterns=[*_HUB_PATTERNS, "*.bin"]
                    )
        except Exception as exc:
            raise BackendError(
                f"Could not get {self.source} from the Hugging Face hub: {type(exc).__name__}: {exc}",
                hint="Check the id and your network (or HF_TOKEN for gated models), or pass a local model directory.",
            ) from exc
        self.source, self.hub = local, False
        return local

    def _load_tokenizer(self) -> Any:
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise _missing_hf() from exc
        directory = self._local_dir()
        try:
            return AutoTokenizer.from_pretrained(directory, gguf_file=self.gguf_file, trust_remote_code=self.trust_remote_code)
        except Exception as exc:
            raise BackendError(f"transformers could not load the tokenizer of {self.model_name}: {exc}") from exc

    def _lm(self) -> Any:
        if self._model is None:
            tok = self._tokenizer()
            torch = _import_torch()
            from transformers import AutoModelForCausalLM

            try:
                lm = AutoModelForCausalLM.from_pretrained(
                    self._local_dir(), gguf_file=self.gguf_file, dtype=getattr(torch, self.dtype),
                    trust_remote_code=self.trust_remote_code,
                )
            except Exception as exc:
                raise BackendError(
                    f"transformers could not load {self.model_name}: {type(exc).__name__}: {exc}",
                    hint="GGUF files need the packages gguf and accelerate (pip install 'promptsel[hf]').",
                ) from exc
            lm.to(self.device)
            lm.eval()
            params = inspect.signature(lm.forward).parameters
            self._takes_positions = "position_ids" in params
            self._takes_keep = "logits_to_keep" in params
            self._pad = next(
                (t for t in (tok.pad_token_id, tok.eos_token_id, 0) if t is not None and t >= 0), 0
            )
            self._model = lm
        return self._model

    def close(self) -> None:
        was_loaded = self._model is not None
        self._model = None
        if was_loaded and self.device.startswith("cuda"):
            _import_torch().cuda.empty_cache()

    # --- the forward pass -----------------------------------------------------------------
    def _left_pad(self, seqs: Sequence[tuple[int, ...]]) -> tuple[Any, Any]:
        """Token ids and attention mask of a batch, padded on the left to one width."""
        torch = _import_torch()
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[b, width - len(s) :] = 1
        return ids, mask

    def _forward_last(self, seqs: Sequence[tuple[int, ...]], keep: int) -> Any:
        """float32 log-softmax of the last ``keep`` positions of each left-padded sequence: [B, keep, V]."""
        torch = _import_torch()
        lm = self._lm()
        ids, mask = self._left_pad(seqs)
        width = ids.shape[1]
        kwargs: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if self._takes_positions:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(self.device)
        if self._takes_keep:
            kwargs["logits_to_keep"] = keep
        limit = getattr(lm.config.get_text_config(), "max_position_embeddings", None)
        if limit and width > limit:
            raise BackendError(
                f"A text of {width} tokens is longer than {self.model_name} takes ({limit} positions).",
                hint="Shorten or truncate the inputs.",
            )
        try:
            with torch.inference_mode():
                logits = lm(**kwargs, use_cache=False).logits[:, -keep:, :]
                return torch.log_softmax(logits.float(), dim=-1)
        except (RuntimeError, MemoryError) as exc:  # out of memory, mostly
            raise BackendError(
                f"transformers failed on a batch of {len(seqs)} x {width} tokens: {type(exc).__name__}: {exc}",
                hint="Lower -M batch_size, or use a smaller dtype or model.",
            ) from exc

    def _batches(self, lengths: Sequence[int], rows: Sequence[int]) -> list[list[int]]:
        """Indices grouped longest-first into batches of at most batch_size, within the logit budget."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        vocab = max(int(self._lm().config.get_text_config().vocab_size), 1)
        batches: list[list[int]] = []
        current: list[int] = []
        widest = 0  # the most logit rows any sequence of the current batch needs
        for i in order:
            wider = max(widest, rows[i])
            if current and (len(current) >= self.batch_size or (len(current) + 1) * wider * vocab > _LOGIT_BUDGET):
                batches.append(current)
                current, wider = [], rows[i]
            current.append(i)
            widest = wider
        if current:
            batches.append(current)
        return batches

    # --- scoring --------------------------------------------------------------------------
    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        if mode not in ("full", "first_token"):
            raise UsageError(f"Unknown scoring mode {mode!r}; use 'full' or 'first_token'.")
        torch = _import_torch()
        # One forward sequence per distinct (prompt + continuation[:-1]); all single-token
        # continuations of a prompt share the prompt's own sequence.
        seqs: dict[tuple[int, ...], int] = {}
        needs: list[tuple[int, int, int, tuple[int, ...]]] = []  # (request, continuation, seq, targets)
        for r, req in enumerate(requests):
            prompt_ids = self._ids(req.prompt)
            if not prompt_ids:
                raise BackendError("An empty prompt has no next-token distribution to score (the model adds no BOS).")
            for k, cont in enumerate(req.continuations):
                targets = self._continuation_ids(req.prompt, prompt_ids, cont)
                if mode == "first_token":
                    targets = targets[:1]
                seq = prompt_ids + targets[:-1]
                needs.append((r, k, seqs.setdefault(seq, len(seqs)), targets))
        keys = list(seqs)
        rows = [1] * len(keys)
        by_seq: list[list[tuple[int, int, tuple[int, ...]]]] = [[] for _ in keys]
        for r, k, i, targets in needs:
            rows[i] = max(rows[i], len(targets))
            by_seq[i].append((r, k, targets))
        out = [np.zeros(len(req.continuations)) for req in requests]
        for batch in self._batches([len(key) for key in keys], rows):
            keep = max(rows[i] for i in batch)
            lp = self._forward_last([keys[i] for i in batch], keep)
            for b, i in enumerate(batch):
                for r, k, targets in by_seq[i]:
                    m = len(targets)  # the last m rows predict the m target tokens
                    block = lp[b, keep - m :]
                    picked = block[torch.arange(m), torch.tensor(targets, device=block.device)]
                    out[r][k] = float(picked.double().sum())
        return out

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """log p(t_i | t_<i) for i = 1 ... len-1 over each text's ids ``t`` (see the module notes:
        with a BOS prefix the text's first token is scored; without one, as for SmolLM2, it is not)."""
        torch = _import_torch()
        seqs = [self._ids(t) for t in texts]
        out: list[np.ndarray] = [np.zeros(0) for _ in texts]
        todo = [i for i, s in enumerate(seqs) if len(s) >= 2]
        for batch in self._batches([len(seqs[i]) for i in todo], [len(seqs[i]) for i in todo]):
            items = [todo[j] for j in batch]
            width = max(len(seqs[i]) for i in items)
            lp = self._forward_last([seqs[i] for i in items], width)
            for b, i in enumerate(items):
                s = seqs[i]
                n = len(s)
                rows = lp[b, width - n : width - 1]
                target = torch.tensor(s[1:], dtype=torch.long, device=rows.device)
                out[i] = rows.gather(-1, target[:, None])[:, 0].double().cpu().numpy()
        return out

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy decoding (no sampling, no repetition penalty); stops at EOS/end of turn or at a
        stop string, which is cut off."""
        torch = _import_torch()
        from transformers import GenerationConfig

        lm, tok = self._lm(), self._tokenizer()
        stops = [s for s in (stop or []) if s]
        eos = {t for t in _as_list(getattr(lm.generation_config, "eos_token_id", None)) + _as_list(tok.eos_token_id)}
        config = GenerationConfig(
            do_sample=False, num_beams=1, max_new_tokens=max_tokens, eos_token_id=sorted(eos) or None,
            pad_token_id=self._pad, stop_strings=stops or None,
        )
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            seqs = [self._ids(p) for p in prompts[start : start + self.batch_size]]
            if any(not s for s in seqs):
                raise BackendError("An empty prompt cannot be continued (the model adds no BOS).")
            ids, mask = self._left_pad(seqs)
            with torch.inference_mode():
                gen = lm.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), generation_config=config,
                    **({"tokenizer": tok} if stops else {}),
                )
            for row in gen[:, ids.shape[1] :].tolist():
                cut = next((j for j, t in enumerate(row) if t in eos), len(row))
                text = tok.decode(row[:cut], skip_special_tokens=True)
                hits = [i for i in (text.find(s) for s in stops) if i >= 0]
                out.append(text[: min(hits)] if hits else text)
        return out



def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _missing_hf() -> BackendError:
    return BackendError(
        "The hf backend needs torch and transformers, which are not installed.",
        hint="Run: pip install 'promptsel[hf]' (install the torch build you want first).",
    )


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise _missing_hf() from exc
    return torch
