"""Errors shared by every domain; each maps to one HTTP status."""

from __future__ import annotations


class QuanziError(Exception):
    """Base of the errors a user can cause; the message says what was wrong and where."""

    status_code = 400


class NotFound(QuanziError):
    status_code = 404


class InvalidParameter(QuanziError):
    status_code = 400
