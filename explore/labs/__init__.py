"""The labs. Importing this package registers every built-in lab."""
from explore.labs import nlse  # noqa: F401
