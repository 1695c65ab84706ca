"""What the client received is what the log says; no control character reaches a header."""

from __future__ import annotations

import pytest
from mitmproxy import flow as mflow
from mitmproxy.test import tflow, tutils

from governance.facts import Action, Decision, Stage
from proxy.framing import client_status
from proxy.responses import block_headers, header_safe


@pytest.mark.parametrize("text", ["gpt-4o\x00", "a\r\nx-evil: 1", "tab\there", "\x7fdel", "ünï"])
def test_header_values_are_printable_ascii(text: str) -> None:
    value = header_safe(f"model {text} is not allowed")
    assert value.isascii() and value.isprintable() and "\n" not in value
    decision = Decision(Stage.POLICY, Action.BLOCK, f"model {text} is not allowed")
    assert block_headers(decision, "id", "application/json")["x-hearthgate-reason"] == value


def _failed(**changes: object) -> mflow.Flow:
    f = tflow.tflow()
    f.response = None
    f.error = mflow.Error("boom")
    for name, value in changes.items():
        if name == "headers":
            f.request.headers.update(value)  # type: ignore[arg-type]
        else:
            setattr(f.request, name, value)
    return f


def test_a_request_mitmproxy_cannot_frame_got_400() -> None:
    both = {"content-length": "5", "transfer-encoding": "chunked"}
    assert client_status(_failed(headers=both)) == 400  # type: ignore[arg-type]
    assert client_status(_failed(headers={"content-length": "abc"})) == 400  # type: ignore[arg-type]


def test_other_failures() -> None:
    assert client_status(_failed()) == 502  # type: ignore[arg-type]  # complete, upstream failed
    assert client_status(_failed(timestamp_end=None)) is None  # type: ignore[arg-type]
    gone = _failed()
    gone.error = mflow.Error("Client disconnected.")
    assert client_status(gone) is None  # type: ignore[arg-type]
    answered = tflow.tflow(resp=tutils.tresp(status_code=403))
    assert client_status(answered) == 403
