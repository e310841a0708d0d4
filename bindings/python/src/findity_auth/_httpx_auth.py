"""``FindityHttpxAuth``: bearer tokens for ``httpx.Client`` and ``httpx.AsyncClient``.

Imported only when ``findity_auth.FindityHttpxAuth`` is first used (``findity_auth`` itself
never imports httpx), since the class derives from ``httpx.Auth``.
"""

from typing import AsyncGenerator, Generator, Optional

import httpx

from . import _api
from ._async import aget_token, aget_user_token
from ._requests_auth import FindityAuth

__all__ = ["FindityHttpxAuth"]


class FindityHttpxAuth(FindityAuth, httpx.Auth):
    """Findity bearer-token auth for httpx, sync and async.

    >>> auth = FindityHttpxAuth("production", "my-client-id", "my-secret")
    >>> httpx.get("https://expense.findity.com/api/v1/me", auth=auth)            # doctest: +SKIP
    >>> async with httpx.AsyncClient(auth=auth) as client:                       # doctest: +SKIP
    ...     await client.get("https://expense.findity.com/api/v1/me")

    The same rules as :class:`FindityAuth` (which it extends: ``token()``, ``headers()``,
    calling it with no argument): the organization token, or ``user_id``'s. When the server
    answers 401 to a token from this class, that token is invalidated unless another request
    renewed it already (:func:`findity_auth.invalidate_token`: N requests rejected together
    renew once), and the request is sent once more with the new token; a second 401 is
    returned as is. Request bodies are read before the first send so they can be resent
    (``requires_request_body``).

    With ``httpx.AsyncClient`` the token comes from :func:`findity_auth.aget_token`: a cached
    token costs no thread hop, and the loop never waits for a token request.
    """

    requires_request_body = True

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = "Bearer " + token
        response = yield request
        if self._rejected(request, response, token):
            request.headers["Authorization"] = "Bearer " + self._fresh_token(token)
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._atoken()
        request.headers["Authorization"] = "Bearer " + token
        response = yield request
        if self._rejected(request, response, token):
            # Never blocks: drops the cached token only if it is still this one.
            _api.invalidate_token(self.base_url, self.client_id, token, self.user_id)
            request.headers["Authorization"] = "Bearer " + await self._atoken()
            yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        return self.sync_auth_flow(request)  # only used by httpx through the two flows above

    async def _atoken(self) -> str:
        if self.user_id is None:
            return await aget_token(self.base_url, self.client_id, self._client_secret)
        return await aget_user_token(
            self.base_url, self.client_id, self._client_secret, self.user_id
        )

    @staticmethod
    def _rejected(request: httpx.Request, response: Optional[httpx.Response], token: str) -> bool:
        # Our header, still as we set it, answered with 401.
        return (
            response is not None
            and response.status_code == 401
            and request.headers.get("Authorization") == "Bearer " + token
        )

    def __repr__(self) -> str:
        return "FindityHttpxAuth(base_url=%r, client_id=%r, user_id=%r)" % (
            self.base_url,
            self.client_id,
            self.user_id,
        )
