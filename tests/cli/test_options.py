"""Every option the README documents, exercised through the CLI (fast: --scores files and the
fake backend). Expected values come from the fake backend's documented rule or by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pytest
from scipy.special import log_softmax

from promptsel import (
    Flag,
    OptionGroup,
    ScoringOptions,
    Selector,
    SelectRequest,
    UsageError,
    __version__,
    hookimpl,
    option,
)
from promptsel.model.prompts import load_prompt_set
from promptsel.testing import FakeBackend, registered
from tests.command_line import run
from tests.shared_data import shared_path

REVIEWS = [("a great film", "positive"), ("dull and long", "negative"), ("great fun", "positive"),
           ("a mess", "negative"), ("great cast", "positive"), ("tedious", "negative")]
# Two-word label words: the first token ("very") differs from the whole word, and a class's
# words differ, so first-token scoring and max aggregation both change the numbers.
PROMPTS = '''name = "t"
[[prompt]]
id = "chat"
template = "Review: {{text}}"
instruction = "Answer ({{ label_space }})."
answer_choices = { positive = ["very good", "rather good"], negative = ["very bad", "bad"] }

[[prompt]]
id = "raw"
template = "{{text}} Verdict:"
chat = false
answer_choices = { positive = ["good film"], negative = ["poor film", "bad"] }
'''


@pytest.fixture
def fixture_scores(tmp_path) -> Path:
    """The released OPT-2.7B SST-2 log-probs (methods.md §4), prompts 00-12, as in tests/cli/test_commands.py."""
    d = np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz"))
    path = tmp_path / "scores.npz"
    np.savez(path, class_logprobs=d["log_prob"][:13], prompt_nll=-np.log(d["p_xt"][:13]), labels=d["targets"])
    return path


@pytest.fixture
def files(tmp_path, fake_backend_plugin):
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in REVIEWS))
    prompts = tmp_path / "p.toml"
    prompts.write_text(PROMPTS)
    return data, prompts


def select(capsys, data, prompts, *extra):
    code, out, err = run(capsys, "select", "-d", str(data), "-p", str(prompts), "-b", "fake", "--no-progress",
                         "--json", "-q", *extra)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.option("select", "--fute-compat", "--save-scores")
def test_fute_compat_scores_the_first_token_takes_the_max_and_spell_reads_the_chat_text(capsys, files, tmp_path):
    data, prompts = files
    saved = tmp_path / "t.npz"
    report = select(capsys, data, prompts, "--fute-compat", "--methods", "mi,spell", "--save-scores", str(saved))
    assert report["scoring"] == {"mode": "first_token", "aggregate": "max", "spell_text": "chat", "max_new_tokens": 64}
    # By hand from FakeBackend's rule: a label word's first-token log-prob is word_logprob(text, first word).
    fake, prompt_set = FakeBackend(), load_prompt_set(prompts)
    classes = ["negative", "positive"]  # the file's sorted labels
    want_lp, want_nll = np.zeros((2, 6, 2)), np.zeros((2, 6))
    for p, prompt in enumerate(prompt_set.prompts):
        for n, (text, _) in enumerate(REVIEWS):
            example = {"text": text}
            rendered = fake.render_chat(prompt.messages(example)) if prompt.chat else prompt.raw_text(example)
            for c, cls in enumerate(classes):
                want_lp[p, n, c] = max(fake.word_logprob(rendered, (prompt.delimiter + w).split()[0])
                                       for w in prompt.answer_choices[cls])
            spell = fake.render_chat(prompt.messages(example)) if prompt.chat else prompt.render_template(example)
            words = spell.split()
            want_nll[p, n] = -np.mean([fake.word_logprob(" ".join(words[:i]), w) for i, w in enumerate(words) if i > 0])
    got = np.load(saved)
    np.testing.assert_allclose(got["class_logprobs"], log_softmax(want_lp, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(got["prompt_nll"], want_nll, rtol=1e-12)
    default = select(capsys, data, prompts, "--methods", "mi")
    assert default["scoring"]["mode"] == "full" and default["prompts"][0]["scores"] != report["prompts"][0]["scores"]


@pytest.mark.option("select", "--split", "--data-dir", "--dataset")
def test_split_picks_the_file_in_the_data_directory(capsys, files, tmp_path):
    _, prompts = files
    root = tmp_path / "data"
    (root / "sst2").mkdir(parents=True)
    rows = [json.dumps({"text": t, "label": y}) + "\n" for t, y in REVIEWS]
    (root / "sst2" / "test.jsonl").write_text("".join(rows))
    (root / "sst2" / "validation.jsonl").write_text("".join(rows[:4]))
    report = select(capsys, "sst2", prompts, "--data-dir", str(root), "--split", "test", "--methods", "mi")
    assert (report["dataset"]["split"], report["dataset"]["n"]) == ("test", 6)
    report = select(capsys, "sst2", prompts, "--data-dir", str(root), "--methods", "mi")
    assert (report["dataset"]["split"], report["dataset"]["n"]) == ("validation", 4)  # sst2's eval split


@pytest.mark.option("select", "-o", "--scores")
def test_output_writes_the_json_report(capsys, fixture_scores, tmp_path):
    path = tmp_path / "out" / "report.json"
    code, out, err = run(capsys, "select", "--scores", str(fixture_scores), "-o", str(path), "--json", "-q", "--methods", "mi")
    assert code == 0, err
    written, printed = json.loads(path.read_text()), json.loads(out)
    assert written["methods"] == printed["methods"] and written["prompts"] == printed["prompts"]
    assert round(written["methods"]["mi"]["performance"], 3) == 0.591  # methods.md §4


def test_methods_all_means_every_method_fute_included(capsys, fixture_scores):
    code, _, err = run(capsys, "select", "--scores", str(fixture_scores), "--methods", "all")
    # FUTE is part of "all", and cannot run from a scores file without U's arrays.
    assert code == 2 and "fute-taskemb with --scores needs U in the scores file" in err
    code, out, _ = run(capsys, "list", "methods")
    listed = {line.split("\t")[0].split(" ")[0] for line in out.splitlines()}
    assert {"fute-taskemb", "fute-tupate", "self-select", "spell"} <= listed


def test_environment_variables_set_options(capsys, fixture_scores, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_METRIC", "macro_f1")
    monkeypatch.setenv("PROMPTSEL_NDCG", "raw")
    monkeypatch.setenv("PROMPTSEL_METHODS", "spell")
    code, out, err = run(capsys, "select", "--scores", str(fixture_scores), "--json", "-q")
    assert code == 0, err
    report = json.loads(out)
    assert (report["metric"], report["ndcg_variant"], list(report["methods"])) == ("macro_f1", "raw", ["spell"])
    code, out, _ = run(capsys, "select", "--scores", str(fixture_scores), "--json", "-q", "--metric", "accuracy")
    assert json.loads(out)["metric"] == "accuracy"  # the command line wins
    monkeypatch.setenv("PROMPTSEL_SEED", "-1")
    code, _, err = run(capsys, "select", "--scores", str(fixture_scores))
    assert code == 2 and "PROMPTSEL_SEED" in err


def test_version_list_and_plugins(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"promptsel {__version__}"
    code, out, _ = run(capsys, "list", "datasets")
    rows = {line.split("\t")[0].split(" ")[0]: line for line in out.splitlines()}
    assert set(rows) == {"sst2", "imdb", "rotten_tomatoes", "cb", "anli_r3", "wanli", "rte"}
    assert "eval validation, train train" in rows["sst2"] and "(aliases: rt)" in rows["rotten_tomatoes"]
    assert "eval train, train None" in rows["wanli"]  # what its data directory has
    code, out, _ = run(capsys, "list", "embedders")
    assert {line.split("\t")[0] for line in out.splitlines()} == {"taskemb", "tupate"}
    code, out, err = run(capsys, "plugins")
    assert code == 0 and out == ""  # people's output goes to stderr
    for name in ("datasets", "methods", "backends", "embedders"):
        assert name in err
    assert "loaded" in err and "failed" not in err


# --- check ---------------------------------------------------------------------------------

LOCK_PROMPTS = '''name = "t"
[defaults]
chat = false
[[prompt]]
id = "yesno"
template = "Is this review positive? {{text}}"
answer_choices = { positive = ["yes"], negative = ["no"] }
[[prompt]]
id = "goodbad"
template = "{{text}} Was it good or bad?"
answer_choices = { positive = ["good"], negative = ["bad"] }
'''


@pytest.fixture
def locked(tmp_path, monkeypatch, fake_backend_plugin, capsys) -> Path:
    """A lock with two entries: the same prompts on two data files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTSEL_FAILED_EXIT_CODE", raising=False)
    Path("p.toml").write_text(LOCK_PROMPTS)
    for name, rows in (("one.jsonl", REVIEWS), ("two.jsonl", REVIEWS[::-1])):
        Path(name).write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
        code, _, err = run(capsys, "lock", "-d", name, "-p", "p.toml", "-b", "fake", "-m", "mi", "--no-progress", "-q")
        assert code == 0, err
    return tmp_path


def check_json(capsys, *extra) -> dict:
    code, _, err = run(capsys, "check", "--no-progress", "-o", "check.json", *extra)
    assert code == 0, err
    return json.loads(Path("check.json").read_text())


@pytest.mark.option("check", "--dataset")
def test_check_dataset_picks_the_entries_of_one_dataset(capsys, locked):
    assert len(check_json(capsys)["entries"]) == 2
    entries = check_json(capsys, "-d", "two.jsonl")["entries"]
    assert len(entries) == 1 and "two.jsonl" in entries[0]["key"]
    code, _, err = run(capsys, "check", "--no-progress", "-d", "three.jsonl")
    assert code == 2 and "has no entry for dataset three.jsonl" in err


def test_check_no_cache_recomputes_everything(capsys, locked):
    warm = check_json(capsys, "-d", "one.jsonl")["entries"][0]["cache"]
    assert warm["hits"] > 0 and warm["misses"] == 0  # lock ran it: the check reads the cache
    cold = check_json(capsys, "-d", "one.jsonl", "--no-cache")["entries"][0]["cache"]
    assert cold["hits"] == 0 and cold["misses"] == warm["hits"] and cold["enabled"] is False


# --- options declared once: the typed request, a plugin's option group and report section -----

@dataclass(frozen=True)
class Tempo(OptionGroup):
    """A third-party option group: a choice, and a bounded number only select and lock take."""

    group_id: ClassVar[str] = "tempo"
    owner: ClassVar[str] = "tempo"

    pace: Literal["slow", "fast"] = option("slow", flag=Flag("--pace", help="How the metronome goes."))
    beats: int = option(2, minimum=1, flag=Flag("--beats", commands=("select", "lock"), help="Beats per prompt."))


class Metronome(Selector):
    """Ranks prompts by their position, up or down as the group says, and reports what it read."""

    selector_id = "metronome"
    default = False
    report_section = "metronome"

    def score(self, table, context):
        tempo = context.run.request.group(Tempo)
        context.sections[self.report_section] = {"pace": tempo.pace, "beats": tempo.beats}
        return np.arange(table.n_prompts, dtype=float) * (1.0 if tempo.pace == "fast" else -1.0)

    @classmethod
    def section_lines(cls, section):
        return [f"Metronome: {section['beats']} beats, {section['pace']}."]


class TempoPlugin:
    @hookimpl
    def register_option_groups(self, register):
        register(Tempo)

    @hookimpl
    def register_selectors(self, register):
        register(Metronome)


@pytest.fixture
def tempo():
    with registered(TempoPlugin(), name="tempo"):
        yield


def test_a_plugins_option_group_becomes_flags_of_the_commands_it_names(capsys, tempo):
    _, select_help, _ = run(capsys, "select", "--help")
    _, embed_help, _ = run(capsys, "embed", "--help")
    assert "--pace" in select_help and "--beats" in select_help and "PROMPTSEL_PACE" in select_help
    assert "--pace" in embed_help and "--beats" not in embed_help  # --beats names select and lock only
    code, _, err = run(capsys, "select", "--beats", "0")
    assert code == 2 and "'--beats'" in err and "greater than or equal to 1" in err  # the field's minimum
    code, _, err = run(capsys, "select", "--pace", "medium")
    assert code == 2 and "'medium' is not one of 'slow', 'fast'" in err  # the Literal's choices


def test_a_plugins_option_group_reaches_its_method_and_its_section_the_report(capsys, tempo, fixture_scores, tmp_path, monkeypatch):
    md = tmp_path / "r.md"
    code, out, err = run(capsys, "select", "--scores", str(fixture_scores), "--methods", "metronome", "--pace", "fast",
                         "--beats", "3", "--json", "-o", str(md), "--no-progress")
    assert code == 0, err
    report = json.loads(out)
    assert report["metronome"] == {"pace": "fast", "beats": 3}
    assert report["methods"]["metronome"]["chosen"] == report["prompts"][-1]["id"]  # fast: the last prompt scores highest
    assert "Metronome: 3 beats, fast." in err and "Metronome: 3 beats, fast." in md.read_text()
    monkeypatch.setenv("PROMPTSEL_PACE", "fast")
    code, out, _ = run(capsys, "select", "--scores", str(fixture_scores), "--methods", "metronome,mi", "--json", "-q")
    assert json.loads(out)["metronome"] == {"pace": "fast", "beats": 2}  # the environment sets it; beats keeps its default
    code, out, _ = run(capsys, "select", "--scores", str(fixture_scores), "--methods", "mi", "--json", "-q")
    assert json.loads(out)["metronome"] is None  # a registered section is always in the report


def test_the_lock_records_a_groups_changed_settings_and_check_reads_them_back(capsys, tempo, files, tmp_path, monkeypatch):
    data, prompts = files
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTSEL_FAILED_EXIT_CODE", raising=False)
    code, _, err = run(capsys, "lock", "-d", str(data), "-p", str(prompts), "-b", "fake", "-m", "metronome", "--beats", "4",
                       "--no-progress", "-q")
    assert code == 0, err
    lock = json.loads(Path("promptsel.lock").read_text())
    (entry,) = lock["entries"].values()
    assert entry["request"]["tempo"] == {"beats": 4}  # only what differs from the defaults
    code, _, err = run(capsys, "check", "--no-progress")
    assert code == 0, err
    entry["request"]["tempo"] = {"beats": 0}
    Path("promptsel.lock").write_text(json.dumps(lock))
    code, _, err = run(capsys, "check", "--no-progress")
    assert code == 2 and "the lock's tempo option beats must be at least 1" in err


@pytest.mark.parametrize(("given", "needle"), [
    ({"metric": "f1"}, "request option metric must be one of accuracy, macro_f1, got 'f1'"),
    ({"ndcg": "dcg"}, "request option ndcg must be one of minmax, raw, fute"),
    ({"calibrate": "platt"}, "request option calibrate must be one of none, cc, pmi, cbm"),
    ({"bootstrap": 5}, "request option bootstrap must be at least 10"),
    ({"seed": 2**32}, "request option seed must be at most 4294967295"),
    ({"scoring": ScoringOptions(), "limit": "ten"}, "request option limit must be an integer"),
])
def test_the_request_checks_its_typed_fields_when_made(given, needle):
    with pytest.raises(UsageError) as exc:
        SelectRequest(**given)
    assert needle in exc.value.message


def test_fute_compat_is_expanded_by_the_library_and_an_explicit_spell_on_wins():
    from promptsel.fute.options import FuteOptions

    request = SelectRequest.from_flags({"fute_compat": True, "max_new_tokens": 8}, [FuteOptions])
    assert request.scoring == ScoringOptions(mode="first_token", aggregate="max", spell_text="chat", max_new_tokens=8)
    assert request.group(FuteOptions).raw_similarity
    assert SelectRequest.from_flags({"fute_compat": True, "spell_on": "raw"}, [FuteOptions]).scoring.spell_text == "template"
    plain = SelectRequest.from_flags({"spell_on": "prompt", "scoring": "first_token", "no_cache": True}, [FuteOptions])
    assert plain.scoring == ScoringOptions(mode="first_token", spell_text="prompt") and plain.cache is False
    assert plain.group(FuteOptions) == FuteOptions()


def test_help_imports_no_library_code():
    code = (
        "import sys\n"
        "from promptsel.cli import main\n"
        "for argv in (['--help'], ['select', '--help'], ['embed', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'sklearn', 'torch', 'jinja2')\n"
        "               or m.startswith(('promptsel.selection', 'promptsel.gate', 'promptsel.formats.', 'promptsel.fute.method')))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@dataclass(frozen=True)
class Clashing(OptionGroup):
    """A group whose flag a core option already has."""

    group_id: ClassVar[str] = "clashing"
    limit: int = option(3, flag=Flag("--limit", help="Taken."))


class ClashingPlugin:
    @hookimpl
    def register_option_groups(self, register):
        register(Clashing)


def test_a_group_whose_flag_is_taken_is_left_out_with_a_warning_and_the_commands_still_run(capsys):
    with registered(ClashingPlugin(), name="clashing"):
        code, out, err = run(capsys, "select", "--help")
        assert code == 0 and "--limit" in out
        assert "option group 'clashing' was left out: --limit, limit is already an option" in err
        code, out, _ = run(capsys, "plugins")
        assert code == 0


def test_a_lock_with_settings_no_loaded_plugin_declares_is_refused(capsys, tempo, files, tmp_path, monkeypatch):
    data, prompts = files
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "lock", "-d", str(data), "-p", str(prompts), "-b", "fake", "-m", "metronome", "--beats", "4",
                       "--no-progress", "-q")
    assert code == 0, err
    lock = json.loads(Path("promptsel.lock").read_text())
    (entry,) = lock["entries"].values()
    entry["request"]["tempi"] = {"beats": 4}  # as if written by a plugin that is not installed here
    Path("promptsel.lock").write_text(json.dumps(lock))
    code, _, err = run(capsys, "check", "--no-progress")
    assert code == 2 and "has settings (tempi) that no loaded plugin declares" in err


class Squatter(Metronome):
    """Names its report section after a key the report already has."""

    selector_id = "squatter"
    report_section = "timings"


class SquatterPlugin:
    @hookimpl
    def register_selectors(self, register):
        register(Squatter)


def test_a_method_whose_section_would_overwrite_a_report_key_is_a_plugin_bug(capsys, tempo, fixture_scores):
    with registered(SquatterPlugin(), name="squatter"):
        code, _, err = run(capsys, "select", "--scores", str(fixture_scores), "--methods", "mi", "--json", "-q")
    assert code == 1 and "'squatter' ('timings')" in err and "a plugin bug" in err


def test_json_output_loads_no_report_writer():
    code = (
        "import sys\n"
        "from promptsel.cli import main\n"
        "try:\n"
        "    main(['cache', 'info', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m in ('promptsel.formats.markdown', 'promptsel.formats.html',\n"
        "                'promptsel.formats.junit', 'promptsel.formats.plot'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
