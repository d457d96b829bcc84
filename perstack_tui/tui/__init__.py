"""The Textual UI (the engine never imports this package)."""

from .app import PerstackApp, Target

__all__ = ["PerstackApp", "Target"]
