"""Action rules and what they do with a find (owned by the actions work; see ``engine``).

Contract::

    taken = amparo.actions.handle(content, media=bytes_or_path_or_None)   # list of actions taken
"""

from amparo.actions.engine import Actioner

__all__ = ["Actioner"]
