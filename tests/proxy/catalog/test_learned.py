"""What the gate learns from its own connections to catalog hosts."""

from __future__ import annotations

from proxy.catalog import learned
from proxy.catalog.learned import ServiceHints


def test_addresses_are_normalised_and_keyed_with_their_port() -> None:
    hints = ServiceHints()
    hints.learn_address("2001:DB8::1", 443, "openai")
    hints.learn_address("not an address", 443, "openai")
    assert hints.provider_at("2001:db8:0::1", 443) == "openai"
    assert hints.provider_at("[2001:db8::1]", 443) == "openai"
    assert hints.provider_at("2001:db8::1", 80) is None
    assert hints.provider_at("not an address", 443) is None


def test_certificate_names_cover_exact_names_and_one_label_wildcards() -> None:
    hints = ServiceHints()
    hints.learn_names(["gemini.google.com", "*.google.com", "*.com", "192.0.2.1", ""], "gem")
    assert hints.sibling_of("WWW.Google.com.") == "gem"
    assert hints.sibling_of("a.b.google.com") is None  # a wildcard covers one label
    assert hints.sibling_of("example.com") is None  # "*.com" is never learned
    assert hints.sibling_of("192.0.2.1") is None
    assert hints.sibling_of(None) is None


def test_memory_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(learned, "LIMIT", 3)
    hints = ServiceHints()
    for i in range(10):
        hints.learn_address(f"192.0.2.{i}", 443, "openai")
    assert hints.provider_at("192.0.2.9", 443) == "openai"
    assert hints.provider_at("192.0.2.0", 443) is None
