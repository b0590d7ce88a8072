"""promptsel: pick the best zero-shot prompt for a model and a dataset, and say how sure it is.

The public API. A plugin imports what it needs from here and nothing else::

    from promptsel import Selector, ScoreTable, hookimpl

Names load on first use (``promptsel --help`` and ``import promptsel.errors`` stay light);
``__all__`` lists them all, and each is documented where it is defined.
"""

from __future__ import annotations

import importlib
from typing import Any

from .hookspecs import hookimpl
from .version import __version__

#: Public name -> the module (relative to this package) that defines it, and the name there
#: when it differs (``module:name``).
_EXPORTS: dict[str, str] = {
    # errors a plugin raises; the command line turns them into one line and an exit code
    **dict.fromkeys(("PromptselError", "UsageError", "BackendError", "CapabilityError", "DataError",
                     "PromptFileError"), "errors"),
    # options of plugins (``-M``, ``-O``, ``-E``)
    **dict.fromkeys(("Options", "option", "PassthroughOptions", "OptionGroup", "Flag"), "options"),
    # the values every plugin speaks
    **dict.fromkeys(("ScoreTable", "TABLE_ARRAYS", "UnlabeledScores"), "model.scoretable"),
    **dict.fromkeys(("Prompt", "PromptSet", "load_prompt_set"), "model.prompts"),
    **dict.fromkeys(("Dataset", "DatasetSpec", "HubSource"), "model.data"),
    **dict.fromkeys(("tie_key",), "model.metrics"),
    "Progress": "model.progress",
    # the contracts
    **dict.fromkeys(("Backend", "ContinuationRequest", "ScoringMode", "TokenMemo", "continuation_tokens",
                     "with_prefix", "CONTINUATION_LOGPROBS", "SEQUENCE_LOGPROBS", "GENERATE", "TOPK_ONLY"),
                    "backend"),
    **dict.fromkeys(("Selector", "SelectionContext", "ModelAccess", "RunView", "NEEDS_CLASS_LOGPROBS",
                     "NEEDS_PROMPT_NLL", "NEEDS_UNLABELED_LOGPROBS"), "selector"),
    **dict.fromkeys(("Embedder", "cosine"), "embedder"),
    **dict.fromkeys(("Surrogate", "TaskData", "TrainConfig", "train", "batches", "logits"), "surrogate"),
    **dict.fromkeys(("get_selector",), "plugins"),
    # offline assets a plugin may fetch (sha256-pinned registry archives) and fingerprint
    **dict.fromkeys(("RegistryArchive", "fetch", "VADER_SDIST"), "assets.packages"),
    **dict.fromkeys(("default_model_path", "file_fingerprint"), "assets.models"),
    "load_chat_template": "assets.chat_template",
    # the library entry point: a request in, a report and its score table out
    **dict.fromkeys(("SelectRequest", "ScoringOptions"), "model.request"),
    "select": "selection.run:run_select",
    # FUTE: its method, its option group, ``promptsel embed`` as a call, and its embedding store
    "FuteMethod": "fute.method",
    "FuteOptions": "fute.options",
    "embed": "fute.embed:run_embed",
    "EmbeddingStore": "fute.store",
}

__all__ = ["__version__", "hookimpl", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'promptsel' has no attribute {name!r}")
    module, _, attr = _EXPORTS[name].partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
