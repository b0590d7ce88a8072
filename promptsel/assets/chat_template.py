"""A model's chat template, found and rendered without the model's engine.

Backends that talk to a server (``openai``) do not hold the tokenizer, yet chat prompts must be
formatted exactly as the in-process backends format them, or the scores differ. The template is
read from where the model's files keep it and rendered the way transformers and llama-cpp-python
do: a sandboxed Jinja environment with ``trim_blocks`` and ``lstrip_blocks``, ``raise_exception``
and ``strftime_now`` available, ``bos_token``/``eos_token`` passed in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class ChatTemplate:
    source: str
    template: str
    bos_token: str = ""
    eos_token: str = ""

    def render(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
        env.filters["tojson"] = lambda value, indent=None: json.dumps(value, indent=indent, ensure_ascii=False)
        return env.from_string(self.template).render(
            messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token, eos_token=self.eos_token,
        )


def load_chat_template(spec: str) -> ChatTemplate:
    """The chat template behind ``spec``: a ``.gguf`` file (its ``tokenizer.chat_template``), a
    Hugging Face model folder or its ``tokenizer_config.json``, or a Jinja file."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise UsageError(
            f"Chat template {spec!r} does not exist.",
            hint="Pass a .gguf file, a Hugging Face model folder, its tokenizer_config.json, or a .jinja file.",
        )
    if path.suffix == ".gguf":
        return _from_gguf(path)
    if path.is_dir():
        jinja = path / "chat_template.jinja"  # transformers >= 4.43 may save it beside the config
        if jinja.exists():
            config = _read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").exists() else {}
            return ChatTemplate(str(jinja), jinja.read_text(), *_special_tokens(config))
        path = path / "tokenizer_config.json"
    if path.suffix == ".json":
        config = _read_json(path)
        template = config.get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            template = next((t["template"] for t in template if t.get("name") == "default"), None)
        if not template:
            raise UsageError(f"{path} has no chat_template.", hint="Pass the model's .jinja template file instead.")
        return ChatTemplate(str(path), template, *_special_tokens(config))
    return ChatTemplate(str(path), path.read_text())


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"Cannot read {path}: {exc}.") from None


def _special_tokens(config: dict) -> tuple[str, str]:
    def text(value: object) -> str:
        return value.get("content", "") if isinstance(value, dict) else str(value or "")

    return text(config.get("bos_token")), text(config.get("eos_token"))


def _from_gguf(path: Path) -> ChatTemplate:
    meta = gguf_metadata(path, ("tokenizer.chat_template", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"))
    template = meta.get("tokenizer.chat_template")
    if not template:
        raise UsageError(f"{path} has no tokenizer.chat_template.", hint="Use raw (non-chat) prompts with this model.")
    ids = [meta.get(k) for k in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id")]
    tokens = gguf_metadata(path, ("tokenizer.ggml.tokens",), pick=ids).get("tokenizer.ggml.tokens", {})
    return ChatTemplate(str(path), template, *(tokens.get(i, "") for i in ids))


# GGUF value types (gguf spec): fixed-size scalars by struct format; 8 = string, 9 = array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_metadata(path: Path, keys: Sequence[str], pick: Sequence[object] = ()) -> dict:
    """The values of ``keys`` from a GGUF file's header, read without loading its tensors (the
    gguf package parses the whole file, ~10 s for a 100 MB model). For an array value only the
    items at the indices in ``pick`` are kept, as {index: item}."""
    import mmap
    import struct

    wanted, found = set(keys), {}
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise UsageError(f"{path} is not a GGUF file.")
        pos = 4 + 4 + 8  # magic, version, tensor count

        def read(fmt: str):
            nonlocal pos
            (value,) = struct.unpack_from("<" + fmt, buf, pos)
            pos += struct.calcsize(fmt)
            return value

        def string() -> str:
            nonlocal pos
            n = read("Q")
            pos += n
            return buf[pos - n : pos].decode("utf-8", errors="replace")

        def value(kind: int, keep: bool, indices: set | None = None):
            if kind in _SCALARS:
                return read(_SCALARS[kind])
            if kind == 8:
                return string()
            item_kind, count = read("I"), read("Q")
            if item_kind in _SCALARS and not keep:  # skip fixed-size arrays in one step
                nonlocal pos
                pos += count * struct.calcsize(_SCALARS[item_kind])
                return None
            items = {}
            for i in range(count):
                item = value(item_kind, keep)
                if keep and (indices is None or i in indices):
                    items[i] = item
            return items

        n_kv = read("Q")
        for _ in range(n_kv):
            key = string()
            kind = read("I")
            keep = key in wanted
            v = value(kind, keep, {i for i in pick if isinstance(i, int)} if keep and pick else None)
            if keep:
                found[key] = v
                if len(found) == len(wanted):
                    break
    return found
