"""The HTML report as a browser lays it out (issue 23): at 800 and 1400 px wide the chart is
whole (it scales, it is not cut), the page itself never scrolls sideways (a wide table scrolls
inside its own box), and the recommendation is above the fold.

The page forbids scripts (its Content-Security-Policy); the test loads a copy without that line
and with a script that measures the layout and writes it into the DOM that chromium dumps."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from promptsel.formats.html import to_html
from tests.formats.test_html import fixture_report, run_chromium

MEASURE = """<script>
const view = document.documentElement.clientWidth;
const box = e => e.getBoundingClientRect();
const out = {view, page: document.documentElement.scrollWidth,
  svgs: [...document.querySelectorAll('svg')].map(s => ({left: box(s).left, right: box(s).right})),
  scrolls: [...document.querySelectorAll('.scroll')].map(s => ({right: box(s).right, inner: s.scrollWidth, outer: s.clientWidth})),
  rec: box(document.getElementById('recommendation')).top};
const pre = document.createElement('pre'); pre.id = 'layout'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.fixture(scope="module")
def hundred_prompts() -> dict:
    return fixture_report(100)


def layout(report: dict, tmp_path, width: int) -> dict:
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", to_html(report))
    path = tmp_path / f"layout{width}.html"
    path.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = run_chromium(path, tmp_path, f"--window-size={width},1000", "--dump-dom").stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("width", [800, 1400])
def test_nothing_is_clipped(hundred_prompts, tmp_path, width):
    seen = layout(hundred_prompts, tmp_path, width)
    view = seen["view"]
    assert seen["page"] <= view  # the page itself does not scroll sideways
    assert seen["svgs"], "no chart"
    for svg in seen["svgs"]:
        assert svg["left"] >= 0 and svg["right"] <= view  # the whole chart is on screen
    for box in seen["scrolls"]:
        assert box["right"] <= view  # a wide table scrolls inside its box, the box fits
    assert seen["rec"] < 1000 / 2  # the recommendation above the fold


def test_label_free_report_has_a_chart():
    page = to_html(fixture_report(13, labels=False))
    assert 'id="pick-shares"' in page and "<rect" in page


def test_axis_ticks_are_round_and_titled(hundred_prompts):
    page = to_html(hundred_prompts)
    chart = re.search(r'<section class="card" id="performance">.*?</section>', page, re.S).group(0)
    ticks = [float(t) for t in re.findall(r'fill="#5a6270">([0-9.]+)</text>', chart)]
    assert len(ticks) >= 3
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    assert any(np.isclose(steps[0], m * 10.0 ** k) for m in (1, 2, 2.5, 5) for k in (-3, -2, -1))
    assert "accuracy, with its 95% bootstrap interval" in chart
    assert 'viewBox="0 0 ' in chart


def test_prompt_table_best_first_and_revision_in_footer(hundred_prompts):
    report = dict(hundred_prompts, run={"promptsel_revision": {"commit": "0123456789abcdef0123", "dirty": True}})
    page = to_html(report)
    table = re.search(r'<section id="prompts">.*?</section>', page, re.S).group(0)
    ids = re.findall(r'<td class="id">([^<]*)</td>', table)
    perf = {p["id"]: p["performance"] for p in report["prompts"]}
    assert [perf[i] for i in ids] == sorted(perf.values(), reverse=True)
    assert "promptsel revision: 0123456789ab (uncommitted changes)" in page
