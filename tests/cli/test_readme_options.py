"""Every option the README names is exercised through the command line by a test that asserts
what the option changes (issue 24).

:func:`test_every_option_the_readme_names_has_a_cli_test` reads README.md and fails for an option
that no test declares with ``@pytest.mark.option(COMMAND, FLAG)`` (tests/readme_options.py says
how a flag's command is read from the README). The option tests below run ``promptsel`` twice,
with and without the option (or with two values), and check the difference is the one the
README promises; options tested elsewhere carry the same marker where they are.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.command_line import one_line_error, run
from tests.fake_project import DATA, PROMPTS
from tests.readme_options import commands, declared_options, readme_mentions

#: (command, flag) -> why it has no command-line test yet. Every entry is FUTE's: these options
#: only act when a FUTE method trains its surrogate on a labeled train split and the unlabeled
#: corpus U, which no fast test does through the command line today (tests/fute/ calls the
#: pipeline directly). An entry that gets a test, or that the README stops naming, fails
#: test_the_untested_list_only_shrinks: the list cannot hide a new option.
NOT_YET: dict[tuple[str, str], str] = {
    ("embed", "-d"): "embed trains FUTE's dataset embedding (a surrogate fit on the train split)",
    ("embed", "-p"): "embed trains one FUTE model task embedding per prompt",
    ("embed", "--backend"): "embed labels U through the backend and trains FUTE's embeddings",
    ("embed", "-M"): "embed's backend labels U for FUTE's training",
    ("embed", "-E"): "an embedder option acts on FUTE's training",
    ("lock", "-E"): "an embedder option acts on FUTE's training",
    ("select", "-E"): "an embedder option acts on FUTE's training",
    ("select", "--unlabeled"): "U is read only when a FUTE method runs",
    ("select", "--unlabeled-size"): "U is drawn only when a FUTE method runs",
    ("select", "--unlabeled-exclude"): "U's sources are chosen only when a FUTE method runs",
    ("select", "--dte-size"): "the DTE sample is drawn only when a FUTE method runs",
    ("select", "--surrogate"): "the surrogate is loaded only when a FUTE method runs",
}


def test_every_option_the_readme_names_has_a_cli_test():
    known = commands()
    declared = declared_options()
    declared.update({key: ["NOT_YET"] for key in NOT_YET})
    stale = sorted(f"{cmd} {flag}: {tests[0]}" for (cmd, flag), tests in declared.items() if flag not in known.get(cmd, {}))
    assert not stale, f"tests declare options their command does not take: {stale}"
    covered = {(cmd, known[cmd][flag]) for cmd, flag in declared}
    problems = []
    for m in readme_mentions():
        wanted = {(c, known[c][m.flag]) for c in m.commands if m.flag in known.get(c, {})}
        if not wanted:
            where = f"{', '.join(m.commands)} has no such option" if m.commands else "no command has it"
            problems.append(f"README.md:{m.line}: {m.flag}: {where}")
        elif not (wanted & covered if m.any_of else wanted <= covered):
            need = sorted(wanted - covered)
            problems.append(f"README.md:{m.line}: {m.flag}: no test declares @pytest.mark.option for "
                            + (" or ".join(c for c, _ in need) if m.any_of else ", ".join(c for c, _ in need)))
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_the_untested_list_only_shrinks():
    """An option in NOT_YET that got a test, or that the README no longer names, must leave it."""
    known = commands()
    tested = {(cmd, known[cmd][flag]) for cmd, flag in declared_options() if flag in known.get(cmd, {})}
    named = {(c, known[c][m.flag]) for m in readme_mentions() for c in m.commands if m.flag in known.get(c, {})}
    for (cmd, flag), why in NOT_YET.items():
        key = (cmd, known[cmd][flag])
        assert why and key not in tested, f"{cmd} {flag} has a test now: remove it from NOT_YET"
        assert key in named, f"the README no longer names {cmd} {flag}: remove it from NOT_YET"



def test_the_readme_reader_gives_each_flag_its_command(tmp_path):
    """How a flag's command is read (tests/readme_options.py), on a README written here."""
    readme = tmp_path / "README.md"
    readme.write_text("\n".join([
        "```sh",
        "pip install -e .   # not promptsel's",
        "promptsel lock -d sst2 \\",
        "    --limit 200",
        "```",
        "",
        "| `promptsel cache info\\|clear [--all]` | the cache |",
        "",
        "Useful `select` options: `--no-cache`, `--frobnicate` and",
        "`--calibrate cbm`.",
        "",
        "Any command's `--model` (no command named here).",
    ]))
    got = {(m.flag, m.commands, m.any_of) for m in readme_mentions(readme)}
    assert ("-d", ("lock",), False) in got and ("--limit", ("lock",), False) in got  # a continued shell line
    assert ("--all", ("cache clear",), False) in got  # the group's command that takes it
    assert ("--no-cache", ("select",), False) in got and ("--calibrate", ("select",), False) in got
    assert ("--frobnicate", (), True) in got  # no command takes it: the check reports it
    assert any(f == "--model" and a and "select" in c and "plot" in c for f, c, a in got)
    assert not any(f == "-e" for f, _, _ in got)


# -- the options, each run with and without (or with two values) ---------------------------------




@pytest.fixture
def project(tmp_path, monkeypatch, fake_backend_plugin) -> Path:
    """tests/fake_project.py's twelve reviews and three prompts, in the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in DATA))
    (tmp_path / "prompts.toml").write_text(PROMPTS)
    return tmp_path


def select(capsys, *argv: str, data: str = "data.jsonl", prompts: str = "prompts.toml") -> dict:
    code, out, err = run(capsys, "select", "-d", data, "-p", prompts, "-b", "fake", "--no-progress", "--json", "-q", *argv)
    assert code == 0, err
    return json.loads(out)


def scores_file(path: Path, class_logprobs, labels, prompt_nll=None) -> Path:
    lp = np.log(np.asarray(class_logprobs, dtype=float))
    nll = np.zeros(lp.shape[:2]) if prompt_nll is None else np.asarray(prompt_nll, dtype=float)
    np.savez(path, class_logprobs=lp, prompt_nll=nll, labels=np.asarray(labels), prompt_ids=np.array([f"p{i}" for i in range(lp.shape[0])]))
    return path


def from_scores(capsys, path: Path, *argv: str) -> dict:
    code, out, err = run(capsys, "select", "--scores", str(path), "--json", "-q", "--no-progress", *argv)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.option("select", "--dataset", "--prompts", "--backend", "--model")
def test_dataset_prompts_backend_and_model_are_what_the_report_ran(capsys, project):
    (project / "six.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in DATA[:3] + DATA[6:9]))
    (project / "one.toml").write_text(PROMPTS.split("[[prompt]]")[0] + "[[prompt]]" + PROMPTS.split("[[prompt]]")[2])
    full = select(capsys, "--methods", "mi")
    small = select(capsys, "--methods", "mi", "--model", "other", data="six.jsonl", prompts="one.toml")
    assert (full["dataset"]["n"], small["dataset"]["n"]) == (12, 6)
    assert [p["id"] for p in full["prompts"]] == ["yesno", "goodbad", "plain"] and [p["id"] for p in small["prompts"]] == ["goodbad"]
    assert (full["backend"]["name"], full["backend"]["model"], small["backend"]["model"]) == ("fake", "fake", "other")
    # the model is part of what the cache keys on: a fingerprint of its own
    assert full["backend"]["fingerprint"] != small["backend"]["fingerprint"]
    code, _, err = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "--backend", "no-such-backend", "-q")
    assert code != 0 and "no-such-backend" in one_line_error(err)


@pytest.mark.option("select", "--methods", "--json", "-o")
def test_methods_pick_the_reports_methods_and_json_and_o_where_it_goes(capsys, project):
    every = select(capsys)
    two = select(capsys, "--methods", "mi,globale", "-o", "r.md")
    assert set(two["methods"]) == {"mi", "globale"} and {"mi", "globale", "locale", "consensus"} <= set(every["methods"])
    assert two["methods"]["mi"] == every["methods"]["mi"]
    assert Path("r.md").read_text().count("mi") and "globale" in Path("r.md").read_text()
    code, out, _ = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "--no-progress", "-q", "--methods", "mi")
    assert code == 0 and out == ""  # without --json nothing goes to stdout


@pytest.mark.option("select", "-O")
def test_method_arg_sets_a_methods_option(capsys, project):
    """consensus of MI alone ranks as MI does; of its default members, it does not here."""
    default = select(capsys, "--methods", "mi,consensus")
    alone = select(capsys, "--methods", "mi,consensus", "-O", "consensus.members=mi")
    assert alone["methods"]["consensus"]["ranking"] == alone["methods"]["mi"]["ranking"]
    assert default["methods"]["consensus"]["ranking"] != default["methods"]["mi"]["ranking"]
    code, _, err = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-q", "-O", "consensus.no_such_key=1")
    assert code == 2 and "no_such_key" in one_line_error(err)


@pytest.mark.option("select", "--recommend")
def test_recommend_names_the_label_free_rule(capsys, project):
    default = select(capsys)
    by_mi = select(capsys, "--recommend", "mi")
    assert default["recommendation"]["label_free"]["rule"] == "consensus"
    assert default["recommendation"]["label_free"]["prompt"] == default["methods"]["consensus"]["chosen"]
    assert by_mi["recommendation"]["label_free"]["rule"] == "mi"
    assert by_mi["recommendation"]["label_free"]["prompt"] == by_mi["methods"]["mi"]["chosen"]
    # the fake project's two rules disagree, so the option changes the answer
    assert by_mi["recommendation"]["label_free"]["prompt"] != default["recommendation"]["label_free"]["prompt"]


@pytest.mark.option("select", "--bootstrap")
def test_bootstrap_is_the_number_of_resamples(capsys, project):
    report = select(capsys, "--methods", "mi", "--bootstrap", "13")
    rec = report["recommendation"]
    assert rec["resamples"] == 13
    # the share of 13 resamples in which the prompt is best (a tie counts half) is a multiple of 1/26
    share = rec["stability"]["share"]
    assert abs(share * 26 - round(share * 26)) < 1e-9 and abs(share * 1000 - round(share * 1000)) > 1e-6, share
    assert select(capsys, "--methods", "mi")["recommendation"]["resamples"] == 1000


@pytest.mark.option("select", "--limit", "--seed")
def test_limit_draws_a_seeded_class_stratified_sample(capsys, project):
    a = select(capsys, "--methods", "mi", "--limit", "4")
    b = select(capsys, "--methods", "mi", "--limit", "4", "--seed", "3")
    by_id = {f"data.jsonl:{i}": y for i, (_, y) in enumerate(DATA)}
    for report in (a, b):
        ids = report["dataset"]["sample_ids"]
        assert report["dataset"]["n"] == 4 and len(ids) == 4
        assert sorted(by_id[i] for i in ids) == ["negative", "negative", "positive", "positive"]  # 6 and 6: 2 of each
    assert (a["seed"], b["seed"]) == (0, 3)
    assert a["dataset"]["sample_ids"] != b["dataset"]["sample_ids"]
    assert select(capsys, "--methods", "mi", "--limit", "4")["dataset"]["sample_ids"] == a["dataset"]["sample_ids"]


@pytest.mark.option("select", "--metric")
def test_metric_macro_f1_against_accuracy_by_hand(capsys, tmp_path):
    # one prompt predicting "a" for every input: labels a,a,a,b -> accuracy 3/4; macro-F1 = (F1_a + F1_b)/2
    # with F1_a = 2*3/(2*3+1) = 6/7 and F1_b = 0 -> 3/7
    path = scores_file(tmp_path / "s.npz", [[[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]], [0, 0, 0, 1])
    acc = from_scores(capsys, path, "--methods", "mi")
    f1 = from_scores(capsys, path, "--methods", "mi", "--metric", "macro_f1")
    assert (acc["metric"], f1["metric"]) == ("accuracy", "macro_f1")
    assert acc["prompts"][0]["performance"] == pytest.approx(3 / 4)
    assert f1["prompts"][0]["performance"] == pytest.approx(3 / 7)


@pytest.mark.option("select", "--ndcg")
def test_ndcg_raw_gains_are_two_to_the_accuracy_minus_one(capsys, tmp_path):
    # three prompts right on 4, 2 and 0 of 4 inputs; MI ranks them by how confident they are,
    # which is made the reverse order: the worst first
    labels = [0, 0, 1, 1]
    right = [[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]]
    half = [[0.8, 0.2], [0.2, 0.8], [0.8, 0.2], [0.2, 0.8]]
    wrong = [[0.01, 0.99], [0.01, 0.99], [0.99, 0.01], [0.99, 0.01]]
    path = scores_file(tmp_path / "s.npz", [right, half, wrong], labels)
    minmax = from_scores(capsys, path, "--methods", "mi")
    raw = from_scores(capsys, path, "--methods", "mi", "--ndcg", "raw")
    ranking = raw["methods"]["mi"]["ranking"]
    acc = {"p0": 1.0, "p1": 0.5, "p2": 0.0}
    assert [p["performance"] for p in raw["prompts"]] == [1.0, 0.5, 0.0]

    def ndcg(gain):
        dcg = sum(gain(acc[p]) / np.log2(i + 2) for i, p in enumerate(ranking))
        ideal = sum(gain(a) / np.log2(i + 2) for i, a in enumerate(sorted(acc.values(), reverse=True)))
        return dcg / ideal

    assert raw["ndcg_variant"] == "raw" and minmax["ndcg_variant"] == "minmax"
    assert raw["methods"]["mi"]["ndcg"] == pytest.approx(ndcg(lambda a: 2 ** a - 1))
    # min-max (the default): relevance (perf - min) / (max - min) = 1, 0.5, 0 here, linear gain
    assert minmax["methods"]["mi"]["ndcg"] == pytest.approx(ndcg(lambda a: a))
    assert minmax["methods"]["mi"]["ndcg"] != pytest.approx(raw["methods"]["mi"]["ndcg"])


@pytest.mark.option("select", "--aggregate")
def test_aggregate_max_against_sum_changes_only_classes_of_several_words(capsys, project, tmp_path):
    Path("two.toml").write_text('name = "t"\n[defaults]\nchat = false\n'
                                '[[prompt]]\nid = "one"\ntemplate = "{{text}} Verdict:"\nanswer_choices = { positive = ["good"], negative = ["bad"] }\n'
                                '[[prompt]]\nid = "two"\ntemplate = "{{text}} Verdict:"\n'
                                'answer_choices = { positive = ["good", "great"], negative = ["bad", "poor"] }\n')
    saved = {}
    for how in ("sum", "max"):
        select(capsys, "--methods", "mi", "--aggregate", how, "--save-scores", f"{how}.npz", prompts="two.toml")
        saved[how] = np.load(f"{how}.npz")["class_logprobs"]
    # one word per class: nothing to aggregate; two: log-sum-exp of the words against their max
    np.testing.assert_array_equal(saved["sum"][0], saved["max"][0])
    assert np.abs(saved["sum"][1] - saved["max"][1]).max() > 1e-3
    # with two words a class's summed probability exceeds its best word's: after normalising
    # over the classes the rows differ, and each is a distribution
    np.testing.assert_allclose(np.exp(saved["max"][1]).sum(-1), 1.0)


@pytest.mark.option("select", "--spell-on")
def test_spell_on_prompt_scores_the_template_where_the_model_sees_it(capsys, project):
    # chat prompts: 'prompt' scores the template after the system turn and chat header, 'raw' the
    # template alone; the fake project's prompts are not chat prompts, so add one that is
    Path("chat.toml").write_text(PROMPTS.replace("chat = false", "chat = true"))
    raw = select(capsys, "--methods", "spell", prompts="chat.toml")
    seen = select(capsys, "--methods", "spell", "--spell-on", "prompt", prompts="chat.toml")
    assert (raw["scoring"]["spell_text"], seen["scoring"]["spell_text"]) == ("template", "prompt")
    assert [p["scores"]["spell"] for p in raw["prompts"]] != [p["scores"]["spell"] for p in seen["prompts"]]
    # everything but SPELL is scored from the same label texts
    assert [p["performance"] for p in raw["prompts"]] == [p["performance"] for p in seen["prompts"]]


@pytest.mark.option("select", "-M")
def test_model_arg_reaches_the_backend(capsys, project):
    """The fake model favours 'yes/good/positive' after a text holding its cue word: moved
    to a word no review holds, the cue has no effect and goodbad loses its lead."""
    default = select(capsys, "--methods", "mi")
    uncued = select(capsys, "--methods", "mi", "-M", "cue=zzz")
    perf = {p["id"]: p["performance"] for p in default["prompts"]}
    perf_uncued = {p["id"]: p["performance"] for p in uncued["prompts"]}
    assert perf["goodbad"] > 0.75 and perf_uncued["goodbad"] < perf["goodbad"]
    code, _, err = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-q", "-M", "no_such_option=1")
    assert code == 2 and "no_such_option" in one_line_error(err)


@pytest.mark.option("select", "-j")
def test_jobs_reaches_the_backend_as_its_concurrency(capsys, project):
    """Requests in flight are a server backend's ``concurrency`` option: the in-process fake
    model has none, and says so only when -j is given."""
    select(capsys, "--methods", "mi")
    code, _, err = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-q", "-j", "8")
    assert code == 2 and "no option concurrency" in one_line_error(err)
    code, _, err = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-q", "-j", "0")
    assert code == 2


@pytest.mark.option("select", "--max-new-tokens")
def test_max_new_tokens_bounds_the_reasoning(capsys, project):
    """A CoT prompt's reasoning is generated first; the fake model writes min(N, 3) words, so
    N = 1 and N = 3 give other label texts and other numbers, N = 3 and N = 64 the same."""
    Path("cot.toml").write_text(PROMPTS.replace('id = "plain"', 'id = "plain"\ncot = true\ncot_instruction = "Think first."'))
    runs = {n: select(capsys, "--methods", "mi", "--max-new-tokens", str(n), prompts="cot.toml") for n in (1, 3, 64)}
    scores = {n: [p["scores"]["mi"] for p in r["prompts"]] for n, r in runs.items()}
    assert runs[1]["scoring"]["max_new_tokens"] == 1
    assert scores[1][2] != scores[3][2] and scores[3] == scores[64]
    assert scores[1][:2] == scores[3][:2]  # the prompts without reasoning do not move


@pytest.mark.option("select", "--max-chars")
def test_max_chars_cuts_long_inputs_at_a_word_boundary(capsys, project):
    report = select(capsys, "--methods", "mi", "--max-chars", "12", "--log-samples", "log.jsonl")
    assert report["dataset"]["max_chars"] == 12
    logged = {json.loads(line)["id"]: json.loads(line)["input"]["text"] for line in Path("log.jsonl").read_text().splitlines()}
    assert len(logged) == 12
    for i, (full, _) in enumerate(DATA):
        got = logged[f"data.jsonl:{i}"]
        if len(full) <= 12:
            assert got == full
            continue
        cut = got.rstrip("…").rstrip()
        # a prefix of at most 12 characters, ending where a word ends
        assert len(cut) <= 12 and full.startswith(cut) and full[len(cut)] in " ,", (full, got)
    assert sum(len(t) > 12 for t, _ in DATA) >= 6


@pytest.mark.option("select", "--no-cache")
def test_no_cache_recomputes_every_row(capsys, project):
    select(capsys, "--methods", "mi")
    again = select(capsys, "--methods", "mi")
    cold = select(capsys, "--methods", "mi", "--no-cache")
    assert again["cache"]["hits"] > 0 and again["cache"]["misses"] == 0  # the first run filled the cache
    assert cold["cache"]["enabled"] is False and cold["cache"]["hits"] == 0 and cold["cache"]["misses"] == again["cache"]["hits"]
    assert cold["prompts"] == again["prompts"]


@pytest.mark.option("select", "--field", "--label-field", "--classes")
def test_field_label_field_and_classes_read_a_file_with_other_columns(capsys, project):
    with open("reviews.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(DATA)
    code, _, err = run(capsys, "select", "-d", "reviews.csv", "-p", "prompts.toml", "-b", "fake", "-q", "--methods", "mi")
    assert code == 2 and "review" in one_line_error(err)
    mapped = select(capsys, "--methods", "mi", "--field", "text=review", "--label-field", "sentiment", data="reviews.csv")
    plain = select(capsys, "--methods", "mi")
    assert mapped["prompts"] == plain["prompts"]  # the same texts and labels under other names
    # without labels: --classes names the classes, and their order is the table's
    Path("unlabeled.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in DATA))
    code, _, err = run(capsys, "select", "-d", "unlabeled.jsonl", "-p", "prompts.toml", "-b", "fake", "-q", "--methods", "mi")
    assert code == 2 and "--classes" in one_line_error(err)
    unlabeled = select(capsys, "--methods", "mi", "--classes", "positive,negative", data="unlabeled.jsonl")
    assert unlabeled["dataset"]["classes"] == ["positive", "negative"] and unlabeled["prompts"][0]["performance"] is None


@pytest.mark.option("validate", "--dataset", "--field", "--label-field", "--classes")
def test_validate_checks_a_prompt_set_against_the_dataset_its_options_describe(capsys, project):
    with open("reviews.csv", "w", newline="") as f:
        csv.writer(f).writerows([["review", "sentiment"], *DATA])
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "reviews.csv", "--label-field", "sentiment")
    assert code == 2 and "{{text}}" in one_line_error(err) and "has fields: review" in err
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "reviews.csv", "--field", "text=review", "--label-field", "sentiment")
    assert code == 0 and "3 prompts" in err and "reviews.csv" in err
    Path("unlabeled.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in DATA))
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "unlabeled.jsonl")
    assert code == 2 and "--classes" in one_line_error(err)
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "unlabeled.jsonl", "--classes", "positive,negative")
    assert code == 0, err
    # a class the prompts have no label words for does not fit
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "unlabeled.jsonl", "--classes", "positive,neutral")
    assert code == 2 and "neutral" in one_line_error(err)


@pytest.mark.option("validate", "--backend", "--model", "-M")
def test_validate_probes_the_backend_model_and_options_given(capsys, project):
    def probe(*argv):
        code, out, _ = run(capsys, "validate", "--json", *argv)
        return code, json.loads(out)

    code, plain = probe("--backend", "fake")
    verdict = {c["name"]: c["verdict"] for c in plain["checks"]}
    assert (code, plain["backend"], plain["model"]) == (1, "fake", "fake")
    assert verdict["label log-probs (raw text)"] == "fail"  # the fake model's numbers ignore the question
    # an empty cue is in every text, so the cued words (the obvious answer among them) win
    code, cued = probe("--backend", "fake", "--model", "m2", "-M", "cue=", "-M", "cued_words=8,Paris")
    assert cued["model"] == "m2"
    assert {c["name"]: c["verdict"] for c in cued["checks"]}["label log-probs (raw text)"] == "ok"


@pytest.mark.option("plugins", "--json", "--no-all")
def test_plugins_no_all_leaves_the_bundled_plugins_out(capsys):
    """The tests load promptsel's own plugins only: all of them listed, none with --no-all."""
    code, out, _ = run(capsys, "plugins", "--json")
    every = json.loads(out)
    code2, out2, _ = run(capsys, "plugins", "--json", "--no-all")
    assert code == code2 == 0
    assert len(every) >= 3 and all(r["builtin"] for r in every)
    assert {"datasets", "methods", "backends"} <= {r["name"].rsplit(".", 1)[-1] for r in every} or len(every) >= 3
    assert json.loads(out2) == []


@pytest.mark.option("plot", "-o", "--projection")
def test_plot_writes_the_map_where_o_says_with_the_projection_asked(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from promptsel import EmbeddingStore

    store = EmbeddingStore()
    rng = np.random.default_rng(0)
    for i in range(6):
        store.put(f"mte-{i}", rng.normal(size=8), {"kind": "mte", "embedder": "taskemb", "surrogate": "bert", "task": "sentiment",
                                                   "model": "m", "backend": "fake", "prompt": f"sa{i:02d}", "prompt_set": "sa"})
    store.put("dte-0", rng.normal(size=8), {"kind": "dte", "embedder": "taskemb", "surrogate": "bert", "task": "sentiment",
                                            "dataset": "sst2", "split": "test"})
    summaries = {}
    for projection in ("pca", "tsne"):
        out = tmp_path / f"{projection}.png"
        code, stdout, err = run(capsys, "plot", "-o", str(out), "--projection", projection, "--json")
        assert code == 0, err
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        summaries[projection] = json.loads(stdout)
    panels = {k: v["panels"] if "panels" in v else v["plot"]["panels"] for k, v in summaries.items()}
    assert [p["projection"] for p in panels["pca"]] == ["pca"] and [p["projection"] for p in panels["tsne"]] == ["tsne"]


@pytest.mark.option("lock", "--lock")
def test_lock_writes_the_file_lock_names(capsys, project):
    code, _, err = run(capsys, "lock", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-m", "mi", "-q", "--no-progress",
                       "--lock", "ci/other.lock")
    assert code == 0, err
    assert not Path("promptsel.lock").exists()
    entries = json.loads(Path("ci/other.lock").read_text())["entries"]
    assert list(entries) == ["prompts.toml | data.jsonl | fake:fake"] or len(entries) == 1


@pytest.mark.option("check", "--tolerance")
def test_tolerance_decides_whether_a_drop_regresses(capsys, project):
    code, _, err = run(capsys, "lock", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-m", "mi", "-q", "--no-progress")
    assert code == 0, err
    # swapping goodbad's label words turns its accuracy a into 1 - a (the texts are the same)
    text = Path("prompts.toml").read_text()
    Path("prompts.toml").write_text(text.replace('positive = ["good"], negative = ["bad"]', 'negative = ["good"], positive = ["bad"]'))
    locked = json.loads(Path("promptsel.lock").read_text())["entries"]
    before = next(iter(locked.values()))["prompts"]["goodbad"]["performance"]
    drop = before - (1 - before)
    assert drop > 0.1
    code, _, err = run(capsys, "check", "--no-progress", "--tolerance", f"{drop - 0.01:.4f}")
    assert code == 100, err
    code, _, err = run(capsys, "check", "--no-progress", "--tolerance", f"{drop + 0.01:.4f}")
    assert code == 0, err


@pytest.mark.option("validate", "--split")
def test_validate_split_is_for_a_named_dataset(capsys, project):
    sa = str(Path(__file__).resolve().parents[2] / "prompts" / "sa.toml")
    code, _, err = run(capsys, "validate", sa, "--dataset", "sst2", "--split", "test")
    assert code == 0 and "fits dataset 'sst2'" in err
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "data.jsonl")
    assert code == 0, err
    code, _, err = run(capsys, "validate", "prompts.toml", "--dataset", "data.jsonl", "--split", "test")
    assert code == 2 and "--split applies to named datasets" in one_line_error(err)


@pytest.mark.option("lock", "-M", "-O")
def test_lock_records_backend_and_method_options_and_runs_with_them(capsys, project):
    def locked(*argv):
        code, _, err = run(capsys, "lock", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-m", "mi,consensus", "-q",
                           "--no-progress", "--lock", "l.lock", *argv)
        assert code == 0, err
        return next(iter(json.loads(Path("l.lock").read_text())["entries"].values()))

    plain = locked()
    Path("l.lock").unlink()
    tuned = locked("-M", "cue=zzz", "-O", "consensus.members=mi")
    # consensus of MI alone chooses what MI chooses; the moved cue changes the fake model's numbers
    assert tuned["methods"]["consensus"]["chosen"] == tuned["methods"]["mi"]["chosen"]
    assert plain["methods"]["consensus"]["chosen"] != plain["methods"]["mi"]["chosen"]
    assert [p["performance"] for p in tuned["prompts"].values()] != [p["performance"] for p in plain["prompts"].values()]
    assert "zzz" in json.dumps(tuned) and "members" in json.dumps(tuned)  # recorded for check to rerun the same
