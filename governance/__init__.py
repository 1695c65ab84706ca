"""The decisions: pure functions of (facts, rules snapshot, runtime state, now).

Lives here: the request facts and decisions (``facts``), the ordered pipeline (``pipeline``),
one module per stage (emergency, allowlist, overrides, time rules, policies, quotas), the
rules-file model (``schema``) and its compiled snapshot (``snapshot``), prompt matching
(``pii``, ``prompt_regex``) and the error tree (``errors``).

May import: the standard library's pure parts, pydantic and each other. Never ``proxy``,
mitmproxy, sqlite, the network or the clock: time is always passed in
(``tests/test_layout.py`` enforces this).
"""
