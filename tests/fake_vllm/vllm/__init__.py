"""A fake of the part of vLLM's offline API that promptsel's ``vllm`` backend uses, for tests on
machines without a GPU (vLLM does not install there). It computes real numbers: the model is a
local Hugging Face directory run through transformers on the CPU, one unpadded sequence at a time.

What it mirrors, and where from. The API is vLLM's V1 offline API as of vLLM 0.15, checked
against its API reference and its source. What the backend uses (``LLM(model, **options)``,
``get_tokenizer``, ``generate(prompts, params, use_tqdm=False)``, ``SamplingParams(max_tokens,
temperature, prompt_logprobs, stop)``, ``TokensPrompt``, ``prompt_logprobs``, ``outputs[0].text``,
``Logprob.logprob``) has kept these names and shapes from vLLM 0.10 to the current main branch:

* ``vllm.LLM(model, *, tokenizer=None, ..., tensor_parallel_size=1, dtype="auto", quantization=None,
  revision=None, tokenizer_revision=None, seed=..., gpu_memory_utilization=0.9, ..., enforce_eager=False,
  **kwargs)``; the extra keyword arguments go to ``EngineArgs``, a dataclass that rejects unknown
  names with a TypeError. ``dtype="auto"`` takes the checkpoint's dtype, except that float32
  checkpoints run in float16 (the LLM docstring says so).
  https://docs.vllm.ai/en/v0.15.0/api/vllm/entrypoints/llm/
* ``LLM.generate(prompts, sampling_params=None, *, use_tqdm=True, lora_request=None, priority=None,
  tokenization_kwargs=None) -> list[RequestOutput]`` in input order; ``LLM.get_tokenizer()`` returns
  the Hugging Face tokenizer. Prompts are a ``str``, a ``TextPrompt`` or a ``TokensPrompt`` (both
  TypedDicts from ``vllm.inputs``), or a list of them.
* ``SamplingParams`` (``vllm/sampling_params.py``): a keyword-constructed struct whose unknown
  keywords raise TypeError, and whose ``_verify_args`` rejects max_tokens < 1, prompt_logprobs < -1,
  temperature < 0, empty stop strings, ...
  https://docs.vllm.ai/en/v0.15.0/api/vllm/sampling_params/
* ``RequestOutput`` / ``CompletionOutput`` (``vllm/outputs.py``). ``prompt_logprobs`` is a list as long
  as the prompt: ``None`` for the first token, then per position a dict token id -> ``Logprob``
  holding the actual prompt token (with its vocabulary rank) plus the top ``prompt_logprobs``
  tokens. https://docs.vllm.ai/en/v0.12.0/api/vllm/outputs/
* ``Logprob(logprob, rank=None, decoded_token=None)`` in ``vllm/logprobs.py`` (earlier in
  ``vllm.sequence``). https://docs.vllm.ai/en/v0.10.2/api/vllm/logprobs.html
* Engine checks the backend could trip: an empty prompt, a token id outside the vocabulary, a
  prompt longer than ``max_model_len``, ``max_model_len`` above the model's positions, and more
  prompt log-probs than ``max_logprobs`` (default 20) are ValueErrors.

Where the fake is stricter than vLLM (so that mistakes show up here rather than on a GPU): it
only decodes greedily (temperature 0); it takes only ``str`` and dict prompts, whose
``prompt_token_ids`` must be a list of Python ints; and the typed engine options (sizes,
fractions, flags) must already have their Python types, where vLLM's pydantic configs would
coerce a numeric string. Options it cannot honour on a CPU (tensor_parallel_size,
gpu_memory_utilization, enforce_eager, enable_prefix_caching, ...) are checked and recorded in
``LLM.engine_kwargs`` for tests to read, and otherwise ignored.
"""

from vllm.entrypoints.llm import LLM
from vllm.inputs import TextPrompt, TokensPrompt
from vllm.logprobs import Logprob
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams

__version__ = "0.15.0+fake"

__all__ = [
    "LLM",
    "CompletionOutput",
    "Logprob",
    "RequestOutput",
    "SamplingParams",
    "TextPrompt",
    "TokensPrompt",
    "__version__",
]
