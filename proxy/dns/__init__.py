"""DNS mode (``hearthgate run --dns``): the gate's own DNS server and the listeners DNS sends
connections to, plus the records that do the same job on a DNS server a household already runs.

``names`` (the DoH canary and public DoH resolvers) and ``records`` (``hearthgate dns records``)
are data and text only: they import the catalog and nothing of mitmproxy, so the CLI stays
light. ``config`` (the settings of ``--dns``) is plain data too. ``upstream`` (parsing, the loop
check, the gate's own look-ups) and ``local`` (the gate's address toward a client) use the
standard library and mitmproxy's DNS message type. ``server`` (the DNS server) and
``listeners`` (the connections DNS sends to the gate) are the mitmproxy addons.

May import: ``governance``, ``proxy.catalog`` and the wire modules below ``service``
(``proxy.gate``, ``proxy.flowfacts``, ``proxy.metrics``); never ``admin``, ``cli`` or
``service``, which import this room.
"""
