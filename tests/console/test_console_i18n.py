"""Every message the console shows has a zh-CN translation; catalogs are well-formed."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from quanzi.web import i18n

WEB = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "translate": None}


def _used_msgids() -> dict[str, str]:
    """msgid → where it is used, from the templates (Jinja2) and the console's Python."""
    used: dict[str, str] = {}
    method_map = [("templates/**.html", "jinja2"), ("console/**.py", "python"), ("*.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True"}}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(WEB), method_map=method_map, options_map=options, keywords=KEYWORDS
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            used.setdefault(msgid, f"{filename}:{lineno}")
    return used


def test_every_console_message_has_a_chinese_translation() -> None:
    i18n.catalog.cache_clear()
    zh = i18n.catalog("zh-CN")
    used = _used_msgids()
    assert len(used) > 30, "the extractor found too few messages: is the method map right?"
    missing = sorted(f"{where}: {msgid!r}" for msgid, where in used.items() if msgid not in zh)
    assert not missing, "untranslated (add them to web/locale/zh_CN/<area>.po):\n" + "\n".join(
        missing
    )


def test_catalog_files_do_not_define_a_message_twice() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for po in sorted((WEB / "locale" / "zh_CN").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh):
                if not message.id:
                    continue
                key = message.id if isinstance(message.id, str) else message.id[0]
                if key in seen and seen[key] != po.name:
                    clashes.append(f"{key!r}: {seen[key]} and {po.name}")
                seen[key] = po.name
    assert not clashes, "\n".join(clashes)


def test_placeholders_survive_translation() -> None:
    import re

    pattern = re.compile(r"%\((\w+)\)s")
    bad = [
        msgid
        for msgid, text in i18n.catalog("zh-CN").items()
        if set(pattern.findall(msgid)) != set(pattern.findall(text))
    ]
    assert not bad, bad


def test_service_errors_are_translated_by_their_shape() -> None:
    token = i18n.current_locale.set("zh-CN")
    try:
        assert (
            i18n.translate_error("email: 'x@' is not an email address")
            == "邮箱：'x@' 不是有效的邮箱地址"
        )
        # Unknown shapes stay as they are rather than disappear.
        assert i18n.translate_error("something new") == "something new"
    finally:
        i18n.current_locale.reset(token)


def test_numbers_follow_the_locale() -> None:
    token = i18n.current_locale.set("en")
    try:
        assert i18n.number(1234567) == "1,234,567"
        assert i18n.money(123456) == "¥1,234.56"
        assert i18n.percent(0.1234) == "12.3%"
        assert i18n.number(None) == "—"
    finally:
        i18n.current_locale.reset(token)
