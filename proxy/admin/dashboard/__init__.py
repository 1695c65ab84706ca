"""The parent dashboard: server-rendered HTML pages on the admin port.

``routes`` mounts the pages; ``session`` signs parents in (server-side sessions, CSRF);
``data`` reads what the pages show; ``home``, ``decisions``, ``devices`` and ``rules`` render
one page each; ``actions`` handles the forms; ``html`` and ``charts`` are the building
blocks; ``static/`` holds the CSS and JS.

May import: ``governance``, ``proxy.store``, ``proxy.rules``, ``proxy.admin.auth`` and
``proxy.gate``; never ``proxy.cli``.
"""
