"""Generate the hook reference page from the hook specs: ``python -m promptsel.hookdoc``."""

from __future__ import annotations

import inspect
import sys

from . import hookspecs

HEADER = """# promptsel hook reference

Generated from `promptsel/hookspecs.py` by `python -m promptsel.hookdoc > docs/hooks.md`;
a test fails when the two differ. Implement a hook with `@promptsel.hookimpl` in a module named
by an entry point of the group `promptsel`:

```toml
[project.entry-points.promptsel]
mything = "promptsel_mything"
```
"""


def signature(fn: object) -> str:
    """``name(arg: Type) -> Return`` with annotations as written in the source."""
    sig = inspect.signature(fn)  # annotations are strings (postponed evaluation)
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{fn.__name__}({args}) -> {sig.return_annotation}"


def render() -> str:
    parts = [HEADER]
    for name in hookspecs.spec_names():
        fn = getattr(hookspecs, name)
        parts.append(f"## `{signature(fn)}`\n\n{inspect.cleandoc(fn.__doc__ or '')}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
