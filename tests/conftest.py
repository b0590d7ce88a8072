from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from promptsel import plugins

# Backend fixtures (tiny random HF model, the default GGUF) live in their own module; under CI
# every skip is a failure (tests/ci_no_skip.py).
pytest_plugins = ["tests.ci_no_skip", *(["tests.conftest_backends", "tests.conftest_surrogates"] if (Path(__file__).parent / "conftest_backends.py").exists() else [])]


def pytest_configure(config: pytest.Config) -> None:
    # Tests load only promptsel's own plugins, never whatever else is installed.
    sys._called_from_test = True  # type: ignore[attr-defined]
    # Results go to a cache of this test session; fetched archives (the default model's wheel)
    # are kept in the user's asset cache so they are downloaded once per machine.
    from platformdirs import user_cache_dir

    os.environ.setdefault("PROMPTSEL_ASSETS_DIR", str(Path(user_cache_dir("promptsel")) / "assets"))
    os.environ["PROMPTSEL_CACHE_DIR"] = config._promptsel_cache = tempfile.mkdtemp(prefix="promptsel-test-cache-")  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(getattr(config, "_promptsel_cache", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    for name in ("PROMPTSEL_LOAD_PLUGINS", "PROMPTSEL_DISABLE_PLUGINS", "PROMPTSEL_STRICT_PLUGINS", "PROMPTSEL_DEBUG",
                 "PROMPTSEL_DATA_DIR", "PROMPTSEL_BACKEND", "PROMPTSEL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def fake_backend_plugin():
    """Registers FakeBackend (id ``fake``) as an in-process plugin, always unregistered."""
    from promptsel import hookimpl
    from promptsel.testing import FakeBackend, registered

    class FakePlugin:
        @hookimpl
        def register_backends(self, register):
            register(FakeBackend)

    with registered(FakePlugin(), name="fake-backend"):
        yield FakeBackend
