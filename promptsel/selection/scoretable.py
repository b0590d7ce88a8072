"""The ScoreTable: one scoring pass, shared by every method.

``class_logprobs[p, n, c]`` is log p(class c | prompt p, input n), normalised over classes.
``prompt_nll[p, n]`` is the mean per-token negative log-likelihood of prompt p instantiated
with input n (for SPELL). Classes follow the dataset's class order everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from ..errors import UsageError


@dataclass
class ScoreTable:
    prompt_ids: list[str]
    class_names: list[str]
    class_logprobs: np.ndarray  # [P, N, C], normalised over C
    prompt_nll: np.ndarray | None = None  # [P, N]
    labels: np.ndarray | None = None  # [N] int class index, or None without labels
    sample_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        lp = np.asarray(self.class_logprobs, dtype=np.float64)
        if lp.ndim != 3:
            raise UsageError(f"class_logprobs must have shape [P, N, C], got {lp.shape}.")
        self.class_logprobs = log_softmax(lp, axis=-1)
        p, n, c = lp.shape
        if len(self.prompt_ids) != p:
            raise UsageError(f"{len(self.prompt_ids)} prompt ids for {p} prompts in class_logprobs.")
        if len(self.class_names) != c:
            raise UsageError(f"{len(self.class_names)} class names for {c} classes in class_logprobs.")
        if self.prompt_nll is not None:
            self.prompt_nll = np.asarray(self.prompt_nll, dtype=np.float64)
            if self.prompt_nll.shape != (p, n):
                raise UsageError(f"prompt_nll must have shape [{p}, {n}], got {self.prompt_nll.shape}.")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (n,):
                raise UsageError(f"labels must have shape [{n}], got {self.labels.shape}.")
            if n and (self.labels.min() < 0 or self.labels.max() >= c):
                raise UsageError(f"labels must be class indices in [0, {c - 1}].")
        if not self.sample_ids:
            self.sample_ids = [str(i) for i in range(n)]

    @property
    def n_prompts(self) -> int:
        return self.class_logprobs.shape[0]

    @property
    def n_examples(self) -> int:
        return self.class_logprobs.shape[1]

    @property
    def probs(self) -> np.ndarray:
        """p(class | prompt, input), [P, N, C]."""
        return np.exp(self.class_logprobs)

    @property
    def predictions(self) -> np.ndarray:
        """Argmax class per prompt and input, [P, N]; ties go to the lower class index."""
        return self.class_logprobs.argmax(axis=-1)

    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "class_logprobs": self.class_logprobs,
            "prompt_ids": np.asarray(self.prompt_ids, dtype=str),
            "class_names": np.asarray(self.class_names, dtype=str),
            "sample_ids": np.asarray(self.sample_ids, dtype=str),
        }
        if self.prompt_nll is not None:
            arrays["prompt_nll"] = self.prompt_nll
        if self.labels is not None:
            arrays["labels"] = self.labels
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, prompt_ids: list[str] | None = None) -> ScoreTable:
        """Read a scores file: ``class_logprobs`` [P,N,C] and optional ``prompt_nll`` [P,N],
        ``labels`` [N], ``prompt_ids`` [P], ``class_names`` [C], ``sample_ids`` [N].

        ``prompt_ids`` (from a prompt file) name the prompts when the file does not."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"Scores file not found: {path}.", hint="Check the path given to --scores.")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise UsageError(f"Cannot read scores file {path}: {exc}.", hint="It must be a .npz written by numpy.savez.") from exc
        if "class_logprobs" not in data.files:
            raise UsageError(
                f"Scores file {path} has no 'class_logprobs' array (it has: {', '.join(data.files) or 'nothing'}).",
                hint="Save log-probs of shape [prompts, examples, classes] under that name.",
            )
        lp = data["class_logprobs"]
        if lp.ndim != 3:
            raise UsageError(f"class_logprobs in {path} must have shape [P, N, C], got {lp.shape}.")
        p, _n, c = lp.shape
        if not np.all(np.isfinite(lp)):
            raise UsageError(f"class_logprobs in {path} has NaN or infinite values.")

        def strings(key: str, default: list[str]) -> list[str]:
            return [str(x) for x in data[key]] if key in data.files else default

        return cls(
            prompt_ids=strings("prompt_ids", prompt_ids or [f"prompt_{i:02d}" for i in range(p)]),
            class_names=strings("class_names", [f"class_{i}" for i in range(c)]),
            class_logprobs=lp,
            prompt_nll=data["prompt_nll"] if "prompt_nll" in data.files else None,
            labels=data["labels"] if "labels" in data.files else None,
            sample_ids=strings("sample_ids", []),
        )
