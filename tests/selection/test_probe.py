"""The capability probe (promptsel validate --backend) on backends built to pass or fail it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptsel import hookimpl
from promptsel.backend import CONTINUATION_LOGPROBS, GENERATE
from promptsel.selection.probe import probe
from promptsel.testing import FakeBackend, registered


class Knowing(FakeBackend):
    """FakeBackend that knows the probe's two answers (" 8" after counting, "Paris")."""

    backend_id = "knowing"

    def word_logprob(self, prompt: str, word: str) -> float:
        if (prompt.endswith("7,") and word == "8") or (word == "Paris" and "France" in prompt):
            return -0.01
        return super().word_logprob(prompt, word)


class Shifted(Knowing):
    """Sequence log-probs one position off: each value belongs to the next token."""

    backend_id = "shifted"

    def sequence_logprobs(self, texts):
        return [np.roll(v, -1) if len(v) > 1 else v for v in super().sequence_logprobs(texts)]


class Drifting(Knowing):
    """Each call shifts every log-prob a little further (a cache that leaks state)."""

    backend_id = "drifting"
    drift = 0.0

    def continuation_logprobs(self, requests, mode="full"):
        self.drift -= 0.4
        return [v + self.drift for v in super().continuation_logprobs(requests, mode)]


class ChatOnly(Knowing):
    backend_id = "chatonly"

    def runtime_capabilities(self):
        return frozenset({CONTINUATION_LOGPROBS, GENERATE})


def verdicts(result):
    return {c.name: c.verdict for c in result.checks}


def test_a_sound_backend_passes_every_check_and_serves_every_method():
    result = probe(Knowing())
    assert set(verdicts(result).values()) == {"ok"}, result.checks
    assert not result.failed and "spell" in result.methods and "mi" in result.methods


def test_shifted_prompt_logprobs_fail_and_take_spell_away():
    result = probe(Shifted())
    assert verdicts(result)["prompt log-probs"] == "fail"
    assert result.failed and "spell" not in result.methods and "mi" in result.methods


def test_drifting_scores_are_not_deterministic():
    assert verdicts(probe(Drifting()))["same request twice"] == "fail"


def test_a_capability_the_server_lacks_is_unavailable_not_failed():
    result = probe(ChatOnly())
    assert verdicts(result)["prompt log-probs"] == "unavailable"
    assert not result.failed and "spell" not in result.methods


@pytest.mark.parametrize(("backend", "code"), [(Knowing, 0), (Shifted, 1)])
def test_validate_exit_code(backend, code, capsys):
    from tests.command_line import run

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register(backend)

    with registered(Plugin(), name="probe-test"):
        got, out, err = run(capsys, "validate", "--backend", backend.backend_id, "--json")
    assert got == code, err
    assert json.loads(out)["failed"] is bool(code)
    assert "Methods this backend can serve" in err
