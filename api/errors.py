"""The closed table of public error codes, and the error body Taskcluster clients expect.

Every failure leaves the API as ``{code, message, requestInfo}`` with the
status below. The docstring of each class is its default message. Anything
else that escapes a handler becomes an ``InternalServerError`` that says
nothing about its cause (the cause goes to the log, with an id to find it).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The request failed."""

    status = 500

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.details = details
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return type(self).__name__


class MalformedPayload(ApiError):
    """The request body is not valid JSON."""

    status = 400


class InvalidRequestArguments(ApiError):
    """A URL parameter or query argument is not valid."""

    status = 400


class InputValidationError(ApiError):
    """The request body does not match its schema."""

    status = 400


class InputError(ApiError):
    """The request is well-formed but cannot be carried out as given."""

    status = 400


class DenylistedAddress(ApiError):
    """The address is on the notify service's denylist; nothing is sent to it."""

    status = 400


class AuthenticationFailed(ApiError):
    """The request could not be authenticated."""

    status = 401


class InsufficientScopes(ApiError):
    """The credentials do not have the scopes this request needs."""

    status = 403


class ResourceNotFound(ApiError):
    """The resource does not exist."""

    status = 404


class NoMatchingMethod(ApiError):
    """None of the methods the caller proposed is available."""

    status = 406


class RequestConflict(ApiError):
    """The request conflicts with the current state of the resource."""

    status = 409


class ResourceExpired(ApiError):
    """The resource has expired."""

    status = 410


class RequestTimeout(ApiError):
    """The request did not arrive in time."""

    status = 408


class InputTooLarge(ApiError):
    """The request body is too large."""

    status = 413


class ContentUnavailable(ApiError):
    """The content exists but cannot be delivered."""

    status = 424


class InternalServerError(ApiError):
    """Internal server error; the incident was logged with the id given below."""

    status = 500


class ServiceUnavailable(ApiError):
    """The service cannot reach its database right now; retry the request."""

    status = 503


ERROR_CODES: dict[str, type[ApiError]] = {
    cls.__name__: cls
    for cls in (
        MalformedPayload,
        InvalidRequestArguments,
        InputValidationError,
        InputError,
        DenylistedAddress,
        AuthenticationFailed,
        InsufficientScopes,
        ResourceNotFound,
        NoMatchingMethod,
        RequestConflict,
        ResourceExpired,
        RequestTimeout,
        InputTooLarge,
        ContentUnavailable,
        InternalServerError,
        ServiceUnavailable,
    )
}
