"""SDK and HTTP clients that talk through a test proxy and trust only the given CA files.

Note: ``anthropic`` 2.x (and ``openai`` 3.x internally) are built on ``httpx2``; the anthropic
SDK *rejects* an ``httpx.Client`` as ``http_client`` with a TypeError, so it gets an
``httpx2.Client``. The openai SDK accepts either; it gets a plain ``httpx.Client`` here (the
form most tests and docs use). ``trust_env=False`` everywhere: no proxy or CA settings leak in
from the environment.
"""

from __future__ import annotations

import os

import anthropic
import httpx
import httpx2
import openai

from .proxyproc import ssl_context

__all__ = ["anthropic_client", "http_client", "openai_client"]

TIMEOUT = 20.0


def http_client(proxy: str | None, *ca_files: str | os.PathLike[str]) -> httpx.Client:
    """``httpx.Client`` via ``proxy`` (``http://127.0.0.1:PORT``) trusting only ``ca_files``."""
    return httpx.Client(
        proxy=proxy, verify=ssl_context(*ca_files), trust_env=False, timeout=TIMEOUT
    )


def openai_client(
    proxy: str | None,
    *ca_files: str | os.PathLike[str],
    base_url: str = "https://api.openai.com/v1",
    api_key: str = "sk-test",
) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=TIMEOUT,
        http_client=http_client(proxy, *ca_files),
    )


def anthropic_client(
    proxy: str | None,
    *ca_files: str | os.PathLike[str],
    base_url: str = "https://api.anthropic.com",
    api_key: str = "sk-ant-test",
) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=TIMEOUT,
        http_client=httpx2.Client(
            proxy=proxy, verify=ssl_context(*ca_files), trust_env=False, timeout=TIMEOUT
        ),
    )
