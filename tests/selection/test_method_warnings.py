"""A method's own report warnings: given through ``Selector.report_warnings``, never by name.

A throwaway plugin's method reaches the report the way FUTE's diagnostics do; FUTE's warning
is checked on diagnostics written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptsel import hookimpl
from promptsel.errors import PromptselError
from promptsel.fute.method import FuteMethod
from promptsel.fute.warnings import not_learned_warnings
from promptsel.model.scoretable import ScoreTable
from promptsel.selection import recommend
from promptsel.selector import Selector
from promptsel.testing import registered
from tests.command_line import run


class Sulky(Selector):
    """Scores prompts by their index and, as its run's record, counts the prompts it saw."""

    selector_id = "sulky"
    description = "a test method that complains about its own run"

    def score(self, table, context):
        context.sections["sulky"] = {"seen": table.n_prompts}
        return np.arange(table.n_prompts, dtype=float)

    @classmethod
    def report_warnings(cls, sections, method_id):
        seen = sections["sulky"]["seen"]
        return [{"code": "sulky_unsure", "message": f"{method_id} looked at {seen} prompts and trusts none.", "seen": seen},
                {"code": "sulky_note", "severity": "info", "message": "it always says this."}]


class Broken(Selector):
    selector_id = "broken"

    def score(self, table, context):
        return np.zeros(table.n_prompts)

    @classmethod
    def report_warnings(cls, sections, method_id):
        return [{"severity": "warning"}]  # neither a code nor a message


@pytest.fixture
def sulky_plugin():
    class Plugin:
        @hookimpl
        def register_selectors(self, register):
            register(Sulky)
            register(Broken)

    with registered(Plugin(), name="sulky-plugin"):
        yield


def three_prompts(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "scores.npz"
    np.savez(path, class_logprobs=rng.normal(size=(3, 20, 2)), prompt_ids=np.array(["a", "b", "c"]))
    return path


def test_a_plugin_methods_warnings_reach_the_report(capsys, tmp_path, sulky_plugin):
    scores = three_prompts(tmp_path)
    code, out, err = run(capsys, "select", "--scores", str(scores), "-m", "mi,sulky", "--bootstrap", "20", "--json",
                         "-o", str(tmp_path / "report.md"), "--no-progress", "-q")
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    ours = [w for w in warnings if w["code"].startswith("sulky")]
    # What the method recorded while scoring (its section) reaches its hook; severity defaults.
    assert ours == [
        {"code": "sulky_unsure", "severity": "warning", "message": "sulky looked at 3 prompts and trusts none.", "seen": 3},
        {"code": "sulky_note", "severity": "info", "message": "it always says this."},
    ]
    markdown = (tmp_path / "report.md").read_text()
    assert "**sulky_unsure**: sulky looked at 3 prompts" in markdown and "**sulky_note** (info)" in markdown


def test_methods_without_warnings_add_none(sulky_plugin):
    table = ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y"], class_logprobs=np.log(np.full((2, 4, 2), 0.5)))
    scores = {"mi": np.array([0.0, 1.0])}
    plain = recommend.decide(table, scores, resamples=10)["warnings"]
    hooked = recommend.decide(table, scores, resamples=10, sections={"sulky": {"seen": 2}})["warnings"]
    assert hooked == plain  # mi says nothing of its own; sulky did not run, so it is not asked
    with_sulky = recommend.decide(table, {**scores, "sulky": np.array([0.0, 1.0])}, resamples=10,
                                  sections={"sulky": {"seen": 2}})["warnings"]
    assert [w["code"] for w in with_sulky if w["code"].startswith("sulky")] == ["sulky_unsure", "sulky_note"]


def test_a_warning_without_code_or_message_is_a_plugin_bug(sulky_plugin):
    table = ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y"], class_logprobs=np.log(np.full((2, 4, 2), 0.5)))
    with pytest.raises(PromptselError, match=r"'broken'.*plugin bug"):
        recommend.decide(table, {"broken": np.zeros(2)}, resamples=10, sections={})


# --- FUTE's own warning ---------------------------------------------------------------------

DIAGNOSTICS = {"dte": {"learned": False, "heldout_loss": 0.70, "chance_loss": 0.69, "epochs": 2},
               "mte": {"sa01": {"learned": True}, "sa02": {"learned": False, "heldout_loss": 0.9}}}


def test_fute_not_learned_from_diagnostics():
    (w,) = not_learned_warnings(DIAGNOSTICS, "fute-tupate")
    assert w["code"] == "fute_not_learned" and w["method"] == "fute-tupate"
    assert [p["part"] for p in w["parts"]] == ["dte", "mte:sa02"]
    assert w["parts"][0]["heldout_loss"] == 0.70
    assert "DTE" in w["message"] and "mte:sa02" in w["message"]
    assert not_learned_warnings({"dte": {"learned": True}, "mte": {"sa01": {"learned": True}}}, "fute-x") == []
    assert not_learned_warnings(None, "fute-x") == []


def test_fute_warns_through_the_hook_for_its_own_method_only():
    sections = {FuteMethod.report_section: {"diagnostics": {"fute-taskemb": {"dte": {"learned": True}, "mte": {}}, "fute-tupate": DIAGNOSTICS}}}
    (w,) = FuteMethod.report_warnings(sections, "fute-tupate")
    assert w["code"] == "fute_not_learned" and w["method"] == "fute-tupate" and w["message"].startswith("fute-tupate: ")
    assert FuteMethod.report_warnings(sections, "fute-taskemb") == []
    assert FuteMethod.report_warnings({}, "fute-tupate") == []  # no FUTE section: nothing to say


def test_an_embedder_with_a_premise_caveat_says_so_in_every_report_and_in_list_methods():
    from promptsel.plugins import registries

    embedders = registries().embedders
    taskemb = FuteMethod.for_embedder(embedders.get("taskemb"))
    tupate = FuteMethod.for_embedder(embedders.get("tupate"))
    sections = {FuteMethod.report_section: {"diagnostics": {"fute-taskemb": {"dte": {"learned": True}, "mte": {}}}}}
    (w,) = taskemb.report_warnings(sections, "fute-taskemb")
    assert w["code"] == "fute_fails_premise" and w["method"] == "fute-taskemb" and "sign-blind" in w["message"]
    assert taskemb.report_warnings({}, "fute-taskemb")[0]["code"] == "fute_fails_premise"  # whatever the diagnostics
    assert [x["code"] for x in taskemb.report_warnings({FuteMethod.report_section: {"diagnostics": {"fute-taskemb": DIAGNOSTICS}}},
                                                       "fute-taskemb")] == ["fute_fails_premise", "fute_not_learned"]
    assert "caution" in taskemb.description and "sign-blind" in taskemb.description
    # tupate's caveat is its default embedding's (the prefix): a report says it unless the run's
    # options lifted it (head=only with compare=null-both), as the FUTE section records per method.
    assert "caution" in tupate.description and "label-inverted twin" in tupate.description
    assert tupate.report_warnings({}, "fute-tupate")[0]["code"] == "fute_fails_premise"
    lifted = {FuteMethod.report_section: {"caveats": {"fute-tupate": None}}}
    assert tupate.report_warnings(lifted, "fute-tupate") == []
    kept = {FuteMethod.report_section: {"caveats": {"fute-tupate": "a reason"}}}
    assert tupate.report_warnings(kept, "fute-tupate")[0]["caveat"] == "a reason"
    tupate_embedder = embedders.get("tupate")
    assert tupate_embedder().caveat() == tupate_embedder.premise_caveat
    assert tupate_embedder(head="only").caveat() == tupate_embedder.premise_caveat
    assert tupate_embedder(compare="null-both").caveat() == tupate_embedder.premise_caveat
    assert tupate_embedder(head="only", compare="null-both").caveat() is None
    assert embedders.get("taskemb")(estimator="fute").caveat() == embedders.get("taskemb").premise_caveat
