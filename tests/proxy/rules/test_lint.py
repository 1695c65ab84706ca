from __future__ import annotations

from proxy.rules.lint import warnings_for
from tests.governance.helpers import snapshot


def test_warns_when_a_body_policy_can_never_apply_to_an_sni_device() -> None:
    snap = snapshot("""
policies:
  - {name: small-models, when: {groups: [kids], models_not: ["*mini*"]}}
  - {name: by-provider, when: {groups: [kids], providers: [anthropic]}}
overrides: {master_pin: "scrypt$16384$8$1$AAAA$BBBB"}
""")
    [warning] = warnings_for(snap)
    assert "small-models" in warning and "bob-tablet" in warning
    assert "alice-laptop" not in warning


def test_warns_without_a_master_pin() -> None:
    assert any("master_pin" in w for w in warnings_for(snapshot()))
