"""Plugin loading through real entry points: a throwaway distribution is put on sys.path with
its own ``entry_points.txt``, exactly what ``pip install`` leaves behind."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from promptsel import plugins
from promptsel.errors import UsageError
from promptsel.plugins import PluginLoadWarning, plugin_infos, registries
from promptsel.testing import registered


def make_dist(root: Path, name: str, module_code: str, entry: str | None = None) -> None:
    mod = name.replace("-", "_")
    (root / f"{mod}.py").write_text(textwrap.dedent(module_code))
    info = root / f"{mod}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[promptsel]\n{entry or mod} = {mod}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("psx_")]:
        del sys.modules[name]


GOOD = """
from promptsel import hookimpl
from promptsel.testing import FakeBackend

class EchoBackend(FakeBackend):
    backend_id = "echo"

@hookimpl
def register_backends(register):
    register(EchoBackend, aliases=("echo2",))
"""


def test_a_third_party_backend_is_found_through_its_entry_point(site, monkeypatch):
    make_dist(site, "psx-echo", GOOD)
    monkeypatch.setenv("PROMPTSEL_LOAD_PLUGINS", "psx_echo,datasets,methods,backends")
    regs = registries()
    assert regs.backends.get("echo2").backend_id == "echo"
    assert regs.backends.entry("echo").plugin == "psx_echo"
    info = {i.name: i for i in plugin_infos()}["psx_echo"]
    assert (info.dist, info.version, info.builtin, info.hooks) == ("psx-echo", "1.0", False, ["register_backends"])
    assert "llamacpp" in regs.backends  # the bundled ones come through the same group


def test_tests_ignore_installed_plugins_unless_asked(site):
    make_dist(site, "psx-echo", GOOD)
    assert "psx_echo" not in {i.name for i in plugin_infos()}
    assert {i.name for i in plugin_infos()} == {"datasets", "methods", "backends", "embedders"}


def test_a_plugin_that_fails_to_import_is_a_warning(site, monkeypatch):
    make_dist(site, "psx-broken", "import not_a_module_anywhere\n")
    monkeypatch.setenv("PROMPTSEL_LOAD_PLUGINS", "psx_broken,datasets")
    with pytest.warns(PluginLoadWarning, match="psx_broken.*No module named 'not_a_module_anywhere'"):
        infos = {i.name: i for i in plugin_infos()}
    assert infos["psx_broken"].error.startswith("ModuleNotFoundError")
    assert "sst2" in registries().datasets  # the others still work
    plugins.reset()
    monkeypatch.setenv("PROMPTSEL_STRICT_PLUGINS", "1")
    with pytest.raises(UsageError, match="failed to load"):
        plugin_infos()


def test_a_misspelt_hook_is_reported_by_check_pending(site, monkeypatch):
    make_dist(site, "psx-typo", "from promptsel import hookimpl\n\n@hookimpl\ndef register_backend(register):\n    pass\n")
    monkeypatch.setenv("PROMPTSEL_LOAD_PLUGINS", "psx_typo")
    with pytest.warns(PluginLoadWarning, match="register_backend"):
        plugin_infos()


def test_disable_switch_blocks_a_plugin(monkeypatch):
    monkeypatch.setenv("PROMPTSEL_DISABLE_PLUGINS", "methods")
    assert "methods" not in {i.name for i in plugin_infos()}
    assert registries().selectors.names() == []


def test_duplicate_names_are_an_error_naming_both_plugins(fake_backend_plugin):
    from promptsel import hookimpl
    from promptsel.testing import FakeBackend

    class Again:
        @hookimpl
        def register_backends(self, register):
            register(FakeBackend)

    twice = r"'fake' is registered twice .*'(again|fake-backend)'.*'(again|fake-backend)'"
    with registered(Again(), name="again"), pytest.raises(UsageError, match=twice):
        registries()


def test_a_registered_plugin_is_unregistered_when_its_block_raises():
    from promptsel import hookimpl
    from promptsel.testing import FakeBackend

    class Loner(FakeBackend):
        backend_id = "loner"

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register(Loner)

    plugin = Plugin()
    with pytest.raises(RuntimeError, match="a failing test body"), registered(plugin, name="loner-plugin") as given:
        assert given is plugin and registries().backends.get("loner") is Loner
        raise RuntimeError("a failing test body")
    assert plugins.get_plugin_manager().get_plugin("loner-plugin") is None
    assert "loner" not in registries().backends.names()
    # The name is free again (pluggy refuses a name registered twice) and the block ends as well.
    with registered(Plugin(), name="loner-plugin"):
        assert registries().backends.get("loner") is Loner
    assert "loner" not in registries().backends.names()


def test_hook_arguments_are_opt_in(site, monkeypatch):
    make_dist(site, "psx-noargs", "from promptsel import hookimpl\nCALLED = []\n\n@hookimpl\ndef register_datasets():\n    CALLED.append(1)\n")
    monkeypatch.setenv("PROMPTSEL_LOAD_PLUGINS", "psx_noargs")
    registries()
    assert sys.modules["psx_noargs"].CALLED == [1]


def test_selectors_embedders_and_commands_from_a_plugin(capsys):
    import numpy as np
    import typer

    from promptsel import hookimpl
    from promptsel.cli import main
    from promptsel.selector import Selector

    class FirstPrompt(Selector):
        selector_id = "first"
        description = "always the first prompt"

        def score(self, table, context):
            return -np.arange(table.n_prompts, dtype=float)

    class ToyEmbedder:
        embedder_id = "toy"

    class Plugin:
        @hookimpl
        def register_selectors(self, register):
            register(FirstPrompt, aliases=("1st",))

        @hookimpl
        def register_embedders(self, register):
            register(ToyEmbedder)

        @hookimpl
        def register_commands(self, cli: typer.Typer):
            @cli.command(name="hello")
            def hello(name: str = "world") -> None:
                """Say hello."""
                typer.echo(f"hello {name}")

    with registered(Plugin(), name="toy-plugin"):
        assert registries().selectors.get("1st") is FirstPrompt
        assert registries().embedders.entry("toy").plugin == "toy-plugin"
        main(["hello", "--name", "promptsel"])  # returns normally on success
        assert capsys.readouterr().out == "hello promptsel\n"


GRAMMAR = """
from promptsel import hookimpl

@hookimpl
def register_prompt_grammar(register):
    register({"field_names": {"text": ["Critique"]},
              "task": [{"name": "sentiment", "verbalizers": [{"name": "fab/awful", "words": {"positive": ["fab"], "negative": ["awful"]}}]}]})
"""


def test_a_plugin_extends_the_expand_grammar_through_its_entry_point(site, monkeypatch, tmp_path):
    from promptsel.model.grammar import AXES
    from promptsel.model.prompts import load_prompt_set
    from promptsel.model.variants import axis_values
    from promptsel.selection.expansion import expand_file, load_grammar
    from tests.paths import ROOT

    make_dist(site, "psx-words", GRAMMAR)
    monkeypatch.setenv("PROMPTSEL_LOAD_PLUGINS", "psx_words,datasets")
    grammar = load_grammar()
    assert "plugin 'psx_words'" in grammar.sources
    sa01 = load_prompt_set(ROOT / "prompts" / "sa.toml").prompts[0]
    values = axis_values(sa01, grammar, AXES)
    assert "fab/awful" in values["labels"] and "Critique" in values["field_name"]
    summary = expand_file(ROOT / "prompts" / "sa.toml", tmp_path / "v.toml", axes=["labels"], n=10)
    assert "fab/awful" in summary["values"]["labels"]
