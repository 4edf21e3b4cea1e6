"""LGMP v1.0: the Let's Go Marketing Protocol server, codec and game engine."""

__version__ = "0.1.0"
