"""The openai backend's HTTP side: one client, each request retried as the server asks, and no
secret (the API key, the URL's credentials) in any message.

Retries are ours, not the client's: 429, 5xx, timeouts, dropped connections and unparseable
bodies are retried with exponential backoff or after the server's ``Retry-After``, and counted
(``retries``, ``waited``) for reports and tests.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from promptsel import BackendError


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), if any."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return None if when is None else max(0.0, when.timestamp() - time.time())


class EndpointMissing(BackendError):
    """The server has no such endpoint (or model)."""


class OpenAIHttp:
    """Requests to the server through one ``openai.OpenAI`` client, concurrently up to
    ``concurrency``. The backend's constructor sets the settings read here (``_url``,
    ``base_url``, ``api_key_env``, ``_secrets``, ``concurrency``, ``timeout``, ``max_retries``,
    ``backoff``), ``_client = None``, ``_lock``, and the counters ``retries`` and ``waited``."""

    _url: str
    base_url: str
    api_key_env: str
    _secrets: list[str]
    concurrency: int
    timeout: float
    max_retries: int
    backoff: float
    _client: Any
    _lock: threading.Lock
    retries: int
    waited: float

    def redact(self, text: str) -> str:
        """``text`` without the API key or the URL's credentials (a server's error body may
        quote the request's headers or URL)."""
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _detail(self, exc: Exception) -> str:
        return self.redact(_detail(exc))

    def _openai(self) -> Any:
        if self._client is None:
            openai = import_openai()
            key = os.environ.get(self.api_key_env) or "not-needed"  # local servers take any key
            # Retries are ours (they honour Retry-After and are counted), so the client's are off.
            self._client = openai.OpenAI(base_url=self._url, api_key=key, max_retries=0, timeout=self.timeout)
        return self._client

    def _call(self, send: Callable[[Any], Any]) -> Any:
        """One request with retries: 429, 5xx, timeouts, dropped connections and unparseable
        bodies are retried with exponential backoff (or the server's Retry-After); anything else
        is a one-line error."""
        client = self._openai()
        openai = import_openai()
        for attempt in range(self.max_retries + 1):
            try:
                return send(client)
            except openai.AuthenticationError:
                raise BackendError(
                    f"The server at {self.base_url} refused the API key (401).",
                    hint=f"Set {self.api_key_env} to a valid key (or -M api_key_env=NAME).",
                ) from None
            except openai.PermissionDeniedError as exc:
                raise BackendError(f"The server at {self.base_url} denied access (403): {self._detail(exc)}") from None
            except openai.NotFoundError as exc:
                raise EndpointMissing(f"{self.base_url} has no such endpoint or model (404): {self._detail(exc)}",
                                   hint="Check --model and -M base_url (it usually ends in /v1).") from None
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError) as exc:
                unreachable = _unreachable(exc)
                if unreachable is not None:  # nobody listens there: retrying cannot help
                    raise BackendError(f"Cannot connect to {self.base_url} ({self.redact(unreachable)}).",
                                       hint="Check that the server is running and that -M base_url (or OPENAI_BASE_URL) "
                                            "is its address, usually ending in /v1.") from None
                status = getattr(exc, "status_code", None)
                if attempt == self.max_retries:
                    what = f"HTTP {status}" if status else type(exc).__name__
                    raise BackendError(f"{self.base_url} kept failing ({what}) after {self.max_retries} retries: {self._detail(exc)}",
                                       hint="Lower -j, raise -M timeout=SECONDS, or check the server.") from None
                response = getattr(exc, "response", None)
                wait = retry_after(getattr(response, "headers", None))
                if wait is None:
                    wait = self.backoff * 2**attempt * (1 + random.random())
                wait = min(wait, 120.0)
                with self._lock:
                    self.retries += 1
                    self.waited += wait
                time.sleep(wait)
            except openai.APIStatusError as exc:
                raise BackendError(f"{self.base_url} answered HTTP {exc.status_code}: {self._detail(exc)}") from None
        raise AssertionError("unreachable")

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise BackendError("The openai backend needs the openai package.",
                           hint="Install it with: pip install 'promptsel[openai]' (or pip install openai).") from None
    return openai


_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")


def redact_url(text: str) -> str:
    """Every ``scheme://user:password@host`` in ``text`` with ``***@`` for the credentials."""
    return _USERINFO.sub("***@", text)


def secrets_of(url: str, api_key: str | None) -> list[str]:
    """Strings that must never be shown: the API key and the URL's credentials, as written,
    percent-decoded and as the Basic authorization header carries them. Very short ones (under
    4 characters) are left alone: replacing them would garble every message."""
    found: list[str] = [api_key] if api_key else []
    for userinfo in re.findall(r"//([^/@\s]*)@", url):
        plain = urllib.parse.unquote(userinfo)
        _, _, password = plain.partition(":")
        found += [userinfo, plain, password, urllib.parse.quote(password, safe=""),
                  base64.b64encode(plain.encode()).decode()]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _unreachable(exc: BaseException) -> str | None:
    """The reason, when the request never reached a server (refused, no such host)."""
    seen: BaseException | None = exc
    while seen is not None:
        if any(c.__name__ == "ConnectError" for c in type(seen).__mro__) or isinstance(seen, ConnectionRefusedError):
            return str(seen).splitlines()[0] if str(seen) else "connection refused"
        seen = seen.__cause__ or seen.__context__
    return None


def _detail(exc: Exception) -> str:
    """The server's own error message (OpenAI's ``{"error": {"message": ...}}`` or a bare
    ``{"message": ...}``), else the exception's first line."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        message = body.get("message") or (error.get("message") if isinstance(error, dict) else None)
        if message:
            return str(message)[:200]
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
