"""The selection report as one self-contained HTML file (``-o report.html``).

No network and no external assets: inline CSS and inline SVG only, so the file opens anywhere,
offline, and can be attached to a CI run. Every piece of user text (prompt ids, method names,
dataset and model names, messages) goes through ``html.escape``: it is data, never markup.

Reads the report dict (``promptsel.report`` plus the fields of ``promptsel.selection.recommend``) and is
robust to any of them missing, so an older report still renders what it has. The methods' own
report sections appear as the lines each method makes of its section.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .summary import adaptive_lines, at_chance, label_free_verdict, performance_cell

#: Colours (one palette for the whole page; the chart and the tables agree).
RECOMMENDED = "#1b7f3b"
ALTERNATIVE = "#d08a00"
OTHER = "#4a6fa5"
MUTED = "#8a8f98"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b; margin: 0; background: #f5f6f8; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #5a6270; margin: 0 0 16px; }
.card { background: #fff; border: 1px solid #dfe3e8; border-radius: 8px; padding: 16px 20px; margin: 12px 0; }
.rec { border-left: 6px solid """ + RECOMMENDED + """; }
.rec .prompt { font-size: 26px; font-weight: 700; color: """ + RECOMMENDED + """; word-break: break-all; }
.rec dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 10px 0 0; }
.rec.chance { border-left-color: #c0392b; }
.rec dt { color: #5a6270; } .rec dd { margin: 0; }
.warn { border-left: 6px solid #c0392b; padding: 8px 12px; margin: 6px 0; background: #fff; border-radius: 6px; }
.warn.info { border-left-color: #4a6fa5; }
.code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eef0f3; padding: 1px 6px; border-radius: 4px; margin-right: 6px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #e3e6ea; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #eef0f3; font-weight: 600; } td.id, th.id { text-align: left; }
tr.recommended td { background: #e8f5ec; font-weight: 600; }
td.chosen { outline: 2px solid """ + RECOMMENDED + """; outline-offset: -2px; }
.scroll { overflow-x: auto; } .none { color: """ + MUTED + """; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; }
footer { color: #5a6270; font-size: 12px; margin-top: 32px; }
"""


def esc(value: Any) -> str:
    """User text as HTML text or attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return esc(value)


def interval(pair: Sequence[float] | None, digits: int = 3) -> str:
    return "–" if not pair else f"{num(pair[0], digits)}–{num(pair[1], digits)}"


def to_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (a string)."""
    ds = report.get("dataset") or {}
    be = report.get("backend") or {}
    title = f"promptsel: {ds.get('name', 'report')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may load from elsewhere, even if a future edit adds a URL by mistake.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{_meta_line(report, ds, be)}</p>',
        _recommendation(report),
        _warnings(report.get("warnings")),
        _chart_section(report),
        _prompt_table(report),
        _method_table(report),
        _agreement(report),
        _examples(report),
        _sections(report),
        _footer(report),
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


# --- pieces ---------------------------------------------------------------------------------

def _meta_line(report: Mapping[str, Any], ds: Mapping[str, Any], be: Mapping[str, Any]) -> str:
    bits = []
    if ds:
        bits.append((f"split {esc(ds['split'])}, " if ds.get("split") else "") + f"n = {esc(ds.get('n', '–'))}")
    if be.get("name"):
        bits.append(f"backend {esc(be.get('name'))}, model {esc(be.get('model'))}")
    elif be:
        bits.append("from a scores file")
    if report.get("metric"):
        bits.append(f"metric {esc(report['metric'])}")
    if report.get("calibration"):
        bits.append(f"calibration {esc(report['calibration'])}")
    if report.get("seed") is not None:
        bits.append(f"seed {esc(report['seed'])}")
    return " · ".join(bits)


def _recommendation(report: Mapping[str, Any]) -> str:
    rec = report.get("recommendation")
    if not rec:
        return ('<section class="card rec"><h2>Recommendation</h2><p class="none">This report has no recommendation '
                "(written by an older promptsel); see the tables below.</p></section>")
    rows = []
    basis = rec.get("basis")
    rule = rec.get("rule")
    rule_text = f"best measured {esc(rec.get('metric') or 'performance')} on the labelled sample" if basis == "labels" \
        else f"label-free rule <b>{esc(rule)}</b> (no labels)"
    rows.append(("chosen by", rule_text))
    level = rec.get("level")
    level_text = f"{level:.0%} interval" if isinstance(level, (int, float)) else "interval"
    adaptive = report.get("adaptive")
    if rec.get("performance") is not None and adaptive:
        rows.append((esc(rec.get("metric") or "performance"),
                     f"{num(rec['performance'])} ({level_text} {interval(rec.get('performance_interval'))}, anytime-valid: "
                     "valid after the adaptive stop)"))
        rows += [("adaptive", esc(line)) for line in adaptive_lines(report)]
    elif rec.get("performance") is not None:
        rows.append((esc(rec.get("metric") or "performance"),
                     f"{num(rec['performance'])} ({level_text} {interval(rec.get('performance_interval'))}; "
                     f"{esc(rec.get('resamples', '–'))} paired bootstrap resamples)"))
    if rec.get("chance") is not None:
        rows.append(("chance level", num(rec["chance"])))
    stability = rec.get("stability") or {}
    if stability:
        if stability.get("estimated"):
            cover = ", ".join(esc(p) for p in stability.get("cover") or [])
            rows.append(("stability", f"{num(stability.get('share'), 2)} of resamples choose it; "
                                      f"{esc(format(stability.get('cover_level', 0.9), '.0%'))} of choices fall in: {cover or '–'}"))
        else:
            rows.append(("stability", f'<span class="none">not estimated: {esc(stability.get("how"))}</span>'))
    alternatives = rec.get("indistinguishable") or []
    if basis == "labels":
        if alternatives:
            items = ", ".join(f"{esc(a.get('prompt'))} ({num(a.get('performance'))}, lead {interval(a.get('lead_interval'))})"
                              for a in alternatives)
            rows.append(("indistinguishable", items))
        else:
            rows.append(("indistinguishable", "none: its lead over every other prompt excludes 0"))
    tied = rec.get("tied") or []
    if len(tied) > 1:
        rows.append(("tied at the top", ", ".join(esc(t) for t in tied)))
    calibration = rec.get("calibration")
    if calibration and calibration != "none":
        prior = rec.get("calibration_prior") or {}
        shown = ", ".join(f"{esc(c)} {num(v)}" for c, v in prior.items())
        rows.append(("calibration", f"{esc(calibration)}: the numbers are for the calibrated prompt"
                                    + (f"; divide its class probabilities by its prior ({shown}) when you use it" if shown else "")))
    free = rec.get("label_free")
    if free:
        rows.append(("without labels", f"{esc(free.get('rule'))} would pick {esc(label_free_verdict(rec))}"))
    rows += _variant_rows(report)
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    if at_chance(report):  # not a green light: say so above the prompt, in the warning's colour
        return (f'<section class="card rec chance" id="recommendation"><h2>No prompt measurably beats chance</h2>'
                f'<p>The best measured is <b>{esc(rec.get("prompt"))}</b>; the model may not do this task at all.</p>'
                f'<dl>{dl}</dl></section>')
    return (f'<section class="card rec" id="recommendation"><h2>Recommendation</h2>'
            f'<div class="prompt">{esc(rec.get("prompt"))}</div><dl>{dl}</dl></section>')


def _warnings(warnings: Sequence[Mapping[str, Any]] | None) -> str:
    if not warnings:
        return ""
    items = "".join(
        f'<div class="warn {"info" if w.get("severity") == "info" else ""}"><span class="code">{esc(w.get("code"))}</span>'
        f"{esc(w.get('message'))}</div>"
        for w in warnings
    )
    return f'<section id="warnings"><h2>Warnings</h2>{items}</section>'


def _stats(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per-prompt extras, from ``prompt_stats`` or merged into the prompt entries."""
    stats = dict(report.get("prompt_stats") or {})
    for p in report.get("prompts") or []:
        if "performance_interval" in p and p.get("id") not in stats:
            stats[p.get("id")] = p
    return stats


def _chart_section(report: Mapping[str, Any]) -> str:
    prompts = [p for p in report.get("prompts") or [] if p.get("performance") is not None]
    if not prompts:
        svg = pick_share_chart(report)
        return (f'<section class="card" id="pick-shares"><h2>How often each prompt is picked</h2>'
                f'<p class="meta">Without labels: the share of resamples of the inputs in which the rule, rerun, picks the '
                f'prompt (prompts it never picks are left out).</p>{svg}</section>') if svg else ""
    svg = performance_chart(report)
    return (f'<section class="card" id="performance"><h2>Performance per prompt</h2>'
            f'<p class="legend"><span><i style="background:{RECOMMENDED}"></i>recommended</span>'
            f'<span><i style="background:{ALTERNATIVE}"></i>indistinguishable from it</span>'
            f'<span><i style="background:{OTHER}"></i>other prompts</span>'
            f'<span>dashed line: chance level</span></p>{svg}</section>')


def performance_chart(report: Mapping[str, Any], width: int = 1000) -> str:
    """Per-prompt performance with its bootstrap interval, best first, as inline SVG."""
    stats = _stats(report)
    rec = report.get("recommendation") or {}
    close = {a.get("prompt") for a in rec.get("indistinguishable") or []}
    prompts = sorted((p for p in report.get("prompts") or [] if p.get("performance") is not None),
                     key=lambda p: -p["performance"])
    chance = rec.get("chance")
    values = [p["performance"] for p in prompts]
    for p in prompts:
        iv = (stats.get(p["id"]) or {}).get("performance_interval")
        if iv:
            values += list(iv)
    if chance is not None:
        values.append(chance)
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.05, 0.01)
    lo = max(0.0, lo - pad)
    hi = min(1.0, hi + pad) if hi <= 1 else hi + pad
    left, right, row, top = 190, 30, 20, 44
    height = top + row * len(prompts) + 10
    span = (width - left - right) / (hi - lo if hi > lo else 1.0)

    def x(v: float) -> float:
        return left + (v - lo) * span

    metric = str(report.get("metric") or "performance")
    level = rec.get("level")
    title = f"{metric}, with its {level:.0%} bootstrap interval" if isinstance(level, (int, float)) else metric
    out = [_svg_open(width, height, "performance per prompt with intervals")]
    out += _axis(lo, hi, x, top, height, title)
    if chance is not None:
        out.append(f'<line x1="{x(chance):.1f}" y1="{top - 6}" x2="{x(chance):.1f}" y2="{height - 6}" stroke="#c0392b" '
                   f'stroke-dasharray="5 4"><title>chance level {chance:.3f}</title></line>')
    for i, p in enumerate(prompts):
        pid = p.get("id")
        y = top + i * row + row / 2
        colour = RECOMMENDED if pid == rec.get("prompt") else ALTERNATIVE if pid in close else OTHER
        label = str(pid) if len(str(pid)) <= 26 else str(pid)[:25] + "…"
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#1d232b">{esc(label)}<title>{esc(pid)}</title></text>')
        iv = (stats.get(pid) or {}).get("performance_interval")
        tip = f"{pid}: {p['performance']:.3f}" + (f" ({iv[0]:.3f}–{iv[1]:.3f})" if iv else "")
        if iv:
            out.append(f'<line x1="{x(iv[0]):.1f}" y1="{y:.1f}" x2="{x(iv[1]):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="3" '
                       f'stroke-linecap="round" opacity="0.55"/>')
        out.append(f'<circle cx="{x(p["performance"]):.1f}" cy="{y:.1f}" r="5" fill="{colour}"><title>{esc(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _variant_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The recommendation card's rows for a variant, its sensitivity band and ``--holdout``."""
    from .summary import variant_lines

    rows = [("variant" if line.startswith("It is") else "sensitivity", esc(line)) for line in variant_lines(report)]
    h = report.get("holdout")
    if h:
        level = f"{h.get('level', 0.95):.0%}"
        base = h["baseline"]
        rows.append(("held out", f"{esc(h['n_heldout'])} examples unseen by the choice: {esc(h['chosen'])} "
                                 f"{num(h['chosen_heldout'])} ({level} interval {interval(h['chosen_heldout_interval'])}); "
                                 f"optimism of the choosing part {num(h['optimism'])}"
                                 + (f" ({esc(h['optimism_meaning'])})" if h.get("optimism_meaning") else "")))
        rows.append(("held-out baseline", f"{esc(base['prompt'])} ({esc(base['how'])}) {num(base['heldout'])} "
                                          f"({level} interval {interval(base['heldout_interval'])}); difference "
                                          f"{num(h['difference'])}, paired {level} interval {interval(h['difference_interval'])}"))
    return rows


def _svg_open(width: int, height: int, label: str) -> str:
    """An SVG that scales to its box: drawn in a ``width`` × ``height`` viewBox, shown at the
    box's width (never wider than drawn), so a narrow window shrinks it instead of cutting it."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'style="max-width:{width}px;height:auto;display:block" preserveAspectRatio="xMinYMin meet" role="img" '
            f'aria-label="{esc(label)}" font-family="system-ui, sans-serif" font-size="12">')


def round_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Tick values at a round step (1, 2, 2.5 or 5 times a power of ten) inside [lo, hi], at most
    ``most`` of them and at least two when the range allows."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    k = 0
    while first + k * step <= hi + 1e-9:
        ticks.append(round(first + k * step, 10))
        k += 1
    return ticks


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    """As many decimals as the step needs (0.05 -> 2, 0.025 -> 3, 10 -> 0)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = 0
    while digits < 6 and abs(round(step * 10 ** digits) - step * 10 ** digits) > 1e-6:
        digits += 1
    return f"{value:.{digits}f}"


def _axis(lo: float, hi: float, x, top: int, height: int, title: str) -> list[str]:
    """Grid lines at round ticks, their labels, and the axis title above them."""
    ticks = round_ticks(lo, hi)
    out = [f'<text x="{x((lo + hi) / 2):.1f}" y="12" text-anchor="middle" fill="#1d232b" font-weight="600">{esc(title)}</text>']
    for v in ticks:
        out.append(f'<line x1="{x(v):.1f}" y1="{top - 6}" x2="{x(v):.1f}" y2="{height - 6}" stroke="#e3e6ea"/>'
                   f'<text x="{x(v):.1f}" y="{top - 10}" text-anchor="middle" fill="#5a6270">{_tick_label(v, ticks)}</text>')
    return out


def pick_share_chart(report: Mapping[str, Any], width: int = 1000) -> str:
    """Without labels: how often the rule, rerun on resampled inputs, picks each prompt (the
    prompts it ever picks, most picked first), as bars."""
    stats = _stats(report)
    shares = sorted(((p.get("id"), (stats.get(p.get("id")) or {}).get("pick_share")) for p in report.get("prompts") or []),
                    key=lambda item: -(item[1] or 0.0))
    shown = [(pid, share) for pid, share in shares if share]
    if not shown:
        return ""
    rec = report.get("recommendation") or {}
    left, right, row, top = 190, 30, 20, 44
    height = top + row * len(shown) + 10
    span = width - left - right

    def x(v: float) -> float:
        return left + v * span

    out = [_svg_open(width, height, "share of resamples in which each prompt is picked")]
    out += _axis(0.0, 1.0, x, top, height, f"share of resamples in which {rec.get('rule') or 'the rule'} picks the prompt")
    for i, (pid, share) in enumerate(shown):
        y = top + i * row + 3
        colour = RECOMMENDED if pid == rec.get("prompt") else OTHER
        label = str(pid) if len(str(pid)) <= 26 else str(pid)[:25] + "…"
        out.append(f'<text x="{left - 8}" y="{y + 11:.1f}" text-anchor="end" fill="#1d232b">{esc(label)}<title>{esc(pid)}</title></text>'
                   f'<rect x="{left}" y="{y:.1f}" width="{max(share * span, 1):.1f}" height="{row - 6}" fill="{colour}">'
                   f'<title>{esc(pid)}: {share:.2f}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def _prompt_table(report: Mapping[str, Any]) -> str:
    prompts = report.get("prompts") or []
    if not prompts:
        return ""
    stats_by_id = _stats(report)
    # Best first: by performance, or without labels by how often the rule picks the prompt.
    prompts = sorted(prompts, key=lambda p: -(p.get("performance") if p.get("performance") is not None
                                              else (stats_by_id.get(p.get("id")) or {}).get("pick_share") or 0.0))
    methods = list((report.get("methods") or {}).keys())
    chosen = {m: set((e or {}).get("tied") or [(e or {}).get("chosen")]) for m, e in (report.get("methods") or {}).items()}
    stats = _stats(report)
    rec_prompt = (report.get("recommendation") or {}).get("prompt")
    metric = esc(report.get("metric") or "performance")
    measured = any(p.get("performance") is not None for p in prompts)
    shared = any((stats.get(p.get("id")) or {}).get("pick_share") is not None for p in prompts)
    variants = any(p.get("parent") for p in prompts)
    from .summary import axes_text

    head = ('<tr><th class="id">prompt</th>' + "".join(f"<th>{esc(m)}</th>" for m in methods)
            + (f"<th>{metric}</th><th>interval</th>" if measured else "")
            + ("<th>chosen in resamples</th>" if shared else "") + "<th>top class (share)</th>"
            + ("<th>variant of</th>" if variants else "") + "</tr>")
    body = []
    for p in prompts:
        pid = p.get("id")
        cells = []
        for m in methods:
            score = (p.get("scores") or {}).get(m)
            mark = ' class="chosen" title="this method\'s choice"' if pid in chosen.get(m, ()) else ""
            cells.append(f"<td{mark}>{num(score, 4)}</td>")
        st = stats.get(pid) or {}
        if measured:
            perf = esc(performance_cell(p)) if p.get("n") is not None else num(p.get("performance"))
            cells.append(f"<td>{perf}</td><td>{interval(st.get('performance_interval'))}</td>")
        if shared:
            cells.append(f"<td>{num(st.get('pick_share'), 2)}</td>")
        top = f"{esc(st.get('top_class'))} ({num(st.get('top_share'), 2)})" if st.get("top_class") is not None else "–"
        cls = ' class="recommended"' if pid == rec_prompt else ""
        if variants:
            cells_end = (f'<td title="{esc(axes_text(p.get("axes") or {}))}">{esc(p.get("parent"))}</td>' if p.get("parent")
                         else "<td>–</td>")
        else:
            cells_end = ""
        body.append(f'<tr{cls}><td class="id">{esc(pid)}</td>{"".join(cells)}<td>{top}</td>{cells_end}</tr>')
    return (f'<section id="prompts"><h2>Prompts × methods</h2><p class="meta">Scores (higher is better); a framed cell is '
            f'the method\'s choice.</p><div class="scroll"><table>{head}{"".join(body)}</table></div></section>')


def _method_table(report: Mapping[str, Any]) -> str:
    methods = report.get("methods") or {}
    if not methods:
        return ""
    head = ('<tr><th class="id">method</th><th class="id">chosen</th><th>performance</th><th>rate</th>'
            f"<th>NDCG ({esc(report.get('ndcg_variant') or 'minmax')})</th><th>Spearman</th><th>Kendall</th></tr>")
    rows = []
    for m, e in methods.items():
        e = e or {}
        tied = e.get("tied") or []
        extra = f" (+{len(tied) - 1} tied)" if len(tied) > 1 else ""
        rows.append(f'<tr><td class="id">{esc(m)}</td><td class="id">{esc(e.get("chosen"))}{esc(extra)}</td>'
                    f"<td>{num(e.get('performance'))}</td><td>{num(e.get('rate'))}</td><td>{num(e.get('ndcg'))}</td>"
                    f"<td>{num(e.get('spearman'))}</td><td>{num(e.get('kendall'))}</td></tr>")
    oracle, random = report.get("oracle") or {}, report.get("random") or {}
    note = ""
    if oracle.get("chosen") is not None:
        note = (f'<p class="meta">Best prompt: {esc(oracle.get("chosen"))} ({num(oracle.get("performance"))}). A random '
                f'ranking: expected NDCG {num(random.get("ndcg"))}, expected performance {num(random.get("performance"))}. '
                "With ties at the top, performance and rate are the mean over the tied prompts.</p>")
    return f'<section id="methods"><h2>Choice per method</h2><div class="scroll"><table>{head}{"".join(rows)}</table></div>{note}</section>'


def _agreement_data(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    agreement = report.get("agreement")
    if agreement and agreement.get("methods"):
        return agreement
    # Older reports: derive it from the per-prompt scores.
    prompts = report.get("prompts") or []
    methods = [m for m in (report.get("methods") or {}) if all((p.get("scores") or {}).get(m) is not None for p in prompts)]
    if len(methods) < 2 or len(prompts) < 2:
        return None
    import numpy as np

    from ..selection.recommend import method_agreement

    return method_agreement({m: np.array([p["scores"][m] for p in prompts], dtype=float) for m in methods})


def _agreement(report: Mapping[str, Any]) -> str:
    data = _agreement_data(report)
    if not data:
        return ""
    names = list(data["methods"])

    def grid(matrix: Sequence[Sequence[float | None]], signed: bool) -> str:
        head = '<tr><th class="id"></th>' + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>"
        rows = []
        for name, values in zip(names, matrix):
            cells = []
            for v in values:
                if v is None:
                    cells.append('<td class="none">–</td>')
                    continue
                strength = abs(v) if signed else v
                hue = 140 if (v >= 0 or not signed) else 5
                cells.append(f'<td style="background:hsl({hue},55%,{96 - 40 * strength:.0f}%)">{v:.2f}</td>')
            rows.append(f'<tr><td class="id">{esc(name)}</td>{"".join(cells)}</tr>')
        return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'

    return ('<section id="agreement"><h2>Method agreement</h2>'
            '<p class="meta">Same choice: probability that the two methods pick the same prompt (each picking at random '
            "among its tied top prompts).</p>" + grid(data["same_choice"], False)
            + '<p class="meta">Spearman correlation between the two methods\' scores over the prompts '
            "(green: agree, red: opposite, –: a constant method).</p>" + grid(data["spearman"], True) + "</section>")


def _examples(report: Mapping[str, Any]) -> str:
    """The examples behind the choice: counts, templates, the confusion matrix, the examples."""
    from .summary import example_lines, example_table

    found = report.get("examples")
    if not found:
        return ""
    parts = [f"<p>{esc(line)}</p>" for line in example_lines(report)]
    for pid, template in (found.get("templates") or {}).items():
        if template is not None:
            parts.append(f'<p><b>{esc(pid)}</b>: <span class="code">{esc(template)}</span></p>')
    confusion = found.get("confusion")
    if confusion:
        classes = confusion["classes"]
        head = '<tr><th class="id">gold \\ predicted</th>' + "".join(f"<th>{esc(c)}</th>" for c in classes) + "<th>accuracy</th></tr>"
        rows = "".join(f'<tr><td class="id">{esc(c)}</td>' + "".join(f"<td>{v}</td>" for v in row) + f"<td>{num(acc)}</td></tr>"
                       for c, row, acc in zip(classes, confusion["matrix"], confusion["class_accuracy"]))
        parts.append(f'<p class="meta">Confusion matrix of {esc(found.get("recommended"))}:</p>'
                     f'<div class="scroll"><table>{head}{rows}</table></div>')
    headers, body = example_table(report)
    if body:
        head = "<tr>" + "".join(f'<th class="id">{esc(h)}</th>' for h in headers) + "</tr>"
        rows = "".join("<tr>" + "".join(f'<td class="id">{esc(c)}</td>' for c in r) + "</tr>" for r in body)
        parts.append(f'<details><summary>{found.get("shown")} of the {found.get("disagreements")} examples where they answer '
                     f'differently</summary><div class="scroll"><table>{head}{rows}</table></div></details>')
    return '<section class="card" id="examples"><h2>The examples behind the choice</h2>' + "".join(parts) + "</section>"


def _sections(report: Mapping[str, Any]) -> str:
    """What the methods' own report sections say (a FUTE method's embeddings, for one)."""
    from .summary import section_lines

    lines = section_lines(report)
    if not lines:
        return ""
    return '<section class="card" id="methods-notes"><h2>Method notes</h2>' + "".join(f"<p>{esc(line)}</p>" for line in lines) + "</section>"


def _footer(report: Mapping[str, Any]) -> str:
    bits = []
    run = report.get("run") or {}
    for key in ("timestamp", "command", "revision"):
        value = run.get(key) or report.get(key)
        if value:
            bits.append(f"{esc(key)}: {esc(' '.join(value) if isinstance(value, list) else value)}")
    for key, what in (("promptsel_revision", "promptsel revision"), ("prompts_revision", "prompts revision")):
        found = run.get(key)
        if found and found.get("commit"):
            bits.append(f"{what}: {esc(found['commit'][:12])}{' (uncommitted changes)' if found.get('dirty') else ''}")
    versions = report.get("versions") or {}
    if versions:
        bits.append("versions: " + ", ".join(f"{esc(k)} {esc(v)}" for k, v in versions.items()))
    return f"<footer>{'<br>'.join(bits)}</footer>" if bits else ""


# --- promptsel diff -----------------------------------------------------------------------------

def diff_html(result: Mapping[str, Any]) -> str:
    """``promptsel diff`` as one self-contained HTML page: the answer, what it rests on, the table."""
    from .diff_text import detail_lines, headline, table

    headers, rows = table(result)
    changed = set(result.get("changed") or [])
    head = "<tr>" + "".join(f'<th{" class=id" if i == 0 else ""}>{esc(h)}</th>' for i, h in enumerate(headers)) + "</tr>"
    body = "".join(f'<tr{" class=recommended" if r[0] in changed else ""}>'
                   + "".join(f'<td{" class=id" if i == 0 else ""}>{esc(c)}</td>' for i, c in enumerate(r)) + "</tr>" for r in rows)
    title = "promptsel diff"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{title}</title><style>{CSS}</style></head><body><main>", f"<h1>{title}</h1>",
        f'<section class="card rec" id="answer"><h2>What changed</h2><p><b>{esc(headline(result))}</b></p>'
        + "".join(f"<p>{esc(line)}</p>" for line in detail_lines(result)) + "</section>",
        f'<section id="prompts"><h2>Prompts</h2><div class="scroll"><table>{head}{body}</table></div></section>',
        "</main></body></html>",
    ]) + "\n"
