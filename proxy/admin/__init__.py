"""The admin port: the HTTP API, its token auth, the parent dashboard, ``/metrics``.

``server`` builds the FastAPI app and its uvicorn server (``/healthz``, ``/metrics``,
``/proxy.pac``); ``api`` the ``/api/governance/`` routes; ``auth`` bearer tokens and the
failure throttle; ``models`` the request bodies; ``dashboard/`` the HTML pages; ``front``
its socket, bound first, and the app loaded on first use.

May import: ``governance``, ``proxy.store``, ``proxy.rules``, ``proxy.catalog`` and the
``proxy.gate`` it serves; never ``proxy.cli`` or ``proxy.service``.
"""
