"""What a blocked client sees: an error in its provider's own shape, or a page with a PIN form.

API clients get 403 (429 for quotas) with a body the official SDKs understand, so they raise
their ordinary permission / rate-limit error carrying the reason; ``x-should-retry: false``
tells the OpenAI and Anthropic SDKs not to retry. A browser navigating to a blocked page
gets HTML with the reason, the rule, until when, the request id and a PIN form.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime

from governance.facts import Decision

OVERRIDE_PATH = "/__hearthgate/override"
ERROR_FAMILIES = frozenset({"openai", "anthropic", "gemini", "cohere", "ollama"})
# Services catalogued as OpenAI-compatible whose native endpoints answer in a shape of their
# own: a block there takes that shape (Bedrock's /model/... runtime API, Replicate's API).
NATIVE_ERRORS = {"bedrock": ("/model/", "bedrock"), "replicate": ("/", "replicate")}
_ANTHROPIC_TYPES = {403: "permission_error", 429: "rate_limit_error", 500: "api_error"}
_GEMINI_STATUS = {403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


def wants_html(method: str, accept: str | None) -> bool:
    return method == "GET" and accept is not None and "text/html" in accept


def child_message(decision: Decision, request_id: str) -> str:
    """One readable sentence: the parent's message or the reason, and the request id."""
    lead = decision.message or f"Blocked by hearthgate: {decision.reason}"
    if decision.message:
        lead += f" ({decision.reason})"
    return f"{lead}. Request id {request_id}."


def error_body(api: str | None, decision: Decision, request_id: str) -> dict[str, object]:
    """The error in the shape of the API family *api* (OpenAI's for OpenAI-compatible ones)."""
    message = child_message(decision, request_id)
    status = decision.status
    code = "hearthgate_quota" if status == 429 else "hearthgate_blocked"
    if api == "anthropic":
        return {
            "type": "error",
            "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
        }
    if api == "gemini":
        return {
            "error": {
                "code": status,
                "message": message,
                "status": _GEMINI_STATUS.get(status, "UNKNOWN"),
            }
        }
    if api == "cohere":  # the cohere SDK's ApiError carries the body
        return {"message": message}
    if api == "ollama":  # ollama.ResponseError takes "error" as its text
        return {"error": message}
    if api == "bedrock":  # AWS JSON: boto3 reads "message", the code from x-amzn-errortype
        return {"message": message}
    if api == "replicate":  # problem details: the replicate client raises with "detail"
        title = "Too Many Requests" if status == 429 else "Forbidden"
        return {"title": title, "detail": message, "status": status}
    kind = "rate_limit_exceeded" if status == 429 else "permission_denied"
    return {"error": {"message": message, "type": kind, "code": code}}


def block_headers(decision: Decision, request_id: str, content_type: str) -> dict[str, str]:
    headers = {
        "content-type": content_type,
        "cache-control": "no-store",
        "x-hearthgate-request-id": request_id,
        "x-hearthgate-reason": header_safe(decision.reason),
        "x-should-retry": "false",
    }
    if decision.retry_after is not None:
        headers["retry-after"] = str(decision.retry_after)
    return headers


def json_block(
    api: str | None, decision: Decision, request_id: str
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(error_body(api, decision, request_id)).encode()
    headers = block_headers(decision, request_id, "application/json")
    if api == "bedrock":  # neither is one boto3 retries (given block_status's 400)
        code = (
            "ServiceQuotaExceededException" if decision.status == 429 else "AccessDeniedException"
        )
        headers["x-amzn-errortype"] = code
    return body, headers


def block_status(api: str | None, status: int) -> int:
    """The HTTP status a block answers with. Bedrock reports a quota as 400
    ServiceQuotaExceededException; boto3's default (legacy) retry mode retries every 429."""
    return 400 if api == "bedrock" and status == 429 else status


def html_block(decision: Decision, request_id: str, host: str) -> tuple[bytes, dict[str, str]]:
    until = _until_text(decision.until)
    e = html.escape
    rows = [
        ("Why", decision.reason),
        ("Rule", decision.rule or "—"),
        ("Until", until or "no set time — ask a parent"),
        ("Request id", request_id),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    message = decision.message or "This service is not available right now."
    page = _PAGE.format(
        title="Not right now",
        message=e(message),
        table=table,
        action=e(OVERRIDE_PATH),
        request_id=e(request_id),
        host=e(host),
    )
    return page.encode(), block_headers(decision, request_id, "text/html; charset=utf-8")


def html_pin_again(text: str, request_id: str | None, host: str) -> bytes:
    """The PIN form once more, after a wrong PIN, saying what went wrong."""
    e = html.escape
    page = _PAGE.format(
        title="Not unlocked",
        message=e(text),
        table="",
        action=e(OVERRIDE_PATH),
        request_id=e(request_id or ""),
        host=e(host),
    )
    return page.encode()


def html_notice(title: str, text: str, status_ok: bool) -> bytes:
    e = html.escape
    colour = "#1b7f3b" if status_ok else "#a12622"
    return _NOTICE.format(title=e(title), text=e(text), colour=colour).encode()


def _until_text(until: str | None) -> str | None:
    if not until:
        return None
    try:
        return datetime.fromisoformat(until).strftime("%H:%M on %a %d %b")
    except ValueError:
        return until


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_safe(text: str) -> str:
    """*text* as a header value every HTTP/1 and HTTP/2 client accepts: printable ASCII only.

    A reason can quote what the client sent (a model name with a NUL or a line break, a
    keyword in another script): control characters become spaces, other non-ASCII ``?``.
    """
    return _CONTROL.sub(" ", text.encode("ascii", "replace").decode()[:300]).strip()


_STYLE = """<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:17px/1.5 system-ui,sans-serif;margin:0;background:#f6f4ef;color:#222}
main{max-width:34rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:12px;
box-shadow:0 1px 4px #0002}h1{margin-top:0}th{text-align:left;padding-right:1rem;
vertical-align:top;color:#555}td{word-break:break-word}input,button{font:inherit;
padding:.5rem;margin:.25rem 0}button{background:#2d5b8c;color:#fff;border:0;
border-radius:6px;padding:.5rem 1rem}</style>"""

_PAGE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
    + _STYLE.replace("{", "{{").replace("}", "}}")
    + """</head><body><main>
<h1>{title}</h1><p>{message}</p><table>{table}</table>
<h2>A parent can let this through</h2>
<form method="post" action="{action}">
<input type="hidden" name="request_id" value="{request_id}">
<label>PIN <input name="pin" type="password" inputmode="numeric" autocomplete="off" required>
</label> <button type="submit">Unlock</button></form>
<p><small>hearthgate on {host}</small></p></main></body></html>"""
)

_NOTICE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
    + _STYLE.replace("{", "{{").replace("}", "}}")
    + """</head><body><main>
<h1 style="color:{colour}">{title}</h1><p>{text}</p></main></body></html>"""
)
