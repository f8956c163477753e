"""The gallery index (``panel serve apps/*.py``): one card per registered lab."""
from explore.ui import gallery

gallery(prefix="./").servable(title="Explore")
