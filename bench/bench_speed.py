"""Speed and memory benchmark of `promptsel select` scoring on the default model.

Measured side by side in one run (these machines are noisy, so ratios, not absolute times,
are the targets):

1. cold-cache scoring throughput vs raw llama.cpp ``Llama.eval`` of the very same token
   sequences (target: >= 0.9x raw), prefix reuse off;
2. the same with KV prefix reuse on the instruction-first prompts (target: faster than raw);
3. warm-cache rerun vs cold (target: <= 5 % of cold);
4. ``promptsel --help`` wall time (target: < 0.5 s);
5. peak RSS of a full ``promptsel select`` quick start (target: <= 1.5 GB);
6. end to end: the README's quick-start command (read from README.md) cold, this code against an
   older commit (``--old-rev``, default 13184d8, the code before issue 12; a temporary git
   worktree, or ``--old-tree DIR``, a checkout of it), one after the other in the same run and
   the same Python environment, each with an empty cache directory: wall and CPU time, peak RSS,
   the tokens llama.cpp evaluated against the tokens of the sequences asked for
   (bench/lib/counting.py), the machine load around each run, and whether each method chose the same
   prompt (target: under 10 minutes; the same choices wherever a method's definition did not
   change).

Usage: ``python -m bench.bench_speed [--limit N] [--data-dir DIR] [--quickstart-limit N]
[--quickstart-args "--spell-on prompt"] [--old-rev REV | --old-tree DIR | --no-old] [--only-quickstart] [--write]``; ``--write`` appends
the result tables to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.lib import results_md
from bench.lib.cold_run import ROOT, run_quickstart, work_dir


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=60, help="examples of the eval split (default 60)")
    ap.add_argument("--data-dir", default=None, help="data directory (default: offline Rotten Tomatoes)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats of raw vs promptsel")
    ap.add_argument("--write", action="store_true", help="append the results to bench/RESULTS.md")
    ap.add_argument("--quickstart-limit", type=int, default=None,
                    help="override the quick start's --limit (default: the README's command as it is)")
    ap.add_argument("--quickstart-args", default="",
                    help="options added to the quick start's command, to time a variant (e.g. \"--spell-on prompt\")")
    ap.add_argument("--old-rev", default="13184d8", help="the commit to compare the quick start against")
    ap.add_argument("--old-tree", type=Path, default=None, help="an existing checkout of --old-rev (else a temporary worktree)")
    ap.add_argument("--no-old", action="store_true", help="time this code's quick start only")
    ap.add_argument("--only-quickstart", action="store_true", help="only the end-to-end quick start (item 6)")
    ap.add_argument("--one-core-each", action="store_true",
                    help="run the two quick starts at the same time, each pinned to a CPU of its own (one llama.cpp thread "
                         "each): for a machine busy with other work, where two threads on two shared cores stall each other")
    ap.add_argument("--keep", type=Path, default=None, help="keep each quick start's stderr, report and scores in this folder")
    args = ap.parse_args()
    os.environ.setdefault("PROMPTSEL_ASSETS_DIR", str(Path.home() / ".cache" / "promptsel" / "assets"))
    os.environ["PROMPTSEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="promptsel-bench-")

    import llama_cpp

    header = (f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
              f"llama-cpp-python {llama_cpp.__version__}")
    if args.only_quickstart:
        return results_md.publish("\n".join([header, "", *quickstart(args)]), args.write)

    from promptsel.assets.models import default_model_path
    from promptsel.model.prompts import load_prompt_set
    from promptsel.model.request import ScoringOptions, SelectRequest
    from promptsel.selection.cache import Cache
    from promptsel.selection.inputs import load_dataset, resolve_dataset_spec
    from promptsel.selection.scoring import Scorer, build_score_table, scoring_texts
    from promptsel_builtin.llamacpp import LlamaCppBackend
    from promptsel_builtin.llamacpp.engine import model_params

    model = default_model_path()
    prompt_set = load_prompt_set(ROOT / "prompts" / "sa.toml")
    plain = [p for p in prompt_set.prompts if not p.cot]
    instruction_first = [p for p in plain if not p.template.startswith("{{")]
    req = SelectRequest(dataset="rotten_tomatoes", prompts=None, limit=args.limit, data_dir=args.data_dir)
    dataset = load_dataset(req, resolve_dataset_spec("rotten_tomatoes"))
    options = ScoringOptions()

    def promptsel_run(prompts, prefix_reuse: bool, cache: Cache) -> tuple[float, int]:
        backend = LlamaCppBackend(model=str(model), prefix_reuse=prefix_reuse)
        scorer = Scorer(backend, cache)
        sub = type(prompt_set)(path=prompt_set.path, name=prompt_set.name, prompts=prompts)
        seconds, _ = timed(lambda: build_score_table(sub, dataset, scorer, options, need_nll=False))
        backend.close()
        return seconds, len(prompts) * len(dataset.examples)

    # The very same token sequences promptsel scores: rendered prompt + label continuations.
    backend = LlamaCppBackend(model=str(model), prefix_reuse=False)
    scorer = Scorer(backend, Cache(enabled=False))
    with model_params(use_extra_bufts=backend.repack):  # the weights as the backend loads them
        llm = llama_cpp.Llama(model_path=str(model), n_ctx=backend.n_ctx, n_threads=backend.n_threads,
                              n_batch=backend.n_batch, n_ubatch=backend.n_batch,
                              logits_all=False, verbose=False)

    def sequences(prompts) -> list[list[int]]:
        seqs = []
        for p in prompts:
            for text in scoring_texts(p, dataset.inputs(), scorer, options):
                seqs.append(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
        return seqs

    def raw_eval(seqs) -> float:
        t = time.perf_counter()
        for ids in seqs:
            llm.reset()
            llm.eval(ids)
        return time.perf_counter() - t

    rows = []
    for label, prompts, reuse in (("all 10 plain prompts, prefix reuse off", plain, False),
                                  ("instruction-first prompts, prefix reuse on", instruction_first, True)):
        seqs = sequences(prompts)
        n_tokens = sum(len(s) for s in seqs)
        raw_t, ours_t = [], []
        for _ in range(args.repeats):  # alternate, so drift hits both sides alike
            raw_t.append(raw_eval(seqs))
            ours_t.append(promptsel_run(prompts, reuse, Cache(enabled=False))[0])
        raw, ours = min(raw_t), min(ours_t)
        rows.append((label, len(seqs), n_tokens, raw, ours, raw / ours))

    cache = Cache(Path(os.environ["PROMPTSEL_CACHE_DIR"]) / "warm.sqlite")
    cold, _ = promptsel_run(plain, True, cache)
    warm, _ = promptsel_run(plain, True, Cache(cache.path))
    help_times = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "promptsel", "--help"], capture_output=True, check=True)
        help_times.append(time.perf_counter() - t)
    quick = [sys.executable, "-m", "promptsel", "select", "--dataset", "rotten_tomatoes", "--prompts",
             str(ROOT / "prompts" / "sa.toml"), "--limit", str(args.limit), "--no-progress", "-q", "--no-cache"]
    if args.data_dir:
        quick += ["--data-dir", args.data_dir]
    quick_s, _ = timed(lambda: subprocess.run(quick, capture_output=True, check=True))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    lines = [
        header,
        "",
        f"Command: `python -m bench.bench_speed --limit {args.limit}"
        + (f" --data-dir {args.data_dir}" if args.data_dir else "") + f" --repeats {args.repeats}`;"
        f" data: {dataset.source.split(':')[0]} rotten_tomatoes {dataset.split}, {len(dataset.examples)} examples; best of {args.repeats}.",
        "",
        "| measure | sequences | tokens | raw llama.cpp eval (s) | promptsel cold (s) | throughput vs raw | target |",
        "|---|---|---|---|---|---|---|",
    ]
    targets = ["≥ 0.90×", "> 1.00×"]
    for (label, n, tok, raw, ours, ratio), target in zip(rows, targets):
        lines.append(f"| {label} | {n} | {tok} | {raw:.2f} | {ours:.2f} | {ratio:.2f}× | {target} |")
    lines += [
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| warm-cache rerun / cold (10 plain prompts) | {warm:.3f} s / {cold:.2f} s = {100 * warm / cold:.1f} % | ≤ 5 % |",
        f"| `promptsel --help` (median of 7) | {statistics.median(help_times):.3f} s | < 0.5 s |",
        f"| peak RSS of `promptsel select` (13 prompts incl. CoT, all methods, {args.limit} examples, {quick_s:.0f} s) | {peak_mb:.0f} MB | ≤ 1500 MB |",
        "",
    ]
    results_md.publish("\n".join(lines + quickstart(args)), args.write)


# --- 6. the README quick start, end to end, against an older commit ------------------------------------


def readme_quickstart() -> list[str]:
    """The arguments of the quick start's ``promptsel select`` command, as README.md gives them."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) > 1 and Path(words[0]).name == "promptsel" and words[1] == "select":
            return words[1:]
    sys.exit("README.md: no `promptsel select` command in the quick start")


def quickstart(args: argparse.Namespace) -> list[str]:
    import numpy as np

    argv = readme_quickstart()
    if args.quickstart_limit is not None:
        argv = [*argv[: argv.index("--limit")], *argv[argv.index("--limit") + 2 :]] if "--limit" in argv else argv
        argv += ["--limit", str(args.quickstart_limit)]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    argv += shlex.split(args.quickstart_args)
    argv = [str(ROOT / a) if "/" in a and (ROOT / a).exists() else a for a in argv]  # this tree's prompts for both
    work = work_dir(args.keep, "promptsel-quickstart-")
    runs, made = {}, None
    try:  # this code first: its time is the target, and the older code's run is the long one
        if not args.one_core_each:
            runs["this code"] = run_quickstart("new", ROOT, argv, work)
        if not args.no_old:
            old = args.old_tree
            if old is None:
                old = made = work / "old-tree"
                subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old_rev],
                               check=True, capture_output=True)
            rev = subprocess.run(["git", "-C", str(old), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                                 text=True).stdout.strip()
            if args.one_core_each:  # both at once, on CPUs 0 and 1
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(2) as pool:
                    later = pool.submit(run_quickstart, "old", old, argv, work, 0)
                    runs["this code"] = run_quickstart("new", ROOT, argv, work, 1)
                    runs = {f"{rev} (before)": later.result(), **runs}
            else:
                runs = {f"{rev} (before)": run_quickstart("old", old, argv, work), **runs}
        elif args.one_core_each:
            runs["this code"] = run_quickstart("new", ROOT, argv, work, 1)
    finally:
        if made is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(made)], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    shown = [a if not Path(a).is_absolute() else str(Path(a).relative_to(ROOT)) if Path(a).is_relative_to(ROOT) else "DIR"
             for a in argv]
    command = [a if not Path(a).is_absolute() else "DIR" for a in sys.argv[1:]]  # no paths of this machine
    lines = [
        f"Command: `python -m bench.bench_speed {shlex.join(command)}`.",
        "",
        f"End to end, the README quick start: `promptsel {shlex.join(shown)}`, cold (an empty cache directory each), "
        + ("both at the same time, each pinned to one CPU of its own (one llama.cpp thread each), "
           if args.one_core_each else "one run after the other, ")
        + "in one Python environment. Load: the 1-minute load average at the start and end of "
        "each run; others: the CPU (in cores) that the rest of the machine used during the run, from /proc/stat"
        + (" (the other quick start included)." if args.one_core_each else "."),
        "",
        "| code | wall time | CPU time | peak RSS | tokens of the sequences asked for | tokens evaluated | evaluated / asked "
        "| load start → end | others | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        c = r["counts"]
        others = "–" if r["others"] is None else f"{r['others']:.2f}"
        lines.append(f"| {name} | {r['seconds'] / 60:.1f} min | {r['cpu'] / 60:.1f} min | {r['rss_mb']:.0f} MB | "
                     f"{c['requested']:,} | {c['evaluated']:,} | {c['evaluated'] / max(c['requested'], 1):.2f} | "
                     f"{r['load'][0]:.1f} → {r['load'][1]:.1f} | {others} | < 10 min, ≤ 1500 MB |")
    if len(runs) == 2:
        old, new = runs.values()
        same = {k: bool(np.array_equal(old["table"][k], new["table"][k], equal_nan=True)) for k in old["table"]}
        lines += ["", f"Old / new wall time: **{old['seconds'] / new['seconds']:.2f}×** (CPU time "
                  f"{old['cpu'] / new['cpu']:.2f}×); tokens evaluated, old / new: "
                  f"{old['counts']['evaluated'] / max(new['counts']['evaluated'], 1):.2f}×. "
                  f"Class log-probs bit-identical: {same['class_logprobs']}; template NLL (SPELL) bit-identical: "
                  f"{same['prompt_nll']}.", "",
                  "| method | chosen (old) | chosen (new) | same |", "|---|---|---|---|"]
        old_m, new_m = old["report"]["methods"], new["report"]["methods"]
        for m in dict.fromkeys([*old_m, *new_m]):
            a, b = old_m.get(m, {}).get("chosen"), new_m.get(m, {}).get("chosen")
            verdict = "yes" if a == b else "new method" if a is None else "not run" if b is None else "**no**"
            lines.append(f"| {m} | {a or '–'} | {b or '–'} | {verdict} |")
    return [*lines, ""]

if __name__ == "__main__":
    main()
