"""The weekly report per child, and sending it (e-mail, ntfy, Gotify, a webhook).

Lives here: ``weekly`` (the report from the decision log, the usage counters and the alerts,
each figure beside the week before), ``mail`` (SMTP with STARTTLS), ``schedule`` (when the
rules say the report goes out, and sending it once per week).

May import: ``governance``, ``proxy.store``, ``proxy.catalog``, ``proxy.notify`` and the
standard library. Never the addon, the gate, the admin app or the CLI.
"""
