"""The openai backend against a real OpenAI-compatible server: llama-cpp-python's, on loopback,
serving the default model, compared with the same model in process (``llamacpp``).

What that server returns (llama-cpp-python 0.3.36), and so what these tests pin down:
* chat prompts (they start with SmolLM2's BOS-like ``<|im_start|>``) echo correctly aligned
  log-probs: the class log-probs agree with the in-process backend to within 0.1 nats (measured:
  0.043 at most, 0.002 on average; the server evaluates reused prefixes with other llama.cpp
  kernels) and every method chooses the same prompt;
* raw texts echo log-probs shifted by one token, which the backend detects and refuses, so
  SPELL (which scores raw templates) is unavailable through this server.
It is slow (the server sorts the whole vocabulary in Python for every echoed token, ~3 s a
request on 2 cores), so the sample is small.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from promptsel.model.request import SelectRequest
from promptsel.selection.run import run_select
from tests.offline import unavailable
from tests.shared_data import shared_path

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(1200)]

#: Largest difference allowed between the server's and the in-process class log-probs (nats).
TOLERANCE = 0.1

PROMPTS = """
name = "sa-chat-3"
task = "sentiment analysis"
[defaults]
chat = true
system = "You are a helpful assistant."
instruction = "Write your answer ({{ label_space }}) in lower case without any explanation."
[[prompt]]
id = "sa07"
template = "{{text}} \\nIs this review positive or negative?"
answer_choices = { positive = ["positive"], negative = ["negative"] }
[[prompt]]
id = "sa08"
template = "{{text}} This is definitely not a positive or negative review."
answer_choices = { positive = ["positive"], negative = ["negative"] }
[[prompt]]
id = "sa06"
template = "{{text}} Did the reviewer find this movie good or bad?"
answer_choices = { positive = ["good"], negative = ["bad"] }
"""


#: llama-cpp-python's own server, with the weights loaded as the llamacpp backend loads them by
#: default (no repacked buffers: llama.cpp's AMX kernels crash some machines, engine.py says why).
SERVER_WITHOUT_REPACK = (
    "import runpy; from promptsel_builtin.llamacpp.engine import model_params\n"
    "with model_params(use_extra_bufts=False):\n"
    "    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(default_gguf: Path, tmp_path_factory):
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:  # the [server] extra: part of promptsel's dev dependencies
        unavailable(f"llama-cpp-python's server is not installed: {exc}")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_WITHOUT_REPACK, "--model", str(default_gguf), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--n_threads", str(min(2, os.cpu_count() or 1))],
            stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(base + "/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama-cpp-python's server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_validate_reports_what_the_real_server_can_serve(llama_server, default_gguf, capsys):
    from tests.command_line import run

    code, out, err = run(capsys, "validate", "--backend", "openai", "-M", f"base_url={llama_server}",
                         "-M", f"chat_template={default_gguf}", "--json")
    import json

    result = json.loads(out)
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["label log-probs (chat prompt)"]["verdict"] == "ok"
    assert checks["label log-probs (raw text)"]["verdict"] == "unavailable"
    assert "wrong positions" in checks["label log-probs (raw text)"]["detail"]
    assert checks["same request twice"]["verdict"] in ("ok", "warn")
    assert "spell" not in result["methods"] and "mi" in result["methods"]
    assert code == 0, err


def test_openai_backend_agrees_with_llamacpp_in_process(llama_server, default_gguf, tmp_path):
    prompts = tmp_path / "sa3.toml"
    prompts.write_text(PROMPTS)
    common = {"dataset": "rotten_tomatoes", "prompts": prompts, "data_dir": str(shared_path("data")), "limit": 4,
              "methods": ["mi", "globale", "locale", "zps-log"]}
    remote, remote_table = run_select(SelectRequest(
        backend="openai", model_args={"base_url": llama_server, "chat_template": str(default_gguf), "concurrency": 1}, **common))
    local, local_table = run_select(SelectRequest(backend="llamacpp", model=str(default_gguf), model_args={"n_threads": 2}, **common))
    assert remote["backend"]["approximate"] is None
    assert "sequence_logprobs" not in remote["backend"]["capabilities"]
    diff = np.abs(remote_table.class_logprobs - local_table.class_logprobs)
    assert diff.max() <= TOLERANCE, f"max {diff.max():.4f}, mean {diff.mean():.4f}"
    for method in common["methods"]:
        assert remote["methods"][method]["chosen"] == local["methods"][method]["chosen"], method
