"""The admin port: the HTTP API, its token auth, the parent dashboard, ``/metrics``.

``server`` builds the FastAPI app and its uvicorn server (``/healthz``, ``/metrics``,
``/proxy.pac``); ``api`` the ``/api/governance/`` routes; ``auth`` bearer tokens and the
failure throttle; ``models`` the request bodies; ``dashboard/`` the HTML pages; ``sockets``
the listening socket, bound before the app is loaded.

May import: ``governance``, ``proxy.store``, ``proxy.rules``, ``proxy.catalog`` and the
``proxy.gate`` it serves; never ``proxy.cli`` or ``proxy.service``.
"""
