"""The ``hearthgate`` command: one module per group of subcommands.

``main`` parses the command line and dispatches (the console script is ``proxy.cli.main:main``);
``common`` holds shared options and output; ``rules``, ``log`` (log, stats, explain) and
``state`` (emergency, allow, unlock, override, pin, consent, admin) hold the subcommands.
``lean_mitmproxy`` is what ``run`` does first: mitmproxy.addons without its
``__init__``, which imports every default addon.

Every command but ``run`` answers within 300 ms, so parsing must stay cheap: a CLI module
imports at its top only the standard library's light parts and ``proxy.cli.common``; each
handler imports what it needs (the rules loader, the store, mitmproxy ...) in its own body,
and ``common.guarded`` imports the rules loader and the database only when a command runs.
``hearthgate --help`` therefore builds every parser without loading pydantic, SQLite code,
mitmproxy or FastAPI. A new group of subcommands: a module with ``add(sub, common)`` that
registers its parsers (``set_defaults(handler=...)``), listed in ``main.build_parser``.
``tests/proxy/cli/test_imports.py`` walks every subcommand of the parser, runs it in a fresh
interpreter and fails when one loads a module it should not.

May import: anything in ``governance`` and ``proxy``; nothing imports ``cli``.
"""
