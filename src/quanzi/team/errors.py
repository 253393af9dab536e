"""Errors of the team domain, each mapped to one HTTP status."""

from __future__ import annotations

from quanzi.kit.errors import QuanziError


class NotAllowed(QuanziError):
    """The signed-in user's role may not do this here."""

    status_code = 403


class LoginFailed(QuanziError):
    status_code = 401


class LoginThrottled(QuanziError):
    """Too many failed logins for an email or from an address; retry after `retry_after` s."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
