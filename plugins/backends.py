"""Registers the bundled backends. Engines (llama-cpp-python, torch, transformers) are
imported only when a backend is created, so a missing engine fails with a clear message on
use, not at start-up."""

from __future__ import annotations

from promptsel import hookimpl


@hookimpl
def register_backends(register):
    from .hf import HFBackend
    from .llamacpp import LlamaCppBackend
    from .openai_backend import OpenAIBackend
    from .vllm_backend import VLLMBackend

    register(LlamaCppBackend, aliases=("llama.cpp", "gguf"))
    register(HFBackend, aliases=("transformers",))
    register(VLLMBackend)
    register(OpenAIBackend, aliases=("openai-compatible",))
