"""The terminal: reports, checks, probes and progress drawn with rich on stderr (rich lives here and
in the CLI, never in the library)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..model.progress import Plan
from ..model.progress import Progress as ProgressProtocol
from .summary import section_lines


class RichProgress(ProgressProtocol):
    """Progress on stderr: a bar that moves per sequence with its rate and the time left, or,
    when stderr is not a terminal (CI, a log file), a plain line every ``interval`` seconds.
    Before a scoring pass it prints what the pass will cost; once the first batches give a rate,
    the expected duration, and ``long_run(seconds)`` (from the CLI) may add advice to it."""

    def __init__(self, console: Console, *, long_run: Callable[[float, Plan], str | None] | None = None,
                 interval: float | None = None) -> None:
        self.console = console
        self.long_run = long_run
        self.interval = interval if interval is not None else float(os.environ.get("PROMPTSEL_PROGRESS_INTERVAL", "10"))
        self._bar: Progress | None = None
        self._task: Any = None
        self._plan: Plan | None = None
        self._estimated = self._advised = False
        self._left: float | None = None
        self._line: dict[str, Any] | None = None  # the plain-line state off a terminal

    def plan(self, plan: Plan) -> None:
        self._plan, self._estimated, self._left = plan, False, None
        if not plan.sequences:
            return
        about = "" if plan.exact else "about "
        parts = [f"{plan.sequences:,} requests to compute" + (f" ({plan.cached:,} more from the cache)" if plan.cached else ""),
                 f"{about}{plan.tokens:,} tokens, {plan.evaluate:,} to evaluate after shared prefixes"]
        if plan.generate:
            parts.append(f"up to {plan.generate:,} to generate")
        self.console.print("Plan: " + "; ".join(parts) + ".", highlight=False, markup=False, soft_wrap=True)

    def estimate(self, seconds: float, remaining: float) -> None:
        self._left = remaining
        if self._estimated:
            return
        self._estimated = True
        plan = self._plan
        message = f"Estimated time: {_duration(seconds)} in all, {_duration(remaining)} left."
        advice = None
        if self.long_run is not None and plan is not None and not self._advised:  # the run's first pass only
            self._advised = True
            advice = self.long_run(seconds, plan)
        self.note(f"{message} {advice}" if advice else message)

    def note(self, message: str) -> None:
        (self._bar.console if self._bar is not None else self.console).print(message, highlight=False, markup=False, soft_wrap=True)

    def start(self, label: str, total: int) -> None:
        self.done()
        if not self.console.is_terminal:
            self._line = {"label": label, "total": total, "n": 0, "began": time.monotonic(), "printed": time.monotonic()}
            self.console.print(f"{label}: {total:,} to do.", highlight=False, markup=False, soft_wrap=True)
            return
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("{task.fields[left]}"), console=self.console, transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(escape(label), total=total, rate="", left="")

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)
            task = self._bar.tasks[0]
            rate, left = self._rate_and_left(task.completed, task.total or 0, task.elapsed or 0.0)
            self._bar.update(self._task, rate=rate, left=left)
        elif self._line is not None:
            line = self._line
            line["n"] += n
            now = time.monotonic()
            if now - line["printed"] >= self.interval:
                line["printed"] = now
                self._print_line(now)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._line is not None:
            self._print_line(time.monotonic())
            self._line = None

    def _rate_and_left(self, done: float, total: float, elapsed: float) -> tuple[str, str]:
        """Sequences per second, and the time left: the library's estimate (weighted by each
        request's tokens) once it has one, until then the average so far."""
        if done <= 0 or elapsed <= 0:
            return "", "time left: estimating"
        left = self._left if self._left is not None else elapsed / done * max(total - done, 0)
        return f"{done / elapsed:.1f}/s", f"{_duration(left)} left"

    def _print_line(self, now: float) -> None:
        line = self._line
        assert line is not None
        elapsed = now - line["began"]
        rate, left = self._rate_and_left(line["n"], line["total"], elapsed)
        share = 100 * line["n"] / max(line["total"], 1)
        parts = [f"{line['n']:,}/{line['total']:,} ({share:.0f} %)", rate, f"{_duration(elapsed)} elapsed", left]
        self.console.print(f"{line['label']}: " + ", ".join(p for p in parts if p), highlight=False, markup=False, soft_wrap=True)


# --- tables whose numbers never wrap ----------------------------------------------------------

def _cell_width(cell: Any) -> int:
    from rich.text import Text

    return (cell if isinstance(cell, Text) else Text.from_markup(cell)).cell_len


def _header_width(header: str) -> int:
    # A header may break between words, never inside one ("accu" / "racy").
    return max((len(word) for word in header.split()), default=1)


def fitted_tables(console: Console, key: tuple[str, list[Any]], columns: list[tuple[str, list[Any], str]], *,
                  title: str | None = None, caption: str | None = None, key_style: str = "bold") -> list[Table]:
    """Tables that fit ``console.width`` without breaking a number: each column is exactly as wide
    as its widest cell (or its header's longest word), so no cell can wrap or be cut; columns that
    do not fit go to a further table that repeats the ``key`` column (the prompt ids). Only the
    key column may fold, when an id alone is wider than a third of the line.

    ``key`` is (header, cells); ``columns`` are (header, cells, justify). Cells are rich markup or
    ``Text``. Any width or stream (a CI log at 80 columns) reads the same numbers."""
    key_header, key_cells = key
    key_width = max([_header_width(key_header), *(_cell_width(c) for c in key_cells)])
    key_width = min(key_width, max(8, console.width // 3))
    # SIMPLE_HEAD with padding (0, 1): an edge space each side, and 2 + 1 per column.
    budget = console.width - 2 - (key_width + 2)
    cells_width = [max((_cell_width(c) for c in cells), default=1) for _, cells, _ in columns]
    # Whole headers when one table holds them all; else headers break between words.
    widths = [max(len(h), w) for (h, _, _), w in zip(columns, cells_width)]
    if sum(w + 3 for w in widths) > budget:
        widths = [max(_header_width(h), w) for (h, _, _), w in zip(columns, cells_width)]
    chunks: list[list[int]] = [[]]
    used = 0
    for i, w in enumerate(widths):
        if chunks[-1] and used + w + 3 > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(i)
        used += w + 3
    tables = []
    for n, chunk in enumerate(chunks):
        table = Table(title=title if n == 0 else None, box=box.SIMPLE_HEAD, padding=(0, 1))
        table.add_column(escape(key_header), style=key_style, width=key_width, overflow="fold")
        for i in chunk:
            header, _, justify = columns[i]
            table.add_column(escape(header), justify=justify, width=widths[i], overflow="fold")  # type: ignore[arg-type]
        for r, key_cell in enumerate(key_cells):
            table.add_row(key_cell, *(columns[i][1][r] for i in chunk))
        tables.append(table)
    if caption:
        tables[-1].caption = caption
    return tables


def _duration(seconds: float) -> str:
    """A duration as people say it: 45 s, 12 min, 3 h 20 min."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


#: ``--sort``: the prompts' order in the tables (a method's name sorts by its scores).
SORT_PERFORMANCE, SORT_FILE = "performance", "file"


def sorted_prompts(report: dict[str, Any], sort: str = SORT_PERFORMANCE, top: int | None = None) -> list[dict[str, Any]]:
    """The prompts in the order ``--sort`` asks, best first, the first ``top`` of them. Without
    labels "performance" sorts by the recommending rule's scores (file order without one)."""
    prompts = list(report["prompts"])
    key = sort
    if sort == SORT_PERFORMANCE and all(p.get("performance") is None for p in prompts):
        rule = (report.get("recommendation") or {}).get("rule")
        key = rule if rule in report["methods"] else SORT_FILE
    if key == SORT_PERFORMANCE:
        prompts.sort(key=lambda p: -(p["performance"] if p["performance"] is not None else -math.inf))
    elif key != SORT_FILE:
        if key not in report["methods"]:
            from ..errors import UsageError

            raise UsageError(f"--sort {sort}: not a method of this run.",
                             hint=f"Use performance, file or one of: {', '.join(report['methods'])}.")
        prompts.sort(key=lambda p: -_finite(p["scores"].get(key)))
    return prompts[:top]


def _finite(x: float | None) -> float:
    return -math.inf if x is None or not math.isfinite(x) else float(x)


def _prompt_tables(report: dict[str, Any], console: Console, prompts: list[dict[str, Any]], title: str, cell,
                   headers: list[str] | None = None, caption: str | None = None) -> list[Table]:
    methods = list(report["methods"])
    best = report["oracle"]["chosen"]
    perf = [_f(p["performance"]) for p in prompts]
    # The measured performance first: the column a reader sorts by, kept in the first table when
    # a narrow line splits the methods over several.
    columns = [(report["metric"], [f"[bold cyan]{v}[/]" if p["id"] == best else f"[cyan]{v}[/]" for v, p in zip(perf, prompts)],
                "right")]
    if report.get("adaptive") is not None:  # prompts read on different numbers of inputs: say how many, and which were dropped
        columns += [("n", [str(p.get("n", "–")) for p in prompts], "right"),
                    ("dropped", ["–" if p.get("dropped") is None else f"round {p['dropped']}" for p in prompts], "right")]
        note = "n: inputs the prompt was scored on; dropped: the round after which it was surely worse"
        caption = note if caption is None else f"{caption}\n{note}"
    columns += [(header, [cell(m, p) for p in prompts], "right") for header, m in zip(headers or methods, methods)]
    # ids, method names and titles are user text: never markup
    return fitted_tables(console, ("prompt", [escape(p["id"]) for p in prompts]), columns, title=title, caption=caption)


def print_recommendation(report: dict[str, Any], console: Console) -> None:
    """The answer first: the prompt to use, how sure that is, and what weakens the evidence."""
    from rich.text import Text

    from .summary import recommendation_lines, warning_lines

    lines = recommendation_lines(report)
    if lines:
        console.print(Text(lines[0], style=_headline_style(report)))
        for line in lines[1:]:
            console.print(Text("  " + line))
    for severity, code, message in warning_lines(report):
        style = "cyan" if severity == "info" else "yellow"
        console.print(Text.assemble((f"{'Note' if severity == 'info' else 'Warning'} ({code}): ", style), message))


def _headline_style(report: dict[str, Any]) -> str:
    from .summary import at_chance

    return "bold yellow" if at_chance(report) else "bold green"


def print_answer(report: dict[str, Any], console: Console) -> None:
    """The recommendation once more as the last line, where a scrolled terminal or a log's tail shows it."""
    from rich.text import Text

    from .summary import answer_line

    line = answer_line(report)
    if line:  # soft-wrapped: one line in a file or a log, whatever the width
        console.print(Text(line, style=_headline_style(report)), soft_wrap=True)


def print_report(report: dict[str, Any], console: Console, *, top: int | None = None, sort: str = SORT_PERFORMANCE) -> None:
    print_recommendation(report, console)
    ds, be = report["dataset"], report["backend"]
    methods = list(report["methods"])
    ranks = {m: {pid: i + 1 for i, pid in enumerate(report["methods"][m]["ranking"])} for m in methods}
    chosen = {m: e["chosen"] for m, e in report["methods"].items()}
    title = escape(f"{ds['name']} · {ds['split'] or 'scores'} · n={ds['n']}" + (f" · {be['model']}" if be["name"] else ""))
    prompts = sorted_prompts(report, sort, top)

    def mark(m: str, p: dict[str, Any]) -> str:
        return "*" if chosen[m] == p["id"] else ""

    if be.get("approximate"):
        note = escape(f"({be['name']}): {be['approximate']}.")
        console.print(f"[yellow]Approximate scores[/yellow] {note}", highlight=False)
    combined = _prompt_tables(report, console, prompts, title,
                              lambda m, p: f"{mark(m, p)}{_fmt_score(p['scores'].get(m))} ({ranks[m][p['id']]})",
                              caption="score (rank); * = the method's choice")
    if len(combined) == 1:
        console.print(combined[0])
    else:  # a narrow terminal: one table of scores and one of ranks, methods numbered
        headers = [f"m{i + 1}" for i in range(len(methods))]
        legend = escape("  ".join(f"m{i + 1}={m}" for i, m in enumerate(methods)))
        for table in _prompt_tables(report, console, prompts, f"{title} · scores",
                                    lambda m, p: f"{mark(m, p)}{_fmt_score(p['scores'].get(m), 2)}", headers):
            console.print(table)
        for table in _prompt_tables(report, console, prompts, "ranks", lambda m, p: f"{mark(m, p)}{ranks[m][p['id']]}", headers,
                                    caption=f"{legend}\n* = the method's choice; higher scores rank first"):
            console.print(table)
    if top is not None and top < len(report["prompts"]):
        console.print(escape(f"The best {top} of {len(report['prompts'])} prompts by {sort}; -o report.md for all."), highlight=False)
    names, cells = [], []
    for m, e in report["methods"].items():
        tied = f" +{len(e['tied']) - 1} tied" if len(e["tied"]) > 1 else ""
        names.append(escape(m))
        cells.append([escape(e["chosen"] + tied), _f(e["performance"]), _f(e["rate"]), _f(e["ndcg"]), _f(e["spearman"]), _f(e["kendall"])])
    if report["oracle"]["chosen"] is not None:
        names += ["[dim]oracle[/dim]", "[dim]random[/dim]"]
        cells.append([escape(report["oracle"]["chosen"]), _f(report["oracle"]["performance"]), "1.000", "1.000", "", ""])
        cells.append(["", _f(report["random"]["performance"]), "", _f(report["random"]["ndcg"]), "", ""])
    heads = ("chosen", report["metric"], "rate", f"NDCG ({report['ndcg_variant']})", "Spearman", "Kendall")
    columns = [(h, [row[i] for row in cells], "left" if i == 0 else "right") for i, h in enumerate(heads)]
    caption = "oracle: the best prompt; random: what a random ranking earns, expected" if report["oracle"]["chosen"] is not None else None
    if report.get("adaptive"):
        caption = (f"methods' columns measured on the {report['adaptive']['common_inputs']} inputs every prompt was "
                   "scored on; the oracle row is the recommendation")
    for table in fitted_tables(console, ("method", names), columns, title="Choice per method", key_style="", caption=caption):
        console.print(table)
    for line in section_lines(report):
        console.print(escape(line), highlight=False)
    print_answer(report, console)


def print_embeddings(result: dict[str, Any], console: Console) -> None:
    table = Table(title=escape(f"Task embeddings in {result['store']}"), box=box.SIMPLE_HEAD)
    for col in ("kind", "embedder", "prompt / dataset", "status", "seconds", "key"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for e in result["embeddings"]:
        cells = (e["kind"].upper(), e["embedder"], e["prompt"] or e["dataset"] or "", e["status"], f"{e['seconds']:.1f}", e["key"][:12])
        table.add_row(*map(escape, cells))
    console.print(table)


def _fmt_score(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if abs(x) >= 10 ** digits:  # large magnitudes (SPELL's perplexities): whole numbers
        return f"{x:.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.0e}"


def print_plugins(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="promptsel plugins")
    for col in ("name", "distribution", "version", "provides", "status"):
        table.add_column(col)
    for r in rows:
        status = f"[red]failed: {escape(r['error'])}[/red]" if r["error"] else "[green]loaded[/green]"
        table.add_row(*map(escape, (r["name"], r["distribution"] or "", r["version"] or "", ", ".join(r["provides"]))), status)
    console.print(table)


_VERDICT_STYLE = {"ok": "green", "warn": "yellow", "unavailable": "dim", "fail": "bold red"}


def print_probe(result: Any, console: Console) -> None:
    """The capability probe as a table of checks, then what the backend can serve."""
    table = Table(title=escape(f"{result.backend} · {result.model}"), box=box.SIMPLE_HEAD)
    for col in ("check", "verdict", "detail"):
        table.add_column(col, overflow="fold")
    for c in result.checks:
        style = _VERDICT_STYLE.get(c.verdict, "")
        table.add_row(escape(c.name), f"[{style}]{c.verdict}[/{style}]", escape(c.detail))  # details quote servers
    console.print(table)
    if result.approximate:
        console.print(f"[yellow]Approximate scores:[/yellow] {escape(result.approximate)}.", highlight=False)
    served = ", ".join(result.methods) or "none"
    console.print(escape(f"Methods this backend can serve: {served}."), highlight=False)
    verdict = "[bold red]FAILED[/bold red]" if result.failed else "[green]OK[/green]"
    console.print(f"{verdict} {escape('capabilities: ' + (', '.join(result.capabilities) or 'none'))}.", highlight=False)


def print_check(result: Any, console: Console) -> None:
    """The outcome of promptsel check: per lock entry its methods and changed prompts, then the verdict."""
    from rich.markup import escape

    from ..gate.compare import REGRESSED
    from .tables import method_table, prompt_table

    style = {REGRESSED: "bold red", "improved": "green", "new": "cyan", "not comparable": "yellow"}

    def table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
        out = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        for header in headers:
            out.add_column(header, overflow="fold")
        for kind, *cells in rows:  # prompt text and label words may hold [brackets]: no markup
            out.add_row(f"[{style.get(kind, 'dim')}]{kind}[/]", *map(escape, cells))
        return out

    for entry in result.entries:
        if entry.new is None:
            console.print(f"[yellow]{escape(entry.key)}[/yellow]: not run, the lock does not match this run's inputs.", highlight=False)
            continue
        console.print(table(escape(entry.key), *method_table(entry)))
        headers, changed = prompt_table(entry)
        if changed:
            console.print(table("changed prompts", headers, changed))
        hits = (entry.cache or {}).get("hits", 0)
        console.print(f"{entry.seconds:.1f} s, {hits} of {hits + (entry.cache or {}).get('misses', 0)} results from the cache.", highlight=False)
    for finding in result.regressions:
        console.print(f"[bold red]REGRESSED[/bold red] {escape(finding.message)}.", highlight=False)
    verdict = {"passed": "[green]promptsel check passed.[/green]", "updated": f"[green]Updated {result.lock_path}.[/green]",
               REGRESSED: f"[bold red]promptsel check failed: {len(result.regressions)} regression(s).[/bold red] "
                          "If intended: promptsel check --update, then commit the lock."}
    if result.status in verdict:
        console.print(verdict[result.status], highlight=False)


def print_diff(result: dict[str, Any], console: Console, *, top: int | None = None, quiet: bool = False) -> None:
    """``promptsel diff``: the answer, what it rests on, the prompts (measurable changes first),
    and the answer again as the last line, where a scrolled terminal or a log's tail shows it."""
    from rich.text import Text

    from .diff_text import detail_lines, headline, table

    answer = headline(result)
    style = "bold green" if result["no_change"] else "bold yellow"
    console.print(Text(answer, style=style))
    if quiet:
        return
    for line in detail_lines(result):
        console.print(Text("  " + line))
    headers, rows = table(result, top, short=True)
    columns = [(h, [Text(r[i]) for r in rows], "left" if i == len(headers) - 1 else "right") for i, h in enumerate(headers) if i]
    title = escape(f"{result['metric']} in run A and run B, and the change Δ")
    for part in fitted_tables(console, (headers[0], [Text(r[0]) for r in rows]), columns, title=title):
        console.print(part)
    if top is not None and top < len(result["prompts"]):
        console.print(Text(f"{len(result['prompts']) - top} more prompts: --top to show more, -o diff.md for all."))
    console.print(Text(answer, style=style))
