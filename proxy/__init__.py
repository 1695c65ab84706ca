"""Every edge: the wire, the disk, a person, a process.

This package itself holds the mitmproxy addon and what it needs on the wire: the hooks
(``addon``, ``sni_gate``), the per-process gate that ties the pipeline to metrics and the
decision log (``gate``), facts read from a flow (``flowfacts``), who is asking
(``identity``), block answers (``responses``), body decoding (``decoding``), the lean addon
chain and hook dispatch (``chain``, ``hook_table``), the in-memory rules and state
(``runtime``), metrics objects (``metrics``), outgoing notifications (``notify``), the CA
(``ca``) and the running service that starts it all (``service``).

Rooms:
  ``catalog/``  the LLM services as data, request and usage parsing per API family, PAC;
  ``rules/``    the rules file on disk: loading with line numbers, lint, ``explain``;
  ``store/``    SQLite: schema, batched decision-log writer, runtime state, audit;
  ``admin/``    the HTTP API, its auth, the dashboard and the ``/metrics`` endpoint;
  ``dns/``      DNS mode: the gate's DNS server, the listeners DNS sends connections to,
                records for a household's own DNS server;
  ``cli/``      the ``hearthgate`` command.

May import: ``governance`` and anything else. Within ``proxy`` the rooms import downwards
only: ``cli`` -> ``service`` -> ``admin``, ``dns`` -> (the wire modules) -> ``store``, ``rules``,
``catalog``; ``catalog``, ``rules`` and ``store`` never import the wire modules, ``admin``
or ``cli``. ``tests/test_layout.py`` fails on any import cycle.
"""
