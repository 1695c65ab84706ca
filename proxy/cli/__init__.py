"""The ``hearthgate`` command: one module per group of subcommands.

``main`` parses the command line and dispatches (the console script is ``proxy.cli.main:main``);
``common`` holds shared options and output; ``rules``, ``log`` (log, stats, explain) and
``state`` (emergency, allow, unlock, override, pin, consent, admin) hold the subcommands.

May import: anything in ``governance`` and ``proxy``; nothing imports ``cli``.
"""
