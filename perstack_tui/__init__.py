"""perstack-tui: browse and live-tail what the Perstack agent runtime persists."""

__version__ = "0.1.0"
