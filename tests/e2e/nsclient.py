"""Run inside a test namespace: one chat request through the gate, print the outcome as JSON.

usage: nsclient.py PROXY_URL CA_FILE
"""

from __future__ import annotations

import json
import sys

import httpx
import openai


def main() -> None:
    proxy, ca = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        timeout=15,
        http_client=httpx.Client(proxy=proxy, verify=ca, trust_env=False),
    )
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        print(json.dumps({"allowed": True}))
    except openai.PermissionDeniedError as exc:
        print(json.dumps({"allowed": False, "message": str(exc)}))


if __name__ == "__main__":
    main()
