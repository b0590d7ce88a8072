"""The backend contract (promptsel.contract) run over every backend that can run here.

A backend is listed either in BACKENDS, where the suite runs on it, or in CANNOT_RUN_HERE,
with the reason. A test fails when a registered backend is in neither list. To add a backend,
add its factory to BACKENDS. A factory's required parameters are filled from pytest fixtures
of the same names. A backend that needs a server or a GPU can run the suite in its own test
module with ``parametrize_backend_checks`` and be listed in CANNOT_RUN_HERE, naming that
module.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from promptsel.plugins import registries
from promptsel.testing import (
    CHECKS,
    FakeBackend,
    bind_fixtures,
    parametrize_backend_checks,
    registered,
)


def hf_on_tiny_llama(tiny_llama_dir):
    from promptsel_builtin.hf import HFBackend

    return HFBackend(str(tiny_llama_dir), device="cpu", batch_size=3)


def llamacpp_on_default_gguf(default_gguf):
    pytest.importorskip("llama_cpp")
    from promptsel_builtin.llamacpp import LlamaCppBackend

    # A small context: the checks build two backends at once and never need long texts. One
    # thread: llama.cpp's threads spin-wait for each other, which is slow on a busy machine.
    return LlamaCppBackend(str(default_gguf), n_ctx=512, n_threads=1)


#: backend id -> factory. The suite runs on each of these.
BACKENDS = {
    "fake": FakeBackend,
    "hf": hf_on_tiny_llama,
    "llamacpp": pytest.param(llamacpp_on_default_gguf, marks=pytest.mark.model),
}

#: backend id -> why the suite does not run on it in this module.
CANNOT_RUN_HERE = {
    "openai": "needs a server: tests/backends/test_openai.py runs the suite over HTTP against its local OpenAI-compatible server",
    "vllm": "needs vllm (a CUDA machine): tests/backends/test_vllm.py runs the suite on a faithful fake of vllm's API",
}

#: backend id -> check -> why that backend is expected to fail it.
EXPECTED_FAILURES = {
    "fake": {
        "sequence_matches_continuation": (
            "FakeBackend's tokens are whitespace-separated words: sequence_logprobs conditions each word on the "
            "earlier words re-joined by single spaces, while continuation_logprobs conditions on the raw prompt "
            "(its newline included) and appends a continuation's words without a space, so the two scorings of "
            "one text differ"
        ),
    },
}


@parametrize_backend_checks(BACKENDS, EXPECTED_FAILURES)
def test_backend_contract(factory, check, request):
    check(bind_fixtures(factory, request))


def forgotten_backends() -> set[str]:
    return set(registries().backends.names()) - set(BACKENDS) - set(CANNOT_RUN_HERE)


def test_every_registered_backend_is_in_the_suite_or_excused():
    forgotten = forgotten_backends()
    assert not forgotten, f"add these backends to BACKENDS (or to CANNOT_RUN_HERE, with a reason): {sorted(forgotten)}"
    registered = set(registries().backends.names())
    assert set(BACKENDS).isdisjoint(CANNOT_RUN_HERE)
    assert all(reason.strip() for reason in CANNOT_RUN_HERE.values())
    # Every suite entry but the fake (a test double, registered only by a fixture) is a real backend.
    assert set(BACKENDS) - {"fake"} <= registered


def test_a_newly_registered_backend_would_be_reported():
    from promptsel import hookimpl

    class Newcomer(FakeBackend):
        backend_id = "newcomer"

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register(Newcomer)

    with registered(Plugin(), name="newcomer-plugin"):
        assert forgotten_backends() == {"newcomer"}


def test_expected_failures_name_real_checks():
    # parametrize_backend_checks refuses unknown names too; this keeps the table readable.
    for backend, reasons in EXPECTED_FAILURES.items():
        assert backend in BACKENDS
        assert set(reasons) <= set(CHECKS)
        assert all(len(reason) > 20 for reason in reasons.values())


# --- the checks catch what they are for ----------------------------------------------------------
class _Closed(FakeBackend):
    closed = False

    def close(self):
        if self.closed:
            raise RuntimeError("already closed")
        self.closed = True


def _broken(name: str, **overrides):
    return type(f"Broken{name.title().replace('_', '')}", (FakeBackend,), overrides)


def _shifted(shift):
    """continuation_logprobs with ``shift(self, requests, mode)`` added to every value."""

    def continuation_logprobs(self, requests, mode="full"):
        return [v + shift(self, requests, mode) for v in FakeBackend.continuation_logprobs(self, requests, mode)]

    return continuation_logprobs


_counter = iter(range(10**9))
BROKEN = {
    "identity": _broken("identity", fingerprint=property(lambda self: f"fp-{id(self)}")),
    "identity-json": _broken("identity_json", cache_identity=lambda self: {"fingerprint": self.fingerprint, "opts": {1, 2}}),
    "capabilities": _broken("capabilities", capabilities=frozenset({"continuation_logprobs", "sequence_logprobs"})),
    "continuation_logprobs": _broken("positive", continuation_logprobs=_shifted(lambda self, reqs, mode: 6.0)),
    "chain_rule": _broken("chain", continuation_logprobs=_shifted(lambda self, reqs, mode: -3.0 * (mode == "first_token"))),
    "chain_rule-mode_ignored": _broken("mode_ignored", continuation_logprobs=lambda self, requests, mode="full": (
        FakeBackend.continuation_logprobs(self, requests, "full"))),
    "batch_independence": _broken("batch", continuation_logprobs=_shifted(lambda self, reqs, mode: -0.01 * len(reqs))),
    "deterministic": _broken("noisy", continuation_logprobs=_shifted(lambda self, reqs, mode: -1e-3 * next(_counter))),
    "sequence_logprobs": _broken("non_causal", sequence_logprobs=lambda self, texts: [
        v - 0.01 * len(v) for v in FakeBackend.sequence_logprobs(self, texts)
    ]),
    "generate": _broken("chatty", generate=lambda self, prompts, *, max_tokens, stop=None: ["and so on"] * len(prompts)),
    "render_chat": _broken("no_system", render_chat=lambda self, messages, add_generation_prompt=True: FakeBackend.render_chat(
        self, [m for m in messages if m["role"] != "system"], add_generation_prompt)),
    "close": _Closed,
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_check_catches_a_backend_that_breaks_its_promise(case):
    check = CHECKS[case.split("-")[0]]
    with pytest.raises(AssertionError):
        check(BROKEN[case])
    check(FakeBackend)  # while the fake, which keeps it, passes


def test_checks_run_without_pytest_on_an_instance():
    from promptsel.testing import backend_checks

    ran = []
    for name, check in backend_checks(FakeBackend(), atol=1e-6):
        if name != "sequence_matches_continuation":
            check()
            ran.append(name)
    assert ran == [n for n in CHECKS if n != "sequence_matches_continuation"]


def test_the_decorator_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown checks"):
        parametrize_backend_checks({"fake": FakeBackend}, {"fake": {"determinism": "typo"}})
    with pytest.raises(ValueError, match="unknown backends"):
        parametrize_backend_checks({"fake": FakeBackend}, {"faek": {"identity": "typo"}})


def test_promptsel_testing_does_not_import_pytest():
    # Plugins may import promptsel.testing at run time (FakeBackend); pytest stays a test-only need.
    code = "import sys, promptsel.testing; assert 'pytest' not in sys.modules, 'pytest was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
