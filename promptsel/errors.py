"""User-facing errors. The CLI turns each into one line and an exit code; nothing else does."""

from __future__ import annotations


class PromptselError(Exception):
    """A problem the user can fix. The message says what went wrong and what to do.

    ``exit_code`` is 1 for runtime problems (missing file, unavailable data, a backend failing)
    and 2 for usage problems (bad option, unknown name, invalid input files).
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UsageError(PromptselError):
    """Bad command-line input: an unknown name, an invalid option, a broken prompt file."""

    exit_code = 2


class UnknownNameError(UsageError):
    """An unknown backend, selector, embedder or dataset name."""


class PromptFileError(UsageError):
    """A prompt set that cannot be loaded or does not fit the dataset."""


class DataError(PromptselError):
    """A dataset that cannot be found, read or sampled."""


class BackendError(PromptselError):
    """A backend that cannot be loaded or fails while scoring."""


class CapabilityError(UsageError):
    """A method that needs something the backend (or a scores file) cannot give."""


class CacheError(PromptselError):
    """A result cache that cannot be opened or read (a damaged file, a folder without access)."""
