"""The project's error types.

Like h11, we split what went wrong by whose fault it is:

* ``RemoteProtocolError`` -- the peer sent bytes we cannot frame or parse. The
  message names the tag, the offset in the stream and the reason. The decoder
  itself does not raise it: it returns ``BadBytes``, whose ``error()`` is this,
  for callers that raise. A server answers it by closing that one connection
  (without a length prefix there is no way to resynchronise).
* ``LocalProtocolError`` -- *we* tried to build a packet that LGMP cannot carry
  (a name over 255 bytes, a non-ASCII character, 55 occupancy entries...). The
  packet raises it where it is built, naming the field.
* ``RuleError`` -- a well-formed action that the game rules do not allow now
  (not your turn, an answer that does not match the card...). The engine raises
  it before changing anything; the room layer turns it into "ignored, resync,
  strike".

Anything else escaping the codec or the engine is a bug.
"""

from __future__ import annotations


class LGMPError(Exception):
    """Base class of every error the project raises on purpose."""


class ProtocolError(LGMPError):
    """Bytes that are not LGMP v1.0."""


class RemoteProtocolError(ProtocolError):
    """The peer's bytes cannot be framed or parsed."""

    def __init__(self, reason: str, *, tag: str | None = None, offset: int | None = None):
        self.reason = reason
        self.tag = tag
        self.offset = offset
        where = []
        if tag is not None:
            where.append(f"tag {tag}")
        if offset is not None:
            where.append(f"stream offset {offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + reason)


class LocalProtocolError(ProtocolError):
    """We were asked to build a packet LGMP cannot carry."""


class RuleError(LGMPError):
    """A well-formed action the game rules do not allow now."""
