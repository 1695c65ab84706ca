"""The rules file on disk: YAML in, a compiled ``governance`` snapshot out.

``loader`` reads and validates the file, reporting errors with line and column (``problems``,
cheap to import); ``cache`` keeps the compiled snapshot in the state directory for the CLI;
``lint``
warns about rules that cannot work as written; ``explain`` runs the pipeline for a
hypothetical request, stage by stage (``rules explain``, the API, the dashboard).

May import: ``governance``, ``proxy.catalog``, ``proxy.identity`` and each other; never the
addon, ``store``, ``admin`` or ``cli``.
"""
