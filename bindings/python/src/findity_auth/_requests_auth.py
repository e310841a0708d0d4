"""``FindityAuth``: bearer tokens for ``requests`` (or any HTTP client), retrying once on 401.

This module does not import ``requests``: ``requests`` only needs an auth object to be a
callable that takes and returns a ``PreparedRequest`` (duck typing, like ``AuthBase``).
"""

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, overload

from . import _api

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from requests import PreparedRequest, Response

__all__ = ["FindityAuth"]


class FindityAuth:
    """Findity bearer-token auth for ``requests``, and a header source for anything else.

    >>> auth = FindityAuth("production", "my-client-id", "my-secret")
    >>> requests.get("https://api.findity.com/api/v1/me", auth=auth)   # doctest: +SKIP
    >>> auth()                        # {"Authorization": "Bearer ..."} for other clients

    With ``user_id`` the token is that user's (:func:`findity_auth.user_token`), otherwise the
    organization's (:func:`findity_auth.get_token`). Tokens come from libfindity's process-wide
    cache, so creating many ``FindityAuth`` objects is cheap and they share tokens.

    When the server answers 401, that token is invalidated (unless another request renewed it
    already: :func:`findity_auth.invalidate_token`), a new one is fetched and the request
    is sent once more (like ``requests.auth.HTTPDigestAuth``); a second 401 is returned as is.
    A streamed body that cannot be rewound is not resent.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        user_id: Optional[str] = None,
    ) -> None:
        for name, value in (("base_url", base_url), ("client_id", client_id)):
            if not isinstance(value, str):
                raise TypeError("%s must be str, not %s" % (name, type(value).__name__))
        if not isinstance(client_secret, str):
            raise TypeError("client_secret must be str, not %s" % type(client_secret).__name__)
        if user_id is not None and not isinstance(user_id, str):
            raise TypeError("user_id must be str or None, not %s" % type(user_id).__name__)
        self.base_url = base_url
        self.client_id = client_id
        self.user_id = user_id
        self._client_secret = client_secret

    def __repr__(self) -> str:
        # Never the secret.
        return "FindityAuth(base_url=%r, client_id=%r, user_id=%r)" % (
            self.base_url,
            self.client_id,
            self.user_id,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FindityAuth):
            return NotImplemented
        return (self.base_url, self.client_id, self._client_secret, self.user_id) == (
            other.base_url,
            other.client_id,
            other._client_secret,
            other.user_id,
        )

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]  # mutable attributes, like requests' auths

    def token(self) -> str:
        """The current access token (cached by libfindity; fetched when needed)."""
        if self.user_id is None:
            return _api.get_token(self.base_url, self.client_id, self._client_secret)
        return _api.user_token(self.base_url, self.client_id, self._client_secret, self.user_id)

    def invalidate(self) -> None:
        """Forget the cached token, so the next :meth:`token` gets a new one."""
        _api.invalidate(self.base_url, self.client_id, self.user_id)

    def headers(self) -> Dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return {"Authorization": "Bearer " + self.token()}

    @overload
    def __call__(self) -> Dict[str, str]: ...

    @overload
    def __call__(self, r: "PreparedRequest") -> "PreparedRequest": ...

    def __call__(self, r: Any = None) -> Any:
        """With no argument: :meth:`headers`. With a ``requests.PreparedRequest``: add the
        header and a response hook that retries once on 401 (the ``AuthBase`` protocol)."""
        if r is None:
            return self.headers()
        token = self.token()
        r.headers["Authorization"] = "Bearer " + token
        r.register_hook("response", self._retry_on_401(token))
        return r

    def _fresh_token(self, rejected: str) -> str:
        """A token other than ``rejected``: the library drops ``rejected`` only if it is still
        the cached one (findity_invalidate_token), so N requests rejected together with the
        same token renew it once; the others get the renewed token from the cache."""
        _api.invalidate_token(self.base_url, self.client_id, rejected, self.user_id)
        return self.token()

    def _retry_on_401(self, sent: str) -> Callable[..., "Response"]:
        def hook(r: "Response", **kwargs: Any) -> "Response":
            if r.status_code != 401:
                return r
            request: Any = r.request
            if request.headers.get("Authorization") != "Bearer " + sent:
                return r  # not our header (changed by someone else): leave it alone
            token = self._fresh_token(sent)
            if not _rewind_body(request):
                return r

            from requests import cookies

            extract_cookies: Callable[..., None] = cookies.extract_cookies_to_jar
            # Release the connection of the 401 answer before sending again.
            r.content  # noqa: B018
            r.close()
            prep: Any = request.copy()
            extract_cookies(prep._cookies, request, r.raw)
            prep.prepare_cookies(prep._cookies)
            prep.headers["Authorization"] = "Bearer " + token
            retried = r.connection.send(prep, **kwargs)
            retried.history.append(r)
            retried.request = prep
            return retried

        return hook


def _rewind_body(request: Any) -> bool:
    """Make the body ready to send again; False when it cannot be (a generator, say)."""
    body = request.body
    if body is None or isinstance(body, (bytes, str)):
        return True
    position = getattr(request, "_body_position", None)
    if not isinstance(position, int):
        return False
    try:
        body.seek(position)
    except (AttributeError, OSError, ValueError):
        return False
    return True
