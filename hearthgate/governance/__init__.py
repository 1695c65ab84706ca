"""The decisions: pure functions of (facts, rules snapshot, runtime state, now).

Nothing in this package reads the clock, touches the network or the disk, or imports
mitmproxy — except ``store.py``, the SQLite edge that the proxy feeds and reads.
"""
