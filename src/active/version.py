"""The package's version, in a module of its own so that any layer can record it (the analysis
writes it into its reports) without importing the package's lazy front door, ``active``, which
reaches up to inference and analysis. Keep it equal to ``version`` in pyproject.toml."""

__version__ = "0.1.0"
