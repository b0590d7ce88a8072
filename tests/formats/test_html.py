"""The HTML report: self-contained, escaped, robust to older reports, and really rendered.

The rendering tests run Debian's headless ``chromium``; without it they skip on a developer's
machine and fail in CI (``CI`` set: ``tests.offline.in_ci``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from promptsel.formats.html import to_html
from promptsel.fute.method import FuteMethod
from promptsel.selection import recommend
from tests.offline import unavailable
from tests.paths import ROOT
from tests.shared_data import shared_path

EVIL = '<script>alert("x")</script>&<b>'


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    msg = "headless chromium not found; install Debian's chromium package (apt-get install chromium)."
    unavailable(msg)


def run_chromium(html_path: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", *args, html_path.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def fixture_report(n_prompts: int = 13, labels: bool = True) -> dict:
    """A real report: the pipeline on the UPS fixture, plus the recommendation fields."""
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        arrays = {k: d[k] for k in d.files}
    return _report_from(arrays, n_prompts, labels)


def _report_from(arrays, n_prompts, labels):
    import tempfile

    from promptsel.model.request import SelectRequest
    from promptsel.selection.run import run_select

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ups.npz"
        extra = {"labels": arrays["targets"]} if labels else {}
        np.savez(path, class_logprobs=arrays["log_prob"][:n_prompts], prompt_nll=-np.log(arrays["p_xt"][:n_prompts]),
                 prompt_ids=arrays["prompt"][:n_prompts], **extra)
        report, table = run_select(SelectRequest(scores=path, methods=["mi", "globale", "zps-vote", "spell", "consensus"]))
    scores = {m: np.array([p["scores"][m] for p in report["prompts"]]) for m in report["methods"]}
    report.update(recommend.decide(table, scores, resamples=200))
    return report


@pytest.fixture(scope="module")
def labelled_report() -> dict:
    return fixture_report()


# --- the document itself --------------------------------------------------------------------

def test_self_contained(labelled_report):
    page = to_html(labelled_report)
    assert page.startswith("<!DOCTYPE html>")
    # No fetched resource of any kind: the only URL is the SVG namespace, which is a name.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}
    for pattern in (r"\bsrc\s*=", r"\bhref\s*=", r"url\(", r"@import", r"<link\b", r"<script\b"):
        assert not re.search(pattern, page, re.IGNORECASE), pattern
    assert "default-src 'none'" in page  # and the browser is told to refuse any load


def test_user_text_is_escaped(labelled_report):
    report = json.loads(json.dumps(labelled_report, default=float))
    first = report["prompts"][0]["id"]
    report["prompts"][0]["id"] = EVIL
    report["dataset"]["name"] = EVIL
    report["recommendation"]["prompt"] = EVIL
    report["warnings"].append({"code": EVIL, "severity": "warning", "message": EVIL})
    report["methods"][EVIL] = report["methods"].pop("mi")
    report["prompt_stats"][EVIL] = report["prompt_stats"].pop(first)
    # A method's own report section (FUTE's): its lines quote the corpus and surrogate names.
    report["fute"] = {"embeddings": [{"kind": "mte", "status": "computed", "seconds": 1.0}],
                      "unlabeled": {"name": EVIL, "size": 3, "sources": ["a"]}, "surrogate": {"name": EVIL}}
    page = to_html(report)
    assert "<script" not in page and "<b>" not in page
    assert "Method notes" in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;") >= 7


def test_robust_to_older_and_partial_reports():
    old = json.loads((ROOT / "bench" / "quality_reports.json").read_text())["sst2"]
    page = to_html(old)  # schema 1: no recommendation, warnings, intervals or agreement
    assert "no recommendation" in page
    assert "Method agreement" in page  # derived from the per-prompt scores
    assert "sa07" in page
    assert "<html" in to_html({})
    bare = {"prompts": [{"id": "a", "performance": None, "scores": {}}], "methods": {}}
    assert "Performance per prompt" not in to_html(bare)


def test_label_free_recommendation_renders():
    rec = {"prompt": "p3", "rule": "fute-tupate", "basis": "label-free", "tied": ["p3"],
           "stability": {"share": None, "cover": [], "cover_level": 0.9, "estimated": False, "how": FuteMethod.bootstrap},
           "calibration": "cbm", "calibration_prior": {"negative": 0.25, "pos<itive>": 0.75}}
    page = to_html({"recommendation": rec, "prompts": [], "methods": {}})
    assert "label-free rule <b>fute-tupate</b>" in page
    assert "not estimated: FUTE scores a prompt" in page
    assert "divide its class probabilities by its prior (negative 0.250, pos&lt;itive&gt; 0.750)" in page


# --- in a real browser ----------------------------------------------------------------------

def test_renders_in_headless_chromium(labelled_report, tmp_path):
    from PIL import Image

    rec = labelled_report["recommendation"]
    page = tmp_path / "report.html"
    page.write_text(to_html(labelled_report), encoding="utf-8")
    shot = tmp_path / "report.png"
    done = run_chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not a blank page
    background = np.all(np.abs(pixels - pixels[5, 5]) < 8, axis=-1)
    assert background.mean() < 0.97  # something is drawn on most of the page's height
    # The recommendation's green (#1b7f3b) is on screen: its card and the chart's point.
    green = np.all(np.abs(pixels - np.array([0x1B, 0x7F, 0x3B])) < 30, axis=-1)
    assert green.sum() > 500

    dom = run_chromium(page, tmp_path, "--dump-dom").stdout
    card = re.search(r'<section class="card rec" id="recommendation">(.*?)</section>', dom, re.DOTALL)
    assert card, dom[:2000]
    assert f'<div class="prompt">{rec["prompt"]}</div>' in card.group(1)
    assert "best measured accuracy" in card.group(1)
    for w in labelled_report["warnings"]:
        assert w["code"] in dom
    assert dom.count("<circle") >= len(labelled_report["prompts"])  # one point per prompt in the chart


def test_escaped_text_stays_text_in_the_browser(labelled_report, tmp_path):
    report = json.loads(json.dumps(labelled_report, default=float))
    report["recommendation"]["prompt"] = EVIL
    page = tmp_path / "evil.html"
    page.write_text(to_html(report), encoding="utf-8")
    dom = run_chromium(page, tmp_path, "--dump-dom").stdout
    assert "<script>" not in dom  # parsed as text, re-serialised escaped
    assert "&lt;script&gt;alert(\"x\")&lt;/script&gt;&amp;&lt;b&gt;" in dom


def test_label_free_report_shows_pick_shares_not_empty_performance():
    report = fixture_report(13, labels=False)
    page = to_html(report)
    assert "<th>chosen in resamples</th>" in page
    assert "<th>interval</th>" not in page and "Performance per prompt" not in page
    assert "label-free rule <b>consensus</b>" in page


def test_the_card_and_every_prompt_row_carry_their_own_interval(labelled_report):
    """Read where a person reads them, not in the chart's tooltips (which repeat the numbers):
    the recommendation card shows the recommended prompt's interval, and each row of the
    prompts table its own, as the report's numbers printed with three decimals."""
    page = to_html(labelled_report)
    card = re.search(r'<section class="card rec" id="recommendation">.*?</section>', page, re.S).group(0)
    low, high = labelled_report["recommendation"]["performance_interval"]
    assert f"{low:.3f}–{high:.3f}" in card
    table = re.search(r'<section id="prompts">.*?</section>', page, re.S).group(0)
    rows = dict(re.findall(r'<tr[^>]*><td class="id">([^<]*)</td>(.*?)</tr>', table, re.S))
    stats = labelled_report["prompt_stats"]
    assert set(rows) == set(stats)
    for pid, st in stats.items():
        low, high = st["performance_interval"]
        assert f"<td>{low:.3f}–{high:.3f}</td>" in rows[pid], pid
