"""The vllm backend against the hf backend on one model, on a GPU machine with vLLM installed.

Usage::

    python -m bench.bench_gpu_vllm --model PATH_TO_HF_MODEL_DIR [--dataset rotten_tomatoes]
        [--data-dir ../shared/data] [--prompts prompts/sa.toml] [--limit 50] [--dtype bfloat16]
        [--vllm-arg KEY=VALUE ...] [--out DIR]

It runs ``promptsel select`` twice on the same model directory, with ``--backend vllm`` and with
``--backend hf`` (on cuda), each in its own process (vLLM reserves a share of the GPU memory
it finds free, so the two engines never share the GPU) and each with a fresh, empty cache. Then
it prints a Markdown summary: the agreement of the two class log-prob tables and prompt NLLs
(max and mean absolute difference, how often the predicted class is the same), each method's
chosen prompt under each backend, and the wall and scoring times.

Nothing comes from the internet: the weights are the directory given, the data a local data
directory, and the children run with ``HF_HUB_OFFLINE=1``. Both backends get the same ``--dtype``
(bfloat16 by default; float32 gives the tightest agreement where vLLM's attention supports it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("vllm", "hf")


def run_select(backend: str, args: argparse.Namespace, out: Path) -> tuple[dict, dict, float]:
    """(report, saved scores, wall seconds) of one cold ``promptsel select`` in a child process."""
    options = [f"dtype={args.dtype}"]
    options += [*args.vllm_arg] if backend == "vllm" else [f"device={args.hf_device}", f"batch_size={args.hf_batch_size}"]
    scores = out / f"{backend}.npz"
    cmd = [sys.executable, "-m", "promptsel", "select", "--backend", backend, "--model", str(args.model),
           "--dataset", args.dataset, "--prompts", str(args.prompts), "--limit", str(args.limit),
           "--max-new-tokens", str(args.max_new_tokens), "--save-scores", str(scores),
           "--json", "--no-progress", "-q"]
    cmd += [x for o in options for x in ("-M", o)]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.methods:
        cmd += ["--methods", args.methods]
    env = {**os.environ, "PROMPTSEL_CACHE_DIR": str(out / f"cache-{backend}"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    (out / f"{backend}.stderr.txt").write_text(done.stderr)
    if done.returncode != 0:
        sys.exit(f"promptsel select --backend {backend} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout)
    (out / f"{backend}.json").write_text(json.dumps(report, indent=1))
    with np.load(scores) as data:
        return report, {k: data[k] for k in data.files}, wall


def summary(args: argparse.Namespace, runs: dict[str, tuple[dict, dict, float]]) -> str:
    (rv, sv, wv), (rh, sh, wh) = runs["vllm"], runs["hf"]
    lp_v, lp_h = sv["class_logprobs"], sh["class_logprobs"]  # [P, N, C], normalised over classes
    diff = np.abs(lp_v - lp_h)
    same_class = float((lp_v.argmax(-1) == lp_h.argmax(-1)).mean())
    versions = {k: v for k, v in {**rh["versions"], **rv["versions"]}.items() if k in ("vllm", "torch", "transformers", "promptsel")}
    p, n, c = lp_v.shape
    lines = [
        f"### vllm vs hf: {Path(args.model).name}, {args.dtype}, {rv['dataset']['name']} "
        f"{rv['dataset']['split']} ({n} examples), {Path(args.prompts).name} ({p} prompts, {c} classes)",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".",
        "",
        "| agreement | value |",
        "|---|---|",
        f"| class log-probs: max abs diff | {diff.max():.2e} |",
        f"| class log-probs: mean abs diff | {diff.mean():.2e} |",
        f"| same predicted class | {100 * same_class:.2f} % of {p * n} (prompt, example) pairs |",
    ]
    if "prompt_nll" in sv and "prompt_nll" in sh:
        nll = np.abs(sv["prompt_nll"] - sh["prompt_nll"])
        lines.append(f"| prompt NLL (SPELL): max / mean abs diff | {nll.max():.2e} / {nll.mean():.2e} |")
    perf = [(a["id"], a["performance"], b["performance"]) for a, b in zip(rv["prompts"], rh["prompts"])]
    worst = max(perf, key=lambda t: abs((t[1] or 0) - (t[2] or 0)))
    lines += [f"| largest accuracy gap between backends | {worst[0]}: {worst[1]} vs {worst[2]} |", "",
              "| method | chosen with vllm | chosen with hf | same |", "|---|---|---|---|"]
    for method, entry in rv["methods"].items():
        other = rh["methods"].get(method, {}).get("chosen")
        lines.append(f"| {method} | {entry['chosen']} | {other} | {'yes' if entry['chosen'] == other else '**no**'} |")
    lines += ["", "| time (s) | vllm | hf |", "|---|---|---|",
              f"| wall, whole process | {wv:.1f} | {wh:.1f} |"]
    for key in ("load_backend", "scoring", "total"):
        lines.append(f"| {key} | {rv['timings'].get(key, 0):.1f} | {rh['timings'].get(key, 0):.1f} |")
    lines.append(f"| scoring speed-up of vllm | {rh['timings']['scoring'] / max(rv['timings']['scoring'], 1e-9):.2f}× | |")
    lines += ["", "The vllm backend starts its engine on first use, so its load time is inside `scoring`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path, help="a local Hugging Face model directory")
    ap.add_argument("--dataset", default="rotten_tomatoes")
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--prompts", type=Path, default=ROOT / "prompts" / "sa.toml")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--methods", default=None, help="comma-separated; default: every label-free method")
    ap.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16", "float16"))
    ap.add_argument("--max-new-tokens", type=int, default=64, help="CoT reasoning length")
    ap.add_argument("--hf-batch-size", type=int, default=16)
    ap.add_argument("--hf-device", default="cuda", help="where the hf backend runs (cpu: a slow reference)")
    ap.add_argument("--vllm-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra vllm option, e.g. tensor_parallel_size=2 (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="keep reports and scores here (default: a temp dir)")
    args = ap.parse_args()
    if not args.model.is_dir():
        sys.exit(f"--model must be a local model directory; {args.model} is not one.")
    if importlib.util.find_spec("vllm") is None:
        sys.exit("vLLM is not installed here: pip install vllm (Linux, CUDA GPU), then run this again.")
    if args.data_dir and not args.data_dir.is_dir():
        args.data_dir = None  # promptsel's own sources (offline Rotten Tomatoes, the hub) are tried instead
    out = args.out or Path(tempfile.mkdtemp(prefix="promptsel-gpu-vllm-"))
    out.mkdir(parents=True, exist_ok=True)
    runs = {backend: run_select(backend, args, out) for backend in BACKENDS}
    text = summary(args, runs)
    (out / "summary.md").write_text(text)
    print(text)
    print(f"Reports, scores and logs: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
