"""``vllm.entrypoints.llm`` (fake): ``LLM`` on a local transformers checkpoint, on the CPU.

See the package docstring for what is mirrored. Numbers: each prompt runs alone (no padding)
through ``AutoModelForCausalLM``; log-probs are ``log_softmax`` of the float32 logits (vLLM's
default ``logprobs_mode="raw_logprobs"``); decoding is greedy and recomputes the whole sequence
at every step (slow, exact, fine for tiny models).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vllm.logprobs import Logprob
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams

#: EngineArgs fields the fake accepts as extra keywords (vLLM has many more; an unknown name is
#: a TypeError in both, as for any dataclass).
_ENGINE_ARGS = frozenset({
    "max_model_len", "enable_prefix_caching", "max_num_seqs", "max_num_batched_tokens", "pipeline_parallel_size",
    "data_parallel_size", "kv_cache_dtype", "block_size", "max_logprobs", "logprobs_mode", "download_dir",
    "load_format", "config_format", "enable_chunked_prefill", "distributed_executor_backend", "disable_log_stats",
    "calculate_kv_scales", "generation_config", "async_scheduling",
})
_INTS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len", "max_num_seqs",
         "max_num_batched_tokens", "block_size", "max_logprobs", "seed")
_FLOATS = ("gpu_memory_utilization", "swap_space", "cpu_offload_gb")
_BOOLS = ("enforce_eager", "enable_prefix_caching", "trust_remote_code", "enable_chunked_prefill",
          "skip_tokenizer_init", "disable_custom_all_reduce", "disable_log_stats")
_DTYPES = {"half": "float16", "float16": "float16", "bfloat16": "bfloat16", "float": "float32", "float32": "float32"}
_MAX_LOGPROBS = 20  # vLLM's default max_logprobs


class LLM:
    """A language model for offline inference (fake; see the package docstring)."""

    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        tokenizer_mode: str = "auto",
        skip_tokenizer_init: bool = False,
        trust_remote_code: bool = False,
        allowed_local_media_path: str = "",
        allowed_media_domains: list[str] | None = None,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        quantization: str | None = None,
        revision: str | None = None,
        tokenizer_revision: str | None = None,
        seed: int | None = None,
        gpu_memory_utilization: float = 0.9,
        swap_space: float = 4,
        cpu_offload_gb: float = 0,
        enforce_eager: bool = False,
        disable_custom_all_reduce: bool = False,
        hf_token: bool | str | None = None,
        hf_overrides: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        pooler_config: Any = None,
        compilation_config: int | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _ENGINE_ARGS)
        if unknown:  # what the EngineArgs dataclass says
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument '{unknown[0]}'")
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        self.engine_kwargs: dict[str, Any] = {
            "model": model, "tokenizer": tokenizer, "tokenizer_mode": tokenizer_mode,
            "skip_tokenizer_init": skip_tokenizer_init, "trust_remote_code": trust_remote_code,
            "tensor_parallel_size": tensor_parallel_size, "dtype": dtype, "quantization": quantization,
            "revision": revision, "tokenizer_revision": tokenizer_revision, "seed": seed,
            "gpu_memory_utilization": gpu_memory_utilization, "swap_space": swap_space, "cpu_offload_gb": cpu_offload_gb,
            "enforce_eager": enforce_eager, "disable_custom_all_reduce": disable_custom_all_reduce,
            "hf_overrides": hf_overrides, **kwargs,
        }
        _check_types(self.engine_kwargs)
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"GPU memory utilization must be within (0, 1]. Got {gpu_memory_utilization}.")
        if tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be at least 1, got {tensor_parallel_size}.")
        if quantization is not None:
            raise NotImplementedError("the fake vllm runs unquantised checkpoints only")
        if Path(model).is_file():
            raise NotImplementedError("the fake vllm loads model directories only, not GGUF files")
        if not Path(model).is_dir():  # the fake never downloads
            raise ValueError(f"Invalid repository ID or local directory specified: '{model}'.")
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
        for key, value in (hf_overrides or {}).items():
            setattr(config, key, value)
        derived = getattr(config.get_text_config(), "max_position_embeddings", None)
        max_model_len = kwargs.get("max_model_len")
        if max_model_len is None:
            max_model_len = derived
        elif derived is not None and max_model_len > derived:
            raise ValueError(
                f"User-specified max_model_len ({max_model_len}) is greater than the derived max_model_len "
                f"(max_position_embeddings={derived} in model's config.json)."
            )
        self.max_model_len = int(max_model_len or 1 << 30)
        self.max_logprobs = int(kwargs.get("max_logprobs", _MAX_LOGPROBS))
        self.dtype = _resolve_dtype(dtype, getattr(config, "dtype", None) or getattr(config, "torch_dtype", None))
        self._model = AutoModelForCausalLM.from_pretrained(
            model, config=config, revision=revision, dtype=getattr(torch, self.dtype),
            trust_remote_code=trust_remote_code,
        ).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(
            tokenizer or model, revision=tokenizer_revision, trust_remote_code=trust_remote_code,
            use_fast=tokenizer_mode != "slow",
        )
        eos = getattr(self._model.generation_config, "eos_token_id", None)
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self._vocab = len(self._tokenizer)  # vLLM checks prompt ids against the tokenizer's max_token_id
        self._eos = {int(t) for t in [*eos, self._tokenizer.eos_token_id] if t is not None}
        self._request_ids = itertools.count()
        #: the number of prompts of each generate() call, for tests
        self.generate_calls: list[int] = []

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def generate(
        self,
        prompts: Any,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool | Callable[..., Any] = True,
        lora_request: Any = None,
        priority: list[int] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        batch = [prompts] if isinstance(prompts, (str, dict)) else prompts
        if not isinstance(batch, (list, tuple)):
            raise TypeError(f"prompts must be a prompt or a list of prompts, got {type(prompts).__name__}.")
        batch = list(batch)
        if sampling_params is None:
            sampling_params = SamplingParams()  # vLLM adds the model's generation config: sampling, not greedy
        params = list(sampling_params) if isinstance(sampling_params, Sequence) else [sampling_params] * len(batch)
        if len(params) != len(batch):
            raise ValueError(f"The lengths of prompts ({len(batch)}) and params ({len(params)}) must be the same.")
        if priority is not None and len(priority) != len(batch):
            raise ValueError(f"The lengths of prompts ({len(batch)}) and priority ({len(priority)}) must be the same.")
        if lora_request is not None:
            raise NotImplementedError("the fake vllm has no LoRA support")
        requests = []
        for prompt, sp in zip(batch, params):  # vLLM validates every request before running any
            if not isinstance(sp, SamplingParams):
                raise TypeError(f"sampling_params must be SamplingParams, got {type(sp).__name__}.")
            requests.append((*self._prompt_ids(prompt, tokenization_kwargs), self._check_params(sp)))
        self.generate_calls.append(len(batch))
        return [self._run(text, ids, sp) for text, ids, sp in requests]

    # --- validation -----------------------------------------------------------------------
    def _prompt_ids(self, prompt: Any, tokenization_kwargs: dict[str, Any] | None) -> tuple[str | None, list[int]]:
        if isinstance(prompt, str):
            text, ids = prompt, self._tokenizer.encode(prompt, **(tokenization_kwargs or {}))
        elif isinstance(prompt, dict) and "prompt_token_ids" in prompt:
            text, ids = None, prompt["prompt_token_ids"]
            if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
                raise TypeError(f"prompt_token_ids must be a list of int, got {ids!r:.80}.")
        elif isinstance(prompt, dict) and "prompt" in prompt:
            text, ids = prompt["prompt"], self._tokenizer.encode(prompt["prompt"], **(tokenization_kwargs or {}))
        else:
            raise TypeError(f"Unsupported prompt {prompt!r:.80}: use a str, a TextPrompt or a TokensPrompt.")
        if not ids:
            raise ValueError("The decoder prompt cannot be empty")
        bad = [t for t in ids if t < 0 or t >= self._vocab]
        if bad:
            raise ValueError(f"Token id {bad[0]} is out of vocabulary")
        if len(ids) > self.max_model_len:
            raise ValueError(
                f"The decoder prompt (length {len(ids)}) is longer than the maximum model length of "
                f"{self.max_model_len}. Make sure that `max_model_len` is no smaller than the number of text tokens."
            )
        return text, list(ids)

    def _check_params(self, sp: SamplingParams) -> SamplingParams:
        if sp.temperature >= 1e-5:
            raise NotImplementedError("the fake vllm decodes greedily only (temperature=0)")
        if (sp.presence_penalty, sp.frequency_penalty, sp.repetition_penalty, sp.min_tokens) != (0.0, 0.0, 1.0, 0):
            raise NotImplementedError("the fake vllm has no penalties and no min_tokens")
        if sp.logprobs is not None:
            raise NotImplementedError("the fake vllm returns no sample log-probs")
        k = sp.prompt_logprobs
        if k is not None:
            wanted = self._vocab if k == -1 else k
            if self.max_logprobs != -1 and wanted > self.max_logprobs:
                raise ValueError(f"Requested prompt logprobs of {wanted}, which is greater than max allowed: {self.max_logprobs}")
        return sp

    # --- the model ------------------------------------------------------------------------
    def _logprobs(self, ids: list[int]) -> Any:
        """log p(. | ids[:i+1]) for every position i: [len(ids), vocab], float32."""
        import torch

        with torch.inference_mode():
            logits = self._model(torch.tensor([ids])).logits[0]
        return torch.log_softmax(logits.float(), dim=-1)

    def _decode(self, ids: list[int], sp: SamplingParams) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=sp.skip_special_tokens)

    def _run(self, text: str | None, ids: list[int], sp: SamplingParams) -> RequestOutput:
        lp = self._logprobs(ids)
        prompt_logprobs = None
        if sp.prompt_logprobs is not None:
            k = lp.shape[-1] if sp.prompt_logprobs == -1 else sp.prompt_logprobs
            prompt_logprobs = [None] + [self._position(lp[i - 1], ids[i], k, sp) for i in range(1, len(ids))]
        out: list[int] = []
        cumulative, finish, stop_reason, out_text = 0.0, "length", None, None
        row = lp[-1]
        budget = min(sp.max_tokens or self.max_model_len, self.max_model_len - len(ids))
        for step in range(budget):
            token = int(row.argmax())
            out.append(token)
            cumulative += float(row[token])
            if token in self._eos and not sp.ignore_eos:
                finish = "stop"
                break
            if token in sp.stop_token_ids:
                finish, stop_reason = "stop", token
                break
            if sp.stop:
                so_far = self._decode(out, sp)
                hits = sorted((so_far.find(s), s) for s in sp.stop if s in so_far)
                if hits:
                    at, stop_reason = hits[0]
                    out_text = so_far[: at + len(stop_reason)] if sp.include_stop_str_in_output else so_far[:at]
                    finish = "stop"
                    break
            if step + 1 < budget:
                row = self._logprobs(ids + out)[-1]
        if out_text is None:
            out_text = self._decode(out, sp) if sp.detokenize else ""
        completion = CompletionOutput(index=0, text=out_text, token_ids=out, cumulative_logprob=cumulative,
                                      logprobs=None, finish_reason=finish, stop_reason=stop_reason)
        return RequestOutput(request_id=str(next(self._request_ids)), prompt=text, prompt_token_ids=ids,
                             prompt_logprobs=prompt_logprobs, outputs=[completion], finished=True, num_cached_tokens=0)

    def _position(self, row: Any, token: int, k: int, sp: SamplingParams) -> dict[int, Logprob]:
        """The actual token first (rank = 1 + how many tokens are more likely), then the top k."""
        import torch

        def entry(t: int, value: float, rank: int) -> Logprob:
            return Logprob(logprob=value, rank=rank, decoded_token=self._decode([t], sp) if sp.detokenize else None)

        value = row[token]
        out = {token: entry(token, float(value), int((row > value).sum()) + 1)}
        if k:
            top = torch.topk(row, k)
            for rank, (v, t) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
                out.setdefault(int(t), entry(int(t), float(v), rank))
        return out


def _resolve_dtype(dtype: str, config_dtype: Any) -> str:
    if dtype != "auto":
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown dtype: {dtype!r}")
        return _DTYPES[dtype]
    name = str(config_dtype or "float32").removeprefix("torch.")
    return "float16" if name == "float32" else _DTYPES.get(name, "float16")  # vLLM runs float32 checkpoints in float16


def _check_types(kwargs: dict[str, Any]) -> None:
    for key, value in kwargs.items():
        if value is None:
            continue
        if key in _INTS and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{key} must be an int, got {value!r}")
        if key in _FLOATS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError(f"{key} must be a number, got {value!r}")
        if key in _BOOLS and not isinstance(value, bool):
            raise TypeError(f"{key} must be a bool, got {value!r}")
