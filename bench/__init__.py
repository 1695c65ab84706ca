"""``make bench``: hearthgate's performance targets (SPEC section 9), measured in one run.

``python -m bench.run [--quick]`` prints one report and writes it to ``bench/results.md``.
Everything runs on loopback: a fake LLM upstream (``upstream.py``), bare ``mitmdump`` and
``hearthgate run`` as subprocesses, and a load generator in the bench process itself.
"""
