"""The command-line tools, also run as ``taxdet <verb>``."""
