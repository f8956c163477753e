"""The labs. Importing this package registers every built-in lab."""
from explore.labs import nlse  # noqa: F401
from explore.labs import kelvin_helmholtz  # noqa: F401
from explore.labs import reaction_diffusion  # noqa: F401
from explore.labs import diffusion  # noqa: F401
