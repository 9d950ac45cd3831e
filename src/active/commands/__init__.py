"""The subcommands of ``active``, by area: each module registers its parsers on the
command line (``register``) and holds the ``cmd_*`` functions they call; every function parses
nothing itself and calls one library function (what the tests call)."""
