"""The SQLite edge: schema and migrations, the batched writer, runtime state, usage, audit.

Nothing on the request path awaits anything in this package: hooks hand rows to the writer
with ``submit`` (never blocks) and read runtime state from memory that a background task
refreshes from here.

May import: ``governance`` and each other; never the addon, ``admin`` or ``cli``.
"""
