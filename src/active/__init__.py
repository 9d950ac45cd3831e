"""ACTIVE: sperm and impurity detection in microscopic semen videos."""

__version__ = "0.1.0"
