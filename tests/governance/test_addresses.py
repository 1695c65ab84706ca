from __future__ import annotations

import pytest

from governance.addresses import normalize_identifier, normalize_ip, normalize_mac


@pytest.mark.parametrize(
    "raw",
    [
        "AA:BB:CC:DD:EE:01",
        "aa-bb-cc-dd-ee-01",
        "aabb.ccdd.ee01",
        " aabbccddee01 ",
        "Aa:bB:cC:dD:eE:01",
    ],
)
def test_mac_spellings(raw: str) -> None:
    assert normalize_mac(raw) == "aa:bb:cc:dd:ee:01"


@pytest.mark.parametrize("raw", ["aa:bb", "gg:bb:cc:dd:ee:01", "", "aa:bb:cc:dd:ee:01:02"])
def test_bad_macs(raw: str) -> None:
    with pytest.raises(ValueError, match="not a MAC"):
        normalize_mac(raw)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        (" 10.0.0.1", "10.0.0.1"),
    ],
)
def test_ip_forms(raw: str, canonical: str) -> None:
    assert normalize_ip(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("AA-BB-CC-DD-EE-01", "aa:bb:cc:dd:ee:01"),
        ("Mom", "mom"),
    ],
)
def test_identifiers(raw: str, canonical: str) -> None:
    assert normalize_identifier(raw) == canonical
