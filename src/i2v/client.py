"""``from i2v.client import Client``: the client of ``i2v serve`` (see ``i2v.server.client``)."""

from .server.client import Client, ServerError, ServerUnreachableError

__all__ = ["Client", "ServerError", "ServerUnreachableError"]
