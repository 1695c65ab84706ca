"""One SQL layer under the store, for SQLite (embedded, the default) and PostgreSQL (several
gates sharing one database).

The store's modules write each query once, in the common subset of both dialects with ``?``
placeholders; ``dialect`` turns it into PostgreSQL's form (``%s`` placeholders, identity
columns, 64-bit integers) and ``connection`` runs it on either driver (``sqlite3``,
``psycopg`` 3) behind one small interface: ``execute``, ``insert`` (the new row's id),
``transaction`` / ``savepoint``, ``lock`` (a named lock across gates), rows that index by
position and by column name. ``target`` reads ``--database`` URLs.

May import: the standard library and ``psycopg``; nothing of ``proxy`` or ``governance``.
"""
