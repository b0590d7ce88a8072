"""A cold run of the ``promptsel`` command line, counted: one process with an empty cache
directory, through bench/lib/counting.py (tokens llama.cpp evaluated), timed (wall, CPU, what the
rest of the machine used meanwhile), optionally pinned to one CPU. Shared by bench_speed,
bench_adaptive_live and bench_expand."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.lib.shared_dir import shared_root

ROOT = Path(__file__).resolve().parents[2]


def work_dir(keep: Path | None, prefix: str) -> Path:
    """Where the runs write: ``keep`` (kept afterwards) or a new temporary folder; the fetched
    model archives are shared with the user's (not their unpacked contents: runs stay cold)."""
    os.environ.setdefault("PROMPTSEL_ASSETS_DIR", str(Path.home() / ".cache" / "promptsel" / "assets"))
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return work


def without_paths(text: str, work: Path) -> str:
    """``text`` with this machine's paths replaced (no paths of a machine in a committed file)."""
    return (text.replace(str(work), "DIR").replace(str(shared_root()), "../shared").replace(str(ROOT) + "/", "")
            .replace(str(Path.home()), "~"))


def command_line(argv: list[str]) -> str:
    """A benchmark's own arguments as recorded: absolute paths as DIR."""
    return " ".join("DIR" if Path(a).is_absolute() else a for a in argv)


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None where /proc/stat is missing)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_quickstart(name: str, tree: Path, argv: list[str], work: Path, cpu: int | None = None) -> dict:
    """One cold quick start of the code in ``tree`` through bench/lib/counting.py, in this Python
    (pinned to CPU ``cpu`` if given)."""
    shim = work / f"path-{name}"  # promptsel and promptsel_builtin of that tree, ahead of any install
    shim.mkdir()
    (shim / "promptsel").symlink_to(tree / "promptsel")
    (shim / "promptsel_builtin").symlink_to(tree / "plugins")
    cache = work / f"cache-{name}"  # cold: an empty cache directory (results, unpacked model, fingerprints)
    cache.mkdir()
    counts, scores = work / f"{name}.counts.json", work / f"{name}.scores.npz"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTSEL_")}
    env.update(PYTHONPATH=str(shim), PROMPTSEL_CACHE_DIR=str(cache), PROMPTSEL_COUNTS=str(counts),
               PROMPTSEL_ASSETS_DIR=os.environ["PROMPTSEL_ASSETS_DIR"])  # the fetched archives, not their contents
    cmd = [sys.executable, str(ROOT / "bench" / "lib" / "counting.py"), *argv, "--json", "--save-scores", str(scores)]
    print(f"quick start, {name}: {shlex.join(argv)} (stderr in {work / (name + '.stderr')})", file=sys.stderr, flush=True)
    load, busy = os.getloadavg(), busy_seconds()
    began = time.perf_counter()
    with open(work / f"{name}.json", "wb") as out, open(work / f"{name}.stderr", "wb") as err:
        pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=work, preexec_fn=pin)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    busy_after, load_after = busy_seconds(), os.getloadavg()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"quick start failed ({name}): {(work / (name + '.stderr')).read_text()[-3000:]}")
    cpu_s = usage.ru_utime + usage.ru_stime
    counted = json.loads(counts.read_text())
    if not Path(counted["promptsel"]).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"quick start ({name}) ran the promptsel of {counted['promptsel']}, not of {tree}")
    import numpy as np

    with np.load(scores) as z:
        table = {k: z[k] for k in ("class_logprobs", "prompt_nll") if k in z}  # no SPELL: no prompt_nll
    others = None if busy is None or busy_after is None else max(busy_after - busy - cpu_s, 0.0) / seconds
    print(f"quick start, {name}: {seconds:.0f} s wall, {cpu_s:.0f} s CPU, {counted}", file=sys.stderr, flush=True)
    return {"seconds": seconds, "cpu": cpu_s, "rss_mb": counted.get("rss_mb", usage.ru_maxrss / 1024), "counts": counted, "others": others,
            "load": (load[0], load_after[0]), "report": json.loads((work / f"{name}.json").read_text()), "table": table}
