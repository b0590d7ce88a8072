"""The terminal: reports, checks, probes and progress drawn with rich on stderr (rich lives here and
in the CLI, never in the library)."""

from __future__ import annotations

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
    TimeRemainingColumn,
)
from rich.table import Table

from ..selection.scoring import Progress as ProgressProtocol


class RichProgress(ProgressProtocol):
    """Progress bars on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._task: Any = None

    def start(self, label: str, total: int) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _prompt_table(report: dict[str, Any], title: str, cell, headers: list[str] | None = None) -> Table:
    methods = list(report["methods"])
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("prompt", style="bold", no_wrap=True)
    for header in headers or methods:
        table.add_column(escape(header), justify="right", overflow="fold")
    table.add_column(escape(report["metric"]), justify="right", style="cyan", overflow="fold")
    best = report["oracle"]["chosen"]
    for p in report["prompts"]:  # ids, method names and titles are user text: never markup
        perf = _f(p["performance"])
        table.add_row(escape(p["id"]), *(cell(m, p) for m in methods), f"[bold]{perf}[/bold]" if p["id"] == best else perf)
    return table


def print_recommendation(report: dict[str, Any], console: Console) -> None:
    """The answer first: the prompt to use, how sure that is, and what weakens the evidence."""
    from rich.text import Text

    from .summary import recommendation_lines, warning_lines

    lines = recommendation_lines(report)
    if lines:
        console.print(Text(lines[0], style="bold green"))
        for line in lines[1:]:
            console.print(Text("  " + line))
    for severity, code, message in warning_lines(report):
        style = "cyan" if severity == "info" else "yellow"
        console.print(Text.assemble((f"{'Note' if severity == 'info' else 'Warning'} ({code}): ", style), message))


def print_report(report: dict[str, Any], console: Console) -> None:
    print_recommendation(report, console)
    ds, be = report["dataset"], report["backend"]
    methods = list(report["methods"])
    ranks = {m: {pid: i + 1 for i, pid in enumerate(report["methods"][m]["ranking"])} for m in methods}
    chosen = {m: e["chosen"] for m, e in report["methods"].items()}
    title = escape(f"{ds['name']} · {ds['split'] or 'scores'} · n={ds['n']}" + (f" · {be['model']}" if be["name"] else ""))

    def mark(m: str, p: dict[str, Any]) -> str:
        return "*" if chosen[m] == p["id"] else ""

    combined = _prompt_table(report, title, lambda m, p: f"{mark(m, p)}{_fmt_score(p['scores'].get(m))} ({ranks[m][p['id']]})")
    combined.caption = "score (rank); * = the method's choice"
    natural = combined.__rich_measure__(console, console.options.update(max_width=10_000)).maximum
    if be.get("approximate"):
        note = escape(f"({be['name']}): {be['approximate']}.")
        console.print(f"[yellow]Approximate scores[/yellow] {note}", highlight=False)
    if natural <= console.width:
        console.print(combined)
    else:  # a narrow terminal: one table of scores and one of ranks, methods numbered
        headers = [f"m{i + 1}" for i in range(len(methods))]
        legend = escape("  ".join(f"m{i + 1}={m}" for i, m in enumerate(methods)))
        console.print(_prompt_table(report, f"{title} · scores", lambda m, p: f"{mark(m, p)}{_fmt_score(p['scores'].get(m), 2)}", headers))
        ranked = _prompt_table(report, "ranks", lambda m, p: f"{mark(m, p)}{ranks[m][p['id']]}", headers)
        ranked.caption = f"{legend}\n* = the method's choice; higher scores rank first"
        console.print(ranked)
    summary = Table(title="Choice per method", box=box.SIMPLE_HEAD)
    for col in ("method", "chosen", report["metric"], "rate", f"NDCG ({report['ndcg_variant']})", "Spearman", "Kendall"):
        summary.add_column(escape(col), justify="left" if col in ("method", "chosen") else "right")
    for m, e in report["methods"].items():
        tied = f" +{len(e['tied']) - 1} tied" if len(e["tied"]) > 1 else ""
        summary.add_row(escape(m), escape(e["chosen"] + tied), _f(e["performance"]), _f(e["rate"]), _f(e["ndcg"]), _f(e["spearman"]), _f(e["kendall"]))
    if report["oracle"]["chosen"] is not None:
        summary.add_row("[dim]oracle[/dim]", escape(report["oracle"]["chosen"]), _f(report["oracle"]["performance"]), "1.000", "1.000", "", "")
        summary.add_row("[dim]random (expected)[/dim]", "", _f(report["random"]["performance"]), "", _f(report["random"]["ndcg"]), "", "")
    console.print(summary)
    if report.get("fute"):
        console.print(escape(fute_summary(report["fute"])), highlight=False)


def fute_summary(fute: dict[str, Any]) -> str:
    """One line on where FUTE's embeddings came from and what they cost."""
    counts: dict[tuple[str, str], int] = {}
    seconds = 0.0
    for e in fute["embeddings"]:
        counts[e["kind"], e["status"]] = counts.get((e["kind"], e["status"]), 0) + 1
        seconds += e["seconds"]
    parts = [f"{n} {kind.upper()}{'s' if n != 1 else ''} {status}" for (kind, status), n in sorted(counts.items())]
    u = fute.get("unlabeled")
    where = f"; U: {u['name']}, {u['size']} texts from {len(u['sources'])} sources" if u else ""
    return f"FUTE: {', '.join(parts)} ({seconds:.1f} s training){where}; surrogate {fute['surrogate']['name']}"


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
