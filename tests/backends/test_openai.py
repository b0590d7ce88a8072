"""The openai backend against a local HTTP server that follows (or breaks) the OpenAI API.

Expected numbers come from the server's hand-computable rule (tests/openai_server.py), not from
the backend. The real llama-cpp-python server is in tests/backends/test_openai_real.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from promptsel.backend import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    TOPK_ONLY,
    ContinuationRequest,
)
from promptsel.errors import BackendError, UsageError
from promptsel.testing import bind_fixtures, parametrize_backend_checks
from promptsel_builtin.openai_backend import (
    EchoError,
    OpenAIBackend,
    first_token_score,
    retry_after,
)
from tests.openai_server import FakeOpenAI, token_logprob, tokenize


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def backend(fake: FakeOpenAI, **options) -> OpenAIBackend:
    options = {"base_url": fake.base_url, "backoff": 0.0, "timeout": 5, **options}
    return OpenAIBackend("fake-model", **options)


def openai_on_a_sound_server(server, tmp_path):
    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                        "{% if add_generation_prompt %}<assistant>{% endif %}")
    return backend(server, chat_template=str(template))


# The llama-cpp-python server is left out of the contract: it refuses raw texts (shifted echo),
# which tests/backends/test_openai_real.py pins down instead.
@parametrize_backend_checks({"openai": openai_on_a_sound_server})
def test_backend_contract(factory, check, request):
    """The contract every backend keeps (promptsel.contract), over HTTP to a sound server."""
    check(bind_fixtures(factory, request))


def expected_continuation(prompt: str, cont: str) -> list[float]:
    tokens = tokenize(prompt + cont)
    n_prompt = len(tokenize(prompt))
    return [token_logprob("".join(tokens[:i]), tokens[i]) for i in range(n_prompt, len(tokens))]


def test_label_logprobs_are_the_echoed_continuation_tokens(server):
    b = backend(server)
    prompt = "Review: a fine film. Sentiment:"
    conts = (" positive", " very negative")
    full = b.continuation_logprobs([ContinuationRequest(prompt, conts)])[0]
    first = b.continuation_logprobs([ContinuationRequest(prompt, conts)], mode="first_token")[0]
    want = [expected_continuation(prompt, c) for c in conts]
    assert np.allclose(full, [math.fsum(w) for w in want])
    assert np.allclose(first, [w[0] for w in want])
    sent = [r for r in server.requests if r.get("echo")]
    assert sent and all(r["max_tokens"] == 1 and r["temperature"] == 0 and r["logprobs"] >= 1 for r in sent)


def test_sequence_logprobs_skip_the_first_token(server):
    text = "one two three four"
    got = backend(server).sequence_logprobs([text])[0]
    tokens = tokenize(text)
    assert np.allclose(got, [token_logprob("".join(tokens[:i]), tokens[i]) for i in range(1, len(tokens))])


def test_a_token_across_the_prompt_boundary_is_an_error_not_a_guess(server):
    with pytest.raises(BackendError, match="do not split at the start"):
        backend(server).continuation_logprobs([ContinuationRequest("Sentiment: ", ("positive",))])


def test_a_server_that_echoes_only_generated_tokens_is_detected():
    fake = FakeOpenAI(mode="generated_only")
    try:
        with pytest.raises(BackendError, match="no prompt log-probs"):
            backend(fake, endpoint="completions").continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
        auto = backend(fake)
        assert auto.runtime_capabilities() == {CONTINUATION_LOGPROBS, GENERATE, TOPK_ONLY}
        assert auto.approximate and "chat" in auto.approximate
    finally:
        fake.close()


def test_a_shifted_echo_is_refused_and_drops_sequence_logprobs():
    fake = FakeOpenAI(mode="shifted")
    try:
        b = backend(fake)
        with pytest.raises(EchoError, match="wrong positions"):
            b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
        assert backend(fake).runtime_capabilities() == {CONTINUATION_LOGPROBS, GENERATE}
    finally:
        fake.close()


def test_a_sound_server_keeps_every_capability(server):
    assert backend(server).runtime_capabilities() == {CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE}


def test_chat_only_server_falls_back_to_top_k_and_says_so():
    fake = FakeOpenAI(mode="chat_only")
    try:
        b = backend(fake)
        assert b.cache_identity()["options"]["endpoint"] == "completions"  # auto, before it knows better
        assert TOPK_ONLY in b.runtime_capabilities() and SEQUENCE_LOGPROBS not in b.runtime_capabilities()
        assert b.cache_identity()["options"]["endpoint"] == "chat"  # approximate scores never share a key with exact ones
        prompt = b.render_chat([{"role": "user", "content": "Is it good?"}])
        got = b.continuation_logprobs([ContinuationRequest(prompt, ("positive", "negative", "maybe"))])[0]
        # positive: only the full-word candidates count ("positive" and " positive"); negative:
        # "neg" is the longest start; maybe: no candidate, so the smallest top-k value.
        assert got[0] == pytest.approx(math.log(math.exp(-0.2) + math.exp(-2.5)))
        assert got[1] == pytest.approx(-1.9)
        assert got[2] == pytest.approx(-3.0)
        sent = fake.requests[-1]
        assert sent["messages"] == [{"role": "user", "content": "Is it good?"}] and sent["top_logprobs"] == 20
        with pytest.raises(NotImplementedError):
            b.sequence_logprobs(["text"])
    finally:
        fake.close()


def test_first_token_score_by_hand():
    top = [("yes", -0.5), ("Yes", -1.5), (" yes", -2.0), ("no", -3.0)]
    assert first_token_score(" yes", top) == pytest.approx(math.log(math.exp(-0.5) + math.exp(-2.0)))
    assert first_token_score("nope", top) == pytest.approx(-3.0)
    assert first_token_score("maybe", top) == pytest.approx(-3.0)


def test_429_waits_for_retry_after(server):
    server.fail("429", arg=1)
    b = backend(server, backoff=30.0)  # without Retry-After the wait would be 30 s or more
    b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    assert b.retries == 1 and b.waited == 1.0  # the server's 1 s, not the 30 s backoff
    # ...and it really waited before asking again (the server's clock, a lower bound only).
    assert server.times[1] - server.times[0] >= 0.9  # the 429'd request, then its retry


def test_5xx_and_garbage_json_are_retried_then_succeed(server):
    server.fail("500", times=2)
    server.fail("garbage")
    b = backend(server)
    got = b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])[0]
    assert got[0] == pytest.approx(sum(expected_continuation("Sentiment:", " yes")))
    assert b.retries == 3


def test_a_slow_server_times_out_and_is_retried(server):
    server.fail("slow", arg=1.5)
    b = backend(server, timeout=0.3)
    b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    assert b.retries >= 1


def test_retries_are_bounded_with_one_clear_error(server):
    server.fail("500", times=10)
    with pytest.raises(BackendError, match=r"kept failing \(HTTP 500\) after 2 retries") as info:
        backend(server, max_retries=2).continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    assert "\n" not in str(info.value)


def test_authentication_failure_is_one_error_without_retries(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    server.fail("401", times=5)
    with pytest.raises(BackendError, match="refused the API key") as info:
        backend(server).continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    assert "OPENAI_API_KEY" in str(info.value)
    assert len(server.requests) == 1


def test_the_api_key_comes_from_the_environment_and_goes_nowhere_else(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    b = backend(server, api_key_env="MY_KEY")
    b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    assert {k.lower(): v for k, v in server.headers[-1].items()}["authorization"] == "Bearer sk-secret-123"
    identity = json.dumps([b.cache_identity(), b.fingerprint, b.model_name, b.options.as_dict()])
    assert "sk-secret" not in identity
    with pytest.raises(UsageError, match=r"environment|OPENAI_API_KEY"):
        OpenAIBackend("m", api_key="sk-secret-123")


@pytest.mark.parametrize("jobs", [1, 4])
def test_requests_run_concurrently_up_to_the_bound(server, jobs):
    server.fail("slow", times=8, arg=0.4)  # each request takes long enough for the next to start
    b = backend(server, concurrency=jobs)
    b.continuation_logprobs([ContinuationRequest(f"Text {i}:", (" yes", " no")) for i in range(4)])
    assert (server.peak == 1) if jobs == 1 else (2 <= server.peak <= jobs), server.peak


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({}) is None
    assert 0 <= retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_chat_prompts_need_a_template_for_the_completions_endpoint(server, tmp_path):
    b = backend(server, endpoint="completions")
    with pytest.raises(UsageError, match="chat_template"):
        b.render_chat([{"role": "user", "content": "hi"}])
    (tmp_path / "t.jinja").write_text("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
                                      "{% if add_generation_prompt %}[assistant]{% endif %}")
    b = backend(server, endpoint="completions", chat_template=str(tmp_path / "t.jinja"))
    assert b.render_chat([{"role": "user", "content": "hi"}]) == "[user]hi[assistant]"


def test_select_through_the_cli_on_the_fake_server(server, tmp_path, capsys):
    from tests.command_line import run

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in
                            [("great fun", "positive"), ("dull", "negative"), ("loved it", "positive"), ("awful", "negative")]))
    prompts = tmp_path / "p.toml"
    prompts.write_text('name = "t"\n[defaults]\nchat = false\n'
                       '[[prompt]]\nid = "a"\ntemplate = "{{text}} Sentiment:"\nanswer_choices = { positive = ["good"], negative = ["bad"] }\n'
                       '[[prompt]]\nid = "b"\ntemplate = "Review: {{text}}. Liked it?"\nanswer_choices = { positive = ["yes"], negative = ["no"] }\n')
    code, out, err = run(capsys, "select", "--backend", "openai", "--model", "fake-model", "-M", f"base_url={server.base_url}",
                         "-j", "2", "--dataset", str(data), "--prompts", str(prompts), "--classes", "positive,negative",
                         "--json", "--no-progress", "-q")
    assert code == 0, err
    report = json.loads(out)
    assert report["backend"]["name"] == "openai" and report["backend"]["approximate"] is None
    assert "spell" in report["methods"] and set(report["backend"]["capabilities"]) >= {SEQUENCE_LOGPROBS}


def test_validate_probes_a_sound_server(server, capsys):
    from tests.command_line import run

    code, out, err = run(capsys, "validate", "--backend", "openai", "--model", "fake-model", "-M", f"base_url={server.base_url}", "--json")
    result = json.loads(out)
    verdicts = {c["name"]: c["verdict"] for c in result["checks"]}
    assert verdicts == {"label log-probs (raw text)": "ok", "label log-probs (chat prompt)": "unavailable",
                        "prompt log-probs": "ok", "same request twice": "ok", "generation": "ok"}
    assert "spell" in result["methods"] and code == 0 and "chat_template" in err


def test_validate_on_a_shifted_server_lists_what_it_cannot_serve(capsys):
    from tests.command_line import run

    fake = FakeOpenAI(mode="shifted")
    try:
        _, out, _ = run(capsys, "validate", "--backend", "openai", "--model", "fake-model", "-M", f"base_url={fake.base_url}", "--json")
    finally:
        fake.close()
    result = json.loads(out)
    verdicts = {c["name"]: c["verdict"] for c in result["checks"]}
    assert verdicts["prompt log-probs"] == "unavailable" and "spell" not in result["methods"]
    assert "wrong positions" in {c["name"]: c["detail"] for c in result["checks"]}["label log-probs (raw text)"]


def test_asking_for_spell_on_a_shifted_server_says_why_before_scoring(tmp_path, capsys):
    from tests.command_line import one_line_error, run

    fake = FakeOpenAI(mode="shifted")
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "good", "label": "positive"}\n{"text": "bad", "label": "negative"}\n')
    prompts = tmp_path / "p.toml"
    prompts.write_text('name = "t"\n[defaults]\nchat = false\n[[prompt]]\nid = "a"\ntemplate = "{{text}} Sentiment:"\n'
                       'answer_choices = { positive = ["good"], negative = ["bad"] }\n')
    try:
        code, _, err = run(capsys, "select", "--backend", "openai", "--model", "m", "-M", f"base_url={fake.base_url}",
                           "--dataset", str(data), "--prompts", str(prompts), "--classes", "positive,negative",
                           "--methods", "spell", "--no-progress")
        scored = [r for r in fake.requests if r.get("echo") and "Sentiment" in r["prompt"]]
    finally:
        fake.close()
    assert code == 2
    assert "cannot give sequence_logprobs" in one_line_error(err) and "promptsel validate --backend openai" in err
    assert scored == []  # refused before any example was scored


def test_a_missing_endpoint_error_carries_the_server_message():
    fake = FakeOpenAI(mode="chat_only")
    try:
        with pytest.raises(BackendError, match=r"404\): This is a chat model") as info:
            backend(fake, endpoint="completions").continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    finally:
        fake.close()
    assert "\n" not in str(info.value) and "base_url" in str(info.value)


# --- secrets and unreachable servers ------------------------------------------------------

def with_credentials(url: str, userinfo: str = "bob:hunter22-pw") -> str:
    return url.replace("http://", f"http://{userinfo}@")


@pytest.mark.parametrize("status", [400, 500], ids=["answered", "kept-failing"])
@pytest.mark.parametrize("userinfo", [None, "bob:hunter22-pw"], ids=["api-key", "url-credentials"])
def test_no_secret_reaches_a_message_even_when_the_server_quotes_the_headers(server, monkeypatch, status, userinfo):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-key")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-private-1234")  # the client sends it as a header too
    server.fail("reflect", times=3, arg=status)
    url = with_credentials(server.base_url, userinfo) if userinfo else server.base_url
    b = backend(server, base_url=url, max_retries=2)
    with pytest.raises(BackendError) as info:
        b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    message = str(info.value)
    assert "bad request" in message and "***" in message  # the server's words, secrets blanked
    # What was sent: the key as a Bearer token, or (httpx's rule) the URL's user:password as Basic.
    sent = {k.lower(): v for k, v in server.headers[-1].items()}["authorization"].split(" ", 1)[1]
    assert sent in ("sk-very-secret-key", "Ym9iOmh1bnRlcjIyLXB3")
    assert {k.lower(): v for k, v in server.headers[-1].items()}["openai-organization"] == "org-private-1234"
    for secret in (sent, "sk-very-secret-key", "hunter22-pw", "bob:hunter22", "org-private-1234"):
        assert secret not in message
    assert "hunter22" not in json.dumps([b.base_url, b.fingerprint, b.cache_identity()])


def test_credentials_in_the_url_are_redacted_everywhere():
    from promptsel_builtin.openai_backend import redact_url, secrets_of

    assert redact_url("see http://u:p%40ss@host:8/v1 and https://tok@h/x") == "see http://***@host:8/v1 and https://***@h/x"
    assert redact_url("http://host/v1?a=b@c") == "http://host/v1?a=b@c"  # an @ after the host is not userinfo
    import base64

    assert set(secrets_of("http://alice:p%40ssword@h/v1", "sk-1234")) >= {
        "sk-1234", "alice:p%40ssword", "alice:p@ssword", "p@ssword", "p%40ssword", base64.b64encode(b"alice:p@ssword").decode()}
    assert secrets_of("http://h/v1", "abc") == []  # too short to blank without garbling messages


def test_a_refused_connection_fails_at_once_with_a_hint_about_the_url():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    b = OpenAIBackend("m", base_url=f"http://bob:hunter22-pw@127.0.0.1:{port}/v1", backoff=0.01, max_retries=3)
    with pytest.raises(BackendError) as info:
        b.continuation_logprobs([ContinuationRequest("Sentiment:", (" yes",))])
    message = str(info.value)
    assert b.retries == 0 and b.waited == 0  # no retries: nothing listens there
    assert message.startswith(f"Cannot connect to http://***@127.0.0.1:{port}/v1")
    assert "base_url" in message and "-j" not in message and "hunter22" not in message


def test_without_the_openai_package_the_error_says_what_to_install(monkeypatch, capsys, tmp_path):
    import sys

    from tests.command_line import GOOD, one_line_error, run

    monkeypatch.setitem(sys.modules, "openai", None)  # import openai now fails
    with pytest.raises(BackendError, match="pip install"):
        OpenAIBackend("m")
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "good", "label": "positive"}\n{"text": "bad", "label": "negative"}\n')
    prompts = tmp_path / "p.toml"
    prompts.write_text(GOOD)
    code, _, err = run(capsys, "select", "--backend", "openai", "--model", "m", "--dataset", str(data), "--prompts", str(prompts))
    assert code == 1 and "pip install 'promptsel[openai]'" in one_line_error(err)
