"""The backend contract's three scoring calls: continuation log-probs, sequence log-probs and
greedy generation, on the main context's prefix cache and the generation streams."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promptsel import BackendError, ContinuationRequest, ScoringMode, UsageError

from .greedy import Greedy
from .numerics import logsumexp_rows
from .streams import StreamScheduler

#: Room in a generation stream, after the prompt and the reasoning, for a CoT follow-up turn.
FOLLOW_UP_ROOM = 128


class Scoring(StreamScheduler):
    """``continuation_logprobs``, ``sequence_logprobs`` and ``generate``. The backend's
    constructor sets ``n_parallel``."""

    n_parallel: int

    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        if mode not in ("full", "first_token"):
            raise UsageError(f"Unknown scoring mode {mode!r}; use 'full' or 'first_token'.")
        self._engine()
        out = []
        for req in requests:
            prompt_ids = self._ids(req.prompt)
            n = len(prompt_ids)
            if n == 0:
                raise BackendError("An empty prompt has no next-token distribution to score (the model adds no BOS).")
            conts = [self._continuation_ids(req.prompt, prompt_ids, c) for c in req.continuations]
            longest = max((len(c) for c in conts), default=1)
            self._check_fits(n + (longest - 1 if mode == "full" else 0))
            self.counters["requested"] += n + (sum(len(c) - 1 for c in conts) if mode == "full" else 0)
            stream = self._stream_for(prompt_ids, n + longest)
            if stream is not None:  # a CoT follow-up right after its reasoning: reuse the first turn
                out.append(self._stream_continuations(*stream, prompt_ids, conts, mode))
                continue
            first = self._last_row_logprobs(prompt_ids)
            values = np.empty(len(conts))
            for k, cont in enumerate(conts):
                total = float(first[cont[0]])
                if mode == "full" and len(cont) > 1:
                    total += float(self._extra_logprobs(prompt_ids, cont).sum())
                values[k] = total
            out.append(values)
        return out

    def _extra_logprobs(self, prompt_ids: tuple[int, ...], cont: tuple[int, ...]) -> np.ndarray:
        """log p(cont[j] | prompt, cont[:j]) for j >= 1, evaluating the prompt's last token again
        together with cont[:-1] (never a one-token batch); the cache then holds prompt + cont[:-1]."""
        n = len(prompt_ids)
        keep = self._keep_prefix(prompt_ids, n - 1)
        if keep < n - 1:  # the prompt was dropped (a memory that cannot remove a suffix)
            self._decode(prompt_ids[keep : n - 1], keep, out_from=n + len(cont))
        targets = np.asarray(cont[1:], dtype=np.int64)
        got: list[np.ndarray] = []

        def take(pos: int, rows: np.ndarray) -> None:
            idx = np.arange(pos - n, pos - n + len(rows))
            got.append(rows[np.arange(len(rows)), targets[idx]].astype(np.float64) - logsumexp_rows(rows))

        self._decode((prompt_ids[-1], *cont[:-1]), n - 1, out_from=n, on_rows=take)
        return np.concatenate(got)

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """log p(t_i | t_<i) for i = 1 ... len-1 over the token ids ``t`` of each text.

        ``t`` starts with the model's BOS when its tokenizer adds one (then the text's first token
        is scored, conditioned on BOS); when it adds none (SmolLM2), ``t_0`` is the text's first
        token and has no log-prob. So a text of ``n`` ids gives ``n - 1`` values (none for n < 2).
        """
        self._engine()
        out = []
        for text in texts:
            ids = self._ids(text)
            n = len(ids)
            if n < 2:
                out.append(np.zeros(0))
                continue
            self._check_fits(n)
            self.counters["requested"] += n
            arr = np.asarray(ids, dtype=np.int32)
            # Rows whose log-prob is already known from an earlier decode of the same prefix.
            common = 0
            if self.prefix_reuse and self._kv_len:
                m = min(self._kv_len, n)
                same = self._kv[:m] == arr[:m]
                common = m if bool(same.all()) else int(np.argmin(same))
            r = max(min(common - 1, n - 1), 0)
            unknown = np.flatnonzero(np.isnan(self._known[:r]))
            if len(unknown):
                r = int(unknown[0])
            if r < n - 1:
                keep = self._keep_prefix(ids, r)
                known = self._known

                def store(pos: int, rows: np.ndarray, arr: np.ndarray = arr, known: np.ndarray = known) -> None:
                    k = len(rows)
                    targets = arr[pos + 1 : pos + 1 + k]
                    known[pos : pos + k] = rows[np.arange(k), targets].astype(np.float64) - logsumexp_rows(rows)

                # Row n-1 is not needed, but evaluating the last token too keeps it in the cache
                # for the next request and every decode at two tokens or more.
                self._decode(ids[keep:], keep, out_from=keep, out_to=n - 1, on_rows=store)
            values = self._known[: n - 1].copy()
            if not np.isfinite(values).all():
                raise BackendError(f"llama.cpp returned non-finite logits ({self.model_name}).")
            out.append(values)
        return out

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy (argmax) continuation of each prompt, at most ``max_tokens`` tokens; stops at an
        end-of-generation token (EOS, end of turn) or at a stop string, which is cut off.

        Prompts go ``n_parallel`` at a time through independent KV streams (:mod:`.streams`): the
        text of each is the same as when it is generated alone."""
        self._engine()
        stops = tuple(s for s in (stop or []) if s)
        all_ids = []
        for prompt in prompts:
            ids = self._ids(prompt)
            if not ids:
                raise BackendError("An empty prompt cannot be continued (the model adds no BOS).")
            self._check_fits(len(ids))
            all_ids.append(ids)
        self.counters["requested"] += sum(map(len, all_ids))
        states = [Greedy(len(ids), max_tokens, stops, self._limit) for ids in all_ids]
        # Streams hold a prompt, its generation and a follow-up turn (CoT); prompts too long for a
        # shared context go alone.
        cells = -(-(max(map(len, all_ids), default=0) + max_tokens + FOLLOW_UP_ROOM) // 256) * 256
        streams = min(self.n_parallel, len(prompts), self.n_ctx // max(cells, 1))
        if streams >= 2 and max_tokens > 1 and cells <= self._limit:
            for start in range(0, len(prompts), streams):  # fixed groups, in the order given
                self._generate_streams(all_ids[start : start + streams], states[start : start + streams], cells)
        else:
            for ids, state in zip(all_ids, states):
                self._generate_alone(ids, state)
        self.counters["generated"] += sum(g.step for g in states)
        return [g.text() for g in states]

    def _generate_alone(self, ids: tuple[int, ...], state: Greedy) -> None:
        row: np.ndarray | None = self._last_row_logprobs(ids)
        while row is not None:
            token = state.feed(row, self)
            row = None if token is None else self._decode((token,), state.position, out_from=state.position)
        # The generated tokens were decoded one at a time, which gives other numbers than evaluating
        # them with the text after them (see .numerics): the next request (its CoT follow-up) may
        # keep the prompt only, as it does from a generation stream.
        self._keep_prefix(ids, len(ids))
