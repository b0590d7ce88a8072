"""Meta-tests that keep the plugin surface honest (datasette's idea)."""

from __future__ import annotations

import re
from pathlib import Path

from promptsel import hookdoc, hookspecs
from tests.paths import ROOT, TESTS


def test_hook_reference_is_generated_from_the_specs():
    assert (ROOT / "docs" / "hooks.md").read_text() == hookdoc.render(), "run: python -m promptsel.hookdoc > docs/hooks.md"


def test_every_hook_is_documented_with_its_exact_signature_and_params():
    page = (ROOT / "docs" / "hooks.md").read_text()
    names = hookspecs.spec_names()
    assert names == ["register_backends", "register_selectors", "register_embedders", "register_datasets",
                     "register_option_groups", "register_prompt_grammar", "register_commands"]
    for name in names:
        fn = getattr(hookspecs, name)
        assert f"## `{hookdoc.signature(fn)}`" in page
        params = list(fn.__annotations__)[:-1]
        for param in params:
            assert f":param {param}:" in (fn.__doc__ or ""), f"{name} does not document {param}"


def test_every_hook_is_exercised_by_a_test():
    tests = "".join(p.read_text() for p in TESTS.rglob("test_*.py") if p.resolve() != Path(__file__).resolve())
    for name in hookspecs.spec_names():
        assert re.search(rf"def {name}\(", tests), f"no test implements {name}"
