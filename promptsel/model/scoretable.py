"""The ScoreTable: one scoring pass, shared by every method.

``class_logprobs[p, n, c]`` is log p(class c | prompt p, input n), normalised over classes.
``prompt_nll[p, n]`` is the mean per-token negative log-likelihood of prompt p instantiated
with input n (for SPELL). Classes follow the dataset's class order everywhere.
``unlabeled`` (:class:`UnlabeledScores`) holds FUTE's corpus U and every prompt's class log-probs
on it, so that a scores file can replay FUTE without the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from ..errors import UsageError
from ..files import atomic_open

#: The table's arrays by name: what a selector may need of a table (``Selector.needs``), as
#: opposed to a backend capability. A method that needs only these is a function of the table.
CLASS_LOGPROBS = "class_logprobs"
PROMPT_NLL = "prompt_nll"
TABLE_ARRAYS = frozenset({CLASS_LOGPROBS, PROMPT_NLL})
#: The prompts' class log-probs on an unlabeled corpus (FUTE's U). Not among ``TABLE_ARRAYS``:
#: a method that needs it is no function of the evaluation rows (it cannot be rerun on them).
UNLABELED_LOGPROBS = "unlabeled_logprobs"
#: The scores file's arrays that hold U: texts [M], second segments [M] (pairs), log-probs [P, M, C].
UNLABELED_KEYS = ("unlabeled_text", "unlabeled_text_b", UNLABELED_LOGPROBS)


@dataclass
class UnlabeledScores:
    """An unlabeled corpus and every prompt's class log-probs on it: ``logprobs[p, m, c]`` for
    the table's prompts and classes, ``text[m]`` (and ``text_b[m]``, the second segment, for
    tasks with two text fields) the inputs they were computed on. Labels are never part of it."""

    text: list[str]
    logprobs: np.ndarray  # [P, M, C], normalised over C by the table
    text_b: list[str] | None = None

    def check(self, p: int, c: int) -> None:
        """Validate against a table of ``p`` prompts and ``c`` classes, and normalise."""
        lp = _numbers(UNLABELED_LOGPROBS, self.logprobs)
        if lp.ndim != 3 or lp.shape[0] != p or lp.shape[2] != c or lp.shape[1] == 0:
            raise UsageError(f"unlabeled_logprobs must have shape [P, M, C] = [{p}, M, {c}] (the prompts and classes of "
                             f"class_logprobs, M >= 1 texts), got {lp.shape}.")
        if not np.isfinite(lp).all():
            raise UsageError("unlabeled_logprobs has NaN or infinite values.")
        self.logprobs = log_softmax(lp, axis=-1)
        m = lp.shape[1]
        self.text = _texts("unlabeled_text", self.text, m)
        if self.text_b is not None:
            self.text_b = _texts("unlabeled_text_b", self.text_b, m)

    @property
    def probs(self) -> np.ndarray:
        """p(class | prompt, U text), [P, M, C]: what FUTE's model task embeddings learn."""
        return np.exp(self.logprobs)


@dataclass
class ScoreTable:
    prompt_ids: list[str]
    class_names: list[str]
    class_logprobs: np.ndarray  # [P, N, C], normalised over C
    prompt_nll: np.ndarray | None = None  # [P, N]
    labels: np.ndarray | None = None  # [N] int class index, or None without labels
    sample_ids: list[str] = field(default_factory=list)
    #: [P, N] bool: the cells an adaptive run scored (``select --adaptive`` reads only some);
    #: None: every cell. Unscored cells are NaN in the saved file and uniform here; only an
    #: adaptive replay reads such a table, and it never reads them.
    scored: np.ndarray | None = None
    unlabeled: UnlabeledScores | None = None

    def __post_init__(self) -> None:
        lp = _numbers("class_logprobs", self.class_logprobs)
        if lp.ndim != 3:
            raise UsageError(f"class_logprobs must have shape [P, N, C], got {lp.shape}.")
        p, n, c = lp.shape
        if not (p and n and c):
            raise UsageError(f"class_logprobs has shape {lp.shape}: it needs at least one prompt, one example and two classes.")
        if c < 2:
            raise UsageError("class_logprobs has one class: choosing a prompt needs at least two.")
        if self.scored is not None:
            self.scored = np.asarray(self.scored, dtype=bool)
            if self.scored.shape != (p, n):
                raise UsageError(f"scored must have shape [{p}, {n}], got {self.scored.shape}.")
            lp = np.where(self.scored[..., None], lp, 0.0)
            if self.prompt_nll is not None:
                self.prompt_nll = np.where(self.scored, np.asarray(self.prompt_nll, dtype=np.float64), 0.0)
        if np.isnan(lp).any():
            raise UsageError("class_logprobs has NaN values.")
        self.class_logprobs = log_softmax(lp, axis=-1)
        self.prompt_ids = _names("prompt ids", self.prompt_ids, p, "prompts in class_logprobs", unique=True)
        self.class_names = _names("class names", self.class_names, c, "classes in class_logprobs", unique=True)
        if self.prompt_nll is not None:
            self.prompt_nll = _numbers("prompt_nll", self.prompt_nll)
            if self.prompt_nll.shape != (p, n):
                raise UsageError(f"prompt_nll must have shape [{p}, {n}], got {self.prompt_nll.shape}.")
            if not np.isfinite(self.prompt_nll).all():
                raise UsageError("prompt_nll has NaN or infinite values.")
        if self.labels is not None:
            self.labels = _labels(self.labels, n, c)
        if self.sample_ids:
            self.sample_ids = _names("sample ids", self.sample_ids, n, "examples in class_logprobs")
        else:
            self.sample_ids = [str(i) for i in range(n)]
        if self.unlabeled is not None:
            self.unlabeled.check(p, c)

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
        if self.scored is not None:  # an adaptive run's unscored cells: NaN, never a made-up number
            arrays["class_logprobs"] = np.where(self.scored[..., None], self.class_logprobs, np.nan)
            if self.prompt_nll is not None:
                arrays["prompt_nll"] = np.where(self.scored, self.prompt_nll, np.nan)
        if self.labels is not None:
            arrays["labels"] = self.labels
        if self.unlabeled is not None:
            arrays["unlabeled_text"] = np.asarray(self.unlabeled.text, dtype=str)
            arrays[UNLABELED_LOGPROBS] = self.unlabeled.logprobs
            if self.unlabeled.text_b is not None:
                arrays["unlabeled_text_b"] = np.asarray(self.unlabeled.text_b, dtype=str)
        with atomic_open(path) as fh:  # a run stopped while saving leaves no half-written file
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, prompt_ids: list[str] | None = None, *, unscored: bool = False) -> ScoreTable:
        """Read a scores file: ``class_logprobs`` [P,N,C] and optional ``prompt_nll`` [P,N],
        ``labels`` [N], ``prompt_ids`` [P], ``class_names`` [C], ``sample_ids`` [N], and FUTE's
        U: ``unlabeled_text`` [M] with ``unlabeled_logprobs`` [P,M,C] (``unlabeled_text_b`` [M]
        for pairs).

        ``prompt_ids`` (from a prompt file) name the prompts when the file does not.
        ``unscored``: accept the NaN cells an adaptive run leaves unscored (for an adaptive replay,
        which reads only the cells that run read); they become the table's ``scored`` mask."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"Scores file not found: {path}.", hint="Check the path given to --scores.")
        with path.open("rb") as fh:
            magic = fh.read(6)
        if not magic.startswith(b"PK") and magic != b"\x93NUMPY":  # neither a .npz (a zip) nor a .npy
            what = "JSON (a report?)" if magic.lstrip()[:1] in (b"{", b"[") else "not a numpy file"
            raise UsageError(f"Cannot read scores file {path}: it is {what}, not a .npz of arrays.",
                             hint="--scores reads a .npz written by select --save-scores (or numpy.savez); "
                                  "to compare two reports, use promptsel diff A.json B.json.")
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single array (.npy), not a .npz of named arrays")
            with data:
                arrays = {key: data[key] for key in data.files}
        except Exception as exc:  # not a zip, a damaged member, an object array (needs pickle)
            raise UsageError(f"Cannot read scores file {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.",
                             hint="It must be a .npz of plain numeric and string arrays, written by numpy.savez.") from None
        if "class_logprobs" not in arrays:
            raise UsageError(
                f"Scores file {path} has no 'class_logprobs' array (it has: {', '.join(arrays) or 'nothing'}).",
                hint="Save log-probs of shape [prompts, examples, classes] under that name.",
            )
        lp = arrays["class_logprobs"]
        if lp.dtype.kind in "fiu" and lp.ndim == 3 and lp.size and np.isfinite(lp).all() and lp.min() >= 0 \
                and np.allclose(lp.sum(axis=-1), 1.0, atol=1e-3):
            # Log-probs are at most 0; these are probabilities, and read as log-probs they would
            # rank prompts by the wrong numbers without a word.
            raise UsageError(f"Scores file {path}: class_logprobs holds probabilities (no value below 0, each row sums to 1).",
                             hint="Save their logarithm: class_logprobs=np.log(probs).")

        def strings(key: str, default: list[str]) -> list[str]:
            if key not in arrays:
                return default
            if arrays[key].dtype.kind not in "Uiu" or arrays[key].ndim != 1:
                raise UsageError(f"{key} must be a list of strings, got {arrays[key].dtype} of shape {arrays[key].shape}.")
            return [str(x) for x in arrays[key]]

        p = lp.shape[0] if lp.ndim == 3 else 0
        c = lp.shape[2] if lp.ndim == 3 else 0
        scored = None
        if unscored and lp.dtype.kind == "f" and lp.ndim == 3 and np.isnan(lp).any():
            scored = ~np.isnan(lp).any(axis=-1)
            lp = np.where(scored[..., None], lp, 0.0)
        try:
            if lp.dtype.kind in "fiu" and np.isnan(lp).any() and not unscored:
                raise UsageError("class_logprobs has NaN values: cells an adaptive run did not score.",
                                 hint="Replay it with select --scores FILE --adaptive and the run's --seed and settings.")
            if lp.dtype.kind in "fiu" and not np.isfinite(lp).all():
                raise UsageError("class_logprobs has NaN or infinite values.")
            return cls(
                prompt_ids=strings("prompt_ids", prompt_ids or [f"prompt_{i:02d}" for i in range(p)]),
                class_names=strings("class_names", [f"class_{i}" for i in range(c)]),
                class_logprobs=lp,
                prompt_nll=arrays.get("prompt_nll"),
                labels=arrays.get("labels"),
                sample_ids=strings("sample_ids", []),
                scored=scored,
                unlabeled=_unlabeled(arrays),
            )
        except UsageError as exc:
            raise UsageError(f"Scores file {path}: {exc.message}", hint=exc.hint) from None


def _unlabeled(arrays: dict[str, np.ndarray]) -> UnlabeledScores | None:
    """U's arrays of a scores file, all or none: texts without log-probs (or the reverse) are
    refused, never silently dropped."""
    present = [k for k in UNLABELED_KEYS if k in arrays]
    if not present:
        return None
    if UNLABELED_LOGPROBS not in arrays:
        raise UsageError(f"{', '.join(present)} without unlabeled_logprobs: FUTE needs the prompts' class log-probs on U.",
                         hint="Add unlabeled_logprobs of shape [prompts, texts, classes], or drop the unlabeled arrays.")
    if "unlabeled_text" not in arrays:
        raise UsageError("unlabeled_logprobs without unlabeled_text: FUTE trains on the texts they were computed on.",
                         hint="Add unlabeled_text [M] (strings, in the order of unlabeled_logprobs' second axis).")
    text_b = arrays.get("unlabeled_text_b")
    return UnlabeledScores(text=arrays["unlabeled_text"], logprobs=arrays[UNLABELED_LOGPROBS],
                           text_b=None if text_b is None else text_b)


def _texts(name: str, values: object, m: int) -> list[str]:
    array = np.asarray(values)
    if array.dtype.kind != "U" or array.ndim != 1:
        raise UsageError(f"{name} must be a list of strings, got {array.dtype} of shape {array.shape}.")
    if len(array) != m:
        raise UsageError(f"{name} has {len(array)} texts for the {m} of unlabeled_logprobs.")
    blank = next((i for i, x in enumerate(array) if not str(x).strip()), None)
    if blank is not None:
        raise UsageError(f"{name}[{blank}] is blank: every unlabeled input needs its text.")
    return [str(x) for x in array]


def _numbers(name: str, values: object) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise UsageError(f"{name} must hold numbers, got {array.dtype}.")
    return array.astype(np.float64)


def _names(what: str, names: list[str], n: int, of: str, *, unique: bool = False) -> list[str]:
    names = [str(x) for x in names]
    if len(names) != n:
        raise UsageError(f"{len(names)} {what} for {n} {of}.")
    if unique and len(set(names)) != n:
        dup = next(x for i, x in enumerate(names) if x in names[:i])
        raise UsageError(f"{what} must be unique; {dup!r} appears twice.")
    return names


def _labels(values: object, n: int, c: int) -> np.ndarray:
    """Class indices; floats only when they are whole numbers (never truncated)."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise UsageError(f"labels must be class indices (integers), got {array.dtype}.")
    if array.shape != (n,):
        raise UsageError(f"labels must have shape [{n}], got {array.shape}.")
    if array.dtype.kind == "f" and not (np.isfinite(array).all() and (array == np.round(array)).all()):
        bad = next(float(x) for x in array if not (np.isfinite(x) and x == round(x)))
        raise UsageError(f"labels must be class indices (whole numbers), got {bad}.")
    if n and (array.min() < 0 or array.max() >= c):
        raise UsageError(f"labels must be class indices in [0, {c - 1}].")
    return array.astype(np.int64)
