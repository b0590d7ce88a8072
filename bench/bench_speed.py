"""Speed and memory benchmark of `promptsel select` scoring on the default model.

Measured side by side in one run (these machines are noisy, so ratios, not absolute times,
are the targets):

1. cold-cache scoring throughput vs raw llama.cpp ``Llama.eval`` of the very same token
   sequences (target: >= 0.9x raw), prefix reuse off;
2. the same with KV prefix reuse on the instruction-first prompts (target: faster than raw);
3. warm-cache rerun vs cold (target: <= 5 % of cold);
4. ``promptsel --help`` wall time (target: < 0.5 s);
5. peak RSS of a full ``promptsel select`` quick start (target: <= 1.5 GB).

Usage: ``python bench/bench_speed.py [--limit N] [--data-dir DIR] [--write]``; ``--write``
appends the result table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    args = ap.parse_args()
    os.environ["PROMPTSEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="promptsel-bench-")
    os.environ.setdefault("PROMPTSEL_ASSETS_DIR", str(Path.home() / ".cache" / "promptsel" / "assets"))

    import llama_cpp

    from promptsel.assets.models import default_model_path
    from promptsel.selection.cache import Cache
    from promptsel.selection.inputs import load_dataset, resolve_dataset_spec
    from promptsel.selection.prompts import load_prompt_set
    from promptsel.selection.request import ScoringOptions, SelectRequest
    from promptsel.selection.scoring import Scorer, build_score_table, scoring_texts
    from promptsel_builtin.llamacpp import LlamaCppBackend

    model = default_model_path()
    prompt_set = load_prompt_set(ROOT / "prompts" / "sa.toml")
    plain = [p for p in prompt_set.prompts if not p.cot]
    instruction_first = [p for p in plain if not p.template.startswith("{{")]
    req = SelectRequest(dataset="rotten_tomatoes", prompts=None, limit=args.limit, data_dir=args.data_dir)
    dataset = load_dataset(req, resolve_dataset_spec("rotten_tomatoes"))
    options = ScoringOptions(need_nll=False)
    threads = os.cpu_count() or 1

    def promptsel_run(prompts, prefix_reuse: bool, cache: Cache) -> tuple[float, int]:
        backend = LlamaCppBackend(model=str(model), prefix_reuse=prefix_reuse)
        scorer = Scorer(backend, cache)
        sub = type(prompt_set)(path=prompt_set.path, name=prompt_set.name, prompts=prompts)
        seconds, _ = timed(lambda: build_score_table(sub, dataset, scorer, options))
        backend.close()
        return seconds, len(prompts) * len(dataset.examples)

    # The very same token sequences promptsel scores: rendered prompt + label continuations.
    backend = LlamaCppBackend(model=str(model), prefix_reuse=False)
    scorer = Scorer(backend, Cache(enabled=False))
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
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {threads} cores, llama-cpp-python {llama_cpp.__version__}",
        "",
        f"Command: `python bench/bench_speed.py --limit {args.limit}"
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
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
