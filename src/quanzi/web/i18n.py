"""The console's languages: zh-CN first, English as the switch.

Messages are written in English in the code and templates (`_("Groups")`) and translated by
gettext catalogs in `web/locale/zh_CN/*.po` (one file per console area, so areas never edit
the same file), read with Babel at start-up: no compile step, nothing generated committed.
Numbers and dates are formatted with Babel's CLDR data for the active locale.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
LOCALE_DIR = Path(__file__).parent / "locale"
current_locale: ContextVar[str] = ContextVar("quanzi_locale", default=DEFAULT_LOCALE)


@lru_cache(maxsize=4)
def catalog(locale: str) -> dict[str, str]:
    """msgid → translation for `locale` (English needs none)."""
    if locale == "en":
        return {}
    folder = LOCALE_DIR / locale.replace("-", "_")
    messages: dict[str, str] = {}
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=locale.replace("-", "_")):
                if message.id and message.string and not message.fuzzy:
                    key = message.id if isinstance(message.id, str) else message.id[0]
                    text = message.string if isinstance(message.string, str) else message.string[0]
                    messages[key] = text
    return messages


def gettext(message: str) -> str:
    return catalog(current_locale.get()).get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    # Chinese has one form; English picks by n.
    if current_locale.get() == "en":
        return singular if n == 1 else plural
    return catalog(current_locale.get()).get(singular, singular)


def translate(message: str, **params: Any) -> str:
    """Translate, then fill %(name)s placeholders."""
    text = gettext(message)
    return text % params if params else text


# Service errors are English sentences with values in them ("email: 'x' is not an email
# address"); those whose shape is in a catalog as a pattern are shown translated.
_PATTERN_RE = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=4)
def _error_patterns(locale: str) -> list[tuple[re.Pattern[str], str]]:
    out = []
    for msgid, msgstr in catalog(locale).items():
        if "%(" in msgid:
            parts = _PATTERN_RE.split(msgid)
            regex = "".join(f"(?P<{p}>.+?)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
            out.append((re.compile(f"^{regex}$", re.S), msgstr))
    return out


def translate_error(message: str) -> str:
    """A service error in the user's language where the catalog knows its shape."""
    locale = current_locale.get()
    exact = catalog(locale).get(message)
    if exact:
        return exact
    for regex, msgstr in _error_patterns(locale):
        m = regex.match(message)
        if m:
            return msgstr % m.groupdict()
    return message


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    fmt = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=fmt, locale=_babel_locale())


def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    fmt = "0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(value, format=fmt, locale=_babel_locale())


def money(fen: int | None) -> str:
    if fen is None:
        return "—"
    return "¥" + format_decimal(fen / 100, format="#,##0.00", locale=_babel_locale())


def _babel_locale() -> Locale:
    return Locale.parse(current_locale.get().replace("-", "_"))
