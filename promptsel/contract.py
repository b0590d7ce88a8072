"""The backend contract: what promptsel relies on from every backend, as named checks.

This is scikit-learn's common-checks idea for backends. Each check takes a *factory*, a
zero-argument callable that returns a new backend (a Backend subclass whose default model
works, or ``lambda: MyBackend("path/to/model")``), builds what it needs, and raises
``AssertionError`` with a message that says which promise is broken. A check that does not
apply, because the backend does not declare the capability it tests, raises
``unittest.SkipTest``, which pytest reports as a skip.

With pytest::

    from promptsel.testing import parametrize_backend_checks

    @parametrize_backend_checks({"mine": MyBackend}, expected_failures={"mine": {"generate": "why"}})
    def test_backend_contract(factory, check):
        check(factory)

Without pytest: ``for name, check in backend_checks(MyBackend): check()``.

The probe texts are instantiated zero-shot templates of the kind promptsel scores. Every
prompt ends in a non-space character and every continuation starts with a space. With such a
boundary, any usual tokenizer gives ``tokens(prompt + continuation) = tokens(prompt) +
tokens(continuation)``. The checks that compare two ways of scoring the same tokens depend
on that.
"""

from __future__ import annotations

import functools
import inspect
import json
import unittest
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .backend import (
    CAPABILITIES,
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    TOPK_ONLY,
    Backend,
    ContinuationRequest,
)

Factory = Callable[[], Backend]
Check = Callable[..., None]

#: Tolerance (absolute and relative) of numeric comparisons. It covers float32 kernels that
#: sum in a different order when the batch changes. It does not cover bf16 GPU kernels: pass
#: ``atol=`` for those.
DEFAULT_ATOL = 1e-4

PROMPTS = (
    "Review: The movie was a delight from start to finish.\nSentiment:",
    "The plot is thin and the acting is wooden. Did the reviewer like the film? Answer yes or no.\nAnswer:",
    "Q: Is a tedious, overlong mess a good film?\nA:",
)
LABELS = (" positive", " negative", " yes", " no")
#: Several tokens in any tokenizer, so its full score is below its first-token score.
MULTI_TOKEN = " wonderful and great"
#: A continuation and a longer one that starts with it.
SHORT, EXTENDED = " very", " very good indeed"
TEXTS = (
    "The movie was a delight from start to finish.",
    "A tedious, overlong mess that never figures out what it wants to say.",
)
MESSAGES = (
    {"role": "system", "content": "You are a terse film critic."},
    {"role": "user", "content": "Was the film any good?"},
    {"role": "assistant", "content": "It was fine."},
    {"role": "user", "content": "Answer yes or no."},
)


# --- helpers ---------------------------------------------------------------------------------
def as_factory(backend_or_factory: Backend | Factory) -> Factory:
    """A factory for a backend instance or a factory. An instance is shared: then the checks
    that build two backends compare the instance with itself, and nothing closes it."""
    if isinstance(backend_or_factory, Backend):
        instance = backend_or_factory

        def shared() -> Backend:
            return instance

        shared.shared = True  # type: ignore[attr-defined]
        return shared
    if not callable(backend_or_factory):
        raise TypeError(f"Expected a Backend or a callable returning one, got {backend_or_factory!r}.")
    return backend_or_factory


@contextmanager
def _opened(factory: Factory) -> Iterator[Backend]:
    backend = factory()
    assert isinstance(backend, Backend), (
        f"the factory returned {type(backend).__name__}, not a promptsel.backend.Backend subclass"
    )
    try:
        yield backend
    finally:
        if not getattr(factory, "shared", False):
            backend.close()


def _capabilities(backend: Backend) -> frozenset[str]:
    # Remote backends may narrow their declared capabilities once they have asked their server.
    runtime = getattr(backend, "runtime_capabilities", None)
    return frozenset(runtime() if callable(runtime) else backend.capabilities)


def _require(backend: Backend, *caps: str) -> None:
    missing = [c for c in caps if c not in _capabilities(backend)]
    if missing:
        raise unittest.SkipTest(f"{backend.backend_id} does not declare {', '.join(missing)}")


def _assert_close(actual: Any, expected: Any, atol: float, what: str) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=atol, atol=atol, err_msg=what
    )


def _continuations(backend: Backend, requests: Sequence[ContinuationRequest], mode: str = "full") -> list[np.ndarray]:
    out = backend.continuation_logprobs(list(requests), mode=mode)  # type: ignore[arg-type]
    assert len(out) == len(requests), (
        f"continuation_logprobs returned {len(out)} arrays for {len(requests)} requests (one per request)"
    )
    arrays = []
    for req, values in zip(requests, out):
        arr = np.asarray(values, dtype=float)
        assert arr.shape == (len(req.continuations),), (
            f"continuation_logprobs gave shape {arr.shape} for {len(req.continuations)} continuations of "
            f"{req.prompt!r}: it must be one value per continuation, in their order"
        )
        arrays.append(arr)
    return arrays


def _sequences(backend: Backend, texts: Sequence[str]) -> list[np.ndarray]:
    out = backend.sequence_logprobs(list(texts))
    assert len(out) == len(texts), f"sequence_logprobs returned {len(out)} arrays for {len(texts)} texts"
    arrays = [np.asarray(a, dtype=float) for a in out]
    for text, arr in zip(texts, arrays):
        assert arr.ndim == 1, f"sequence_logprobs({text!r}) has shape {arr.shape}; it must be 1-D (one value per token)"
    return arrays


def _valid_logprobs(values: np.ndarray, atol: float, what: str) -> None:
    assert np.all(np.isfinite(values)), f"{what}: not finite: {values}"
    assert np.all(values <= atol), f"{what}: log-probabilities must be <= 0, got {values.max():.6g}"


# --- the checks --------------------------------------------------------------------------------
def check_identity(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """backend_id, model_name and fingerprint are non-empty strs. The fingerprint and
    cache_identity() are stable and the same for two backends on one model, because the
    result cache is keyed by them. cache_identity() is JSON and contains the fingerprint."""
    with _opened(factory) as a, _opened(factory) as b:
        assert isinstance(a.backend_id, str) and a.backend_id, "backend_id must be a non-empty str (the --backend name)"
        assert isinstance(a.model_name, str) and a.model_name.strip(), "model_name must be a non-empty str (reports show it)"
        fingerprint = a.fingerprint
        assert isinstance(fingerprint, str) and fingerprint, "fingerprint must be a non-empty str"
        assert a.fingerprint == fingerprint, "fingerprint changed between two reads"
        assert b.fingerprint == fingerprint, (
            "two backends on the same model have different fingerprints: the result cache would never hit"
        )
        try:
            identity = json.dumps(a.cache_identity(), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"cache_identity() must be JSON-serialisable (it is hashed into cache keys): {exc}") from None
        assert json.dumps(a.cache_identity(), sort_keys=True) == identity, "cache_identity() changed between two calls"
        assert json.dumps(b.cache_identity(), sort_keys=True) == identity, (
            "cache_identity() differs between two backends on the same model: the result cache would never hit"
        )
        assert fingerprint in identity, (
            "cache_identity() must contain the fingerprint, or two models would share cached results"
        )


def check_capabilities(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """Capabilities are known names. A declared capability's method works on a small input.
    An undeclared one raises NotImplementedError, so promptsel never calls it."""
    with _opened(factory) as backend:
        declared = backend.capabilities
        assert isinstance(declared, (set, frozenset)), f"capabilities must be a frozenset, got {type(declared).__name__}"
        unknown = set(declared) - CAPABILITIES
        assert not unknown, f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}"
        assert TOPK_ONLY not in declared or CONTINUATION_LOGPROBS in declared, (
            f"{TOPK_ONLY} qualifies {CONTINUATION_LOGPROBS}, which is not declared"
        )
        runtime = _capabilities(backend)
        assert runtime <= declared, (
            f"runtime_capabilities() {sorted(runtime)} adds to the declared capabilities {sorted(declared)}"
        )
        calls: dict[str, Callable[[], object]] = {
            CONTINUATION_LOGPROBS: lambda: backend.continuation_logprobs([ContinuationRequest(PROMPTS[0], LABELS[:1])]),
            SEQUENCE_LOGPROBS: lambda: backend.sequence_logprobs([TEXTS[0]]),
            GENERATE: lambda: backend.generate([PROMPTS[0]], max_tokens=2),
        }
        for cap, call in calls.items():
            if cap in runtime:
                try:
                    call()
                except NotImplementedError as exc:
                    raise AssertionError(f"{cap} is declared but {cap}() raised NotImplementedError: {exc}") from None
                continue
            try:
                call()
            except NotImplementedError:
                continue
            except Exception as exc:
                raise AssertionError(
                    f"{cap} is not declared, so {cap}() must raise NotImplementedError; it raised {type(exc).__name__}: {exc}"
                ) from None
            raise AssertionError(f"{cap}() works but {cap!r} is not in capabilities, so promptsel never uses it: declare it")


def check_continuation_logprobs(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """One array per request, one value per continuation, finite and <= 0, in both scoring
    modes. A continuation listed twice in one request gets the same value twice."""
    requests = [
        ContinuationRequest(PROMPTS[0], LABELS),
        ContinuationRequest(PROMPTS[1], (MULTI_TOKEN,)),
        ContinuationRequest(PROMPTS[2], (LABELS[2], MULTI_TOKEN, LABELS[2])),
    ]
    with _opened(factory) as backend:
        _require(backend, CONTINUATION_LOGPROBS)
        for mode in ("full", "first_token"):
            out = _continuations(backend, requests, mode)
            for req, values in zip(requests, out):
                _valid_logprobs(values, atol, f"continuation_logprobs(mode={mode!r}) for {req.prompt!r}")
            _assert_close(out[2][2], out[2][0], atol, f"mode={mode!r}: the same continuation twice in one request scored differently")


def check_chain_rule(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """log p(full continuation) = log p(first token) + log p(the rest | first token), so
    full <= first_token. A continuation extended by more words is no more probable than the
    shorter one, and its first token, the same token after the same prompt, scores the same."""
    req = ContinuationRequest(PROMPTS[0], (SHORT, EXTENDED, MULTI_TOKEN, *LABELS))
    with _opened(factory) as backend:
        _require(backend, CONTINUATION_LOGPROBS)
        full = _continuations(backend, [req], "full")[0]
        first = _continuations(backend, [req], "first_token")[0]
    for cont, f, t in zip(req.continuations, full, first):
        assert f <= t + atol, (
            f"{cont!r}: full log-prob {f:.6g} > first-token log-prob {t:.6g}; the later tokens must add terms <= 0"
        )
    multi = req.continuations.index(MULTI_TOKEN)
    assert full[multi] < first[multi] - atol, (
        f"{MULTI_TOKEN!r} (several tokens) scored {full[multi]:.6g} in full, no less than its first token alone "
        f"({first[multi]:.6g}): is mode ignored?"
    )
    assert full[1] <= full[0] + atol, (
        f"{EXTENDED!r} scored {full[1]:.6g} > {SHORT!r} {full[0]:.6g}: extending a continuation cannot raise its probability"
    )
    _assert_close(first[1], first[0], atol, f"the first token of {SHORT!r} and {EXTENDED!r} is the same token but scored differently")


def check_batch_independence(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """A request scores the same alone, inside a batch at any position, and with its
    continuations reversed. The same holds for a text in sequence_logprobs. promptsel chunks
    and caches per request, so a score must not depend on its neighbours."""
    target = ContinuationRequest(PROMPTS[1], (*LABELS, MULTI_TOKEN))
    others = [ContinuationRequest(PROMPTS[0], (MULTI_TOKEN,)), ContinuationRequest(PROMPTS[2], LABELS[:2])]
    with _opened(factory) as backend:
        caps = _capabilities(backend)
        if not caps & {CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS}:
            raise unittest.SkipTest(f"{backend.backend_id} scores nothing")
        if CONTINUATION_LOGPROBS in caps:
            alone = _continuations(backend, [target])[0]
            middle = _continuations(backend, [others[0], target, others[1]])[1]
            last = _continuations(backend, [*others, target])[-1]
            flipped = _continuations(backend, [ContinuationRequest(target.prompt, target.continuations[::-1])])[0][::-1]
            _assert_close(middle, alone, atol, "a request scored differently in the middle of a batch than alone")
            _assert_close(last, alone, atol, "a request scored differently at the end of a batch than alone")
            _assert_close(flipped, alone, atol, "reversing a request's continuations changed their scores")
        if SEQUENCE_LOGPROBS in caps:
            texts = [TEXTS[0], PROMPTS[1] + MULTI_TOKEN, TEXTS[1]]
            batch = _sequences(backend, texts)
            for text, values in zip(texts, batch):
                single = _sequences(backend, [text])[0]
                assert single.shape == values.shape, (
                    f"sequence_logprobs({text!r}): {len(single)} values alone, {len(values)} in a batch"
                )
                _assert_close(values, single, atol, f"sequence_logprobs({text!r}) differs in a batch and alone")


def check_deterministic(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """The same call twice, and on a second backend for the same model, gives the same numbers
    and the same greedy text. Cached results must match a fresh run."""
    requests = [ContinuationRequest(p, (*LABELS, MULTI_TOKEN)) for p in PROMPTS]

    def run(backend: Backend) -> dict[str, Any]:
        caps = _capabilities(backend)
        out: dict[str, Any] = {}
        if CONTINUATION_LOGPROBS in caps:
            out["continuation_logprobs"] = np.concatenate(_continuations(backend, requests))
        if SEQUENCE_LOGPROBS in caps:
            out["sequence_logprobs"] = np.concatenate(_sequences(backend, TEXTS))
        if GENERATE in caps:
            out["generate"] = list(backend.generate(list(PROMPTS[:2]), max_tokens=6))
        return out

    with _opened(factory) as a:
        first, again = run(a), run(a)
    with _opened(factory) as b:
        other = run(b)
    if not first:
        raise unittest.SkipTest("the backend declares no scoring or generation capability")
    for what, ref in first.items():
        for label, got in (("called again", again[what]), ("on a second backend for the same model", other[what])):
            if what == "generate":
                assert got == ref, f"generate is not deterministic ({label}): {ref!r} then {got!r}"
            else:
                _assert_close(got, ref, atol, f"{what} is not deterministic ({label})")


def check_sequence_matches_continuation(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """The last k values of sequence_logprobs(prompt + continuation) sum to the continuation's
    log-prob, where k is how many values the continuation adds. SPELL and label scoring must
    read the same model."""
    with _opened(factory) as backend:
        _require(backend, CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS)
        for prompt in PROMPTS:
            conts = (LABELS[0], MULTI_TOKEN)
            scores = _continuations(backend, [ContinuationRequest(prompt, conts)])[0]
            alone = _sequences(backend, [prompt])[0]
            for cont, score in zip(conts, scores):
                joint = _sequences(backend, [prompt + cont])[0]
                k = len(joint) - len(alone)
                assert k >= 1, (
                    f"sequence_logprobs of {prompt + cont!r} has {len(joint)} values, no more than the prompt alone ({len(alone)})"
                )
                _assert_close(joint[: len(alone)], alone, atol,
                       f"sequence_logprobs of {prompt!r} changed when {cont!r} was appended: scoring is not causal, "
                       "or tokenization merges across the boundary")
                _assert_close(joint[len(alone):].sum(), score, atol,
                       f"sequence_logprobs of {prompt + cont!r} ends in {k} values summing to {joint[len(alone):].sum():.6g}, "
                       f"but continuation_logprobs gives {score:.6g}")


def check_sequence_logprobs(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """One array per text, finite and <= 0, with one value per token after the first. A
    sentence gives some values. Appending words gives more values and leaves the earlier
    ones unchanged, because the model reads left to right."""
    extended = TEXTS[0] + " I would gladly watch it again."
    with _opened(factory) as backend:
        _require(backend, SEQUENCE_LOGPROBS)
        short, longer, other = _sequences(backend, [TEXTS[0], extended, TEXTS[1]])
    for text, values in ((TEXTS[0], short), (extended, longer), (TEXTS[1], other)):
        _valid_logprobs(values, atol, f"sequence_logprobs({text!r})")
        assert len(values) > 0, f"sequence_logprobs({text!r}) is empty for a whole sentence"
    assert len(longer) > len(short), (
        f"appending words gave {len(longer)} values, not more than the {len(short)} of the shorter text"
    )
    _assert_close(longer[: len(short)], short, atol, "appending words changed the log-probs of the tokens before them")


def check_generate(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """One str per prompt. max_tokens is respected loosely: two tokens make at most two words.
    Decoding is greedy, so the 2-token text is the start of the 8-token one."""
    prompts = list(PROMPTS[:2])
    with _opened(factory) as backend:
        _require(backend, GENERATE)
        long = backend.generate(prompts, max_tokens=8)
        short = backend.generate(prompts, max_tokens=2)
    for out in (long, short):
        assert len(out) == len(prompts), f"generate returned {len(out)} texts for {len(prompts)} prompts"
        assert all(isinstance(t, str) for t in out), f"generate must return strs, got {[type(t).__name__ for t in out]}"
    for prompt, s, g in zip(prompts, short, long):
        assert len(s.split()) <= 2, f"generate({prompt!r}, max_tokens=2) gave {s!r}: more than two tokens' worth"
        assert g.startswith(s), f"greedy decoding: {s!r} (max_tokens=2) is not the start of {g!r} (max_tokens=8)"


def check_render_chat(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """render_chat returns a str holding every message's content, in order, with and without
    the generation prompt."""
    with _opened(factory) as backend:
        for add in (True, False):
            text = backend.render_chat([dict(m) for m in MESSAGES], add_generation_prompt=add)
            assert isinstance(text, str), f"render_chat returned {type(text).__name__}, not str"
            at = 0
            for m in MESSAGES:
                found = text.find(m["content"], at)
                assert found >= 0, (
                    f"render_chat(add_generation_prompt={add}) lost or reordered the {m['role']} message {m['content']!r}: {text!r}"
                )
                at = found + len(m["content"])


def check_close(factory: Factory, *, atol: float = DEFAULT_ATOL) -> None:
    """close() can be called twice, on an unused backend and on one that has worked."""

    def close_twice(backend: Backend, state: str) -> None:
        for call in ("first", "second"):
            try:
                backend.close()
            except Exception as exc:
                raise AssertionError(f"the {call} close() of {state} backend raised {type(exc).__name__}: {exc}") from exc

    close_twice(factory(), "an unused")
    if getattr(factory, "shared", False):
        return  # the shared instance was just closed; using it again would test reloading
    backend = factory()
    caps = _capabilities(backend)
    if CONTINUATION_LOGPROBS in caps:
        backend.continuation_logprobs([ContinuationRequest(PROMPTS[0], LABELS[:1])])
    elif SEQUENCE_LOGPROBS in caps:
        backend.sequence_logprobs([TEXTS[0]])
    elif GENERATE in caps:
        backend.generate([PROMPTS[0]], max_tokens=1)
    close_twice(backend, "a used")


#: Every check, by name, in the order they run. close comes last because it closes a shared instance.
CHECKS: dict[str, Check] = {
    "identity": check_identity,
    "capabilities": check_capabilities,
    "continuation_logprobs": check_continuation_logprobs,
    "chain_rule": check_chain_rule,
    "batch_independence": check_batch_independence,
    "deterministic": check_deterministic,
    "sequence_matches_continuation": check_sequence_matches_continuation,
    "sequence_logprobs": check_sequence_logprobs,
    "generate": check_generate,
    "render_chat": check_render_chat,
    "close": check_close,
}


# --- running them ------------------------------------------------------------------------------
def backend_checks(
    backend_or_factory: Backend | Factory, *, atol: float = DEFAULT_ATOL
) -> Iterator[tuple[str, Callable[[], None]]]:
    """``(name, check)`` pairs. Each check is bound to the backend, so ``check()`` runs it."""
    factory = as_factory(backend_or_factory)
    for name, check in CHECKS.items():
        yield name, functools.partial(check, factory, atol=atol)


def bind_fixtures(factory: Callable[..., Backend], request: Any) -> Factory:
    """``factory`` with its required parameters filled from the pytest fixtures of the same
    names (``request`` is pytest's ``request`` fixture). Example:
    ``def hf_on_tiny(tiny_llama_dir): return HFBackend(str(tiny_llama_dir))``."""
    if isinstance(factory, Backend):
        return as_factory(factory)
    params = [
        p.name for p in inspect.signature(factory).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if not params:
        return factory
    return functools.partial(factory, **{name: request.getfixturevalue(name) for name in params})


def parametrize_backend_checks(
    factories: Mapping[str, Any],
    expected_failures: Mapping[str, Mapping[str, str]] | None = None,
    *,
    atol: float | Mapping[str, float] = DEFAULT_ATOL,
) -> Any:
    """A pytest decorator: one test per (backend, check), with the id ``<backend>-<check>``.

    :param factories: backend name -> factory (or backend instance). A value may be a
        ``pytest.param(factory, marks=...)`` to mark every test of that backend.
    :param expected_failures: backend name -> check name -> reason. Those tests are marked
        ``xfail(strict=True)``, so a check that starts passing is reported too.
    :param atol: the numeric tolerance, or one per backend name.
    :returns: ``pytest.mark.parametrize`` over the arguments ``factory`` and ``check``. The test
        calls ``check(factory)``.
    """
    import pytest  # only plugin authors' test suites need pytest

    expected = {name: dict(reasons) for name, reasons in (expected_failures or {}).items()}
    unknown_backends = set(expected) - set(factories)
    if unknown_backends:
        raise ValueError(f"expected_failures names unknown backends {sorted(unknown_backends)}")
    for name, reasons in expected.items():
        unknown_checks = set(reasons) - set(CHECKS)
        if unknown_checks:
            raise ValueError(f"expected_failures[{name!r}] names unknown checks {sorted(unknown_checks)}; known: {list(CHECKS)}")
    param_type = type(pytest.param(None))
    params = []
    for name, value in factories.items():
        marks: list[Any] = []
        if isinstance(value, param_type):
            (value,) = value.values
            marks = list(factories[name].marks)
        tolerance = atol[name] if isinstance(atol, Mapping) else atol
        for check_name, check in CHECKS.items():
            reason = expected.get(name, {}).get(check_name)
            xfail = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
            params.append(pytest.param(
                value, functools.partial(check, atol=tolerance), id=f"{name}-{check_name}", marks=[*marks, *xfail]
            ))
    return pytest.mark.parametrize(("factory", "check"), params)
