"""The server's outer guard, an ASGI middleware that runs before any request body is read:
the bearer token on the API routes, and the body size (a declared ``Content-Length`` over the
cap is refused at once; a chunked body is counted as it arrives and cut off past the cap)."""

from __future__ import annotations

import json
import secrets


class BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app, max_body_bytes: int, token: str | None, protected: tuple[str, ...] = ("/v1/", "/metrics")):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.token = token
        self.protected = protected

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        if self.token and path.startswith(self.protected):
            given = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return await _reply(send, 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"})
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return await _reply(send, 413, f"request body is {int(length)} bytes; the limit is {self.max_body_bytes}")
        received, too_large = 0, False

        async def counted_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            if not too_large:  # once the body is cut off, the app's own answer (a parse error) is dropped
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            pass
        if too_large:
            await _reply(send, 413, f"request body is over the limit of {self.max_body_bytes} bytes")


async def _reply(send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
