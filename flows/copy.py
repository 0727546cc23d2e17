"""Texter-facing copy: every sentence lives in flows/copy/<language>.toml, by message id.

Templates use `{name}` fields. The engine passes the standard params (org, terms, position,
wait, hours, lines); a missing one is a CopyError naming it. Two conveniences:
- `{terms_line}` is filled from the `fragment_terms` template when `terms` is set, else "".
- with params `named=True`, an id `X` renders `X_named` when that variant exists (the
  operator allows naming the services; rule 3 keeps the default discreet).
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path

LANGUAGES = ("en", "es")
COPY_DIR = Path(__file__).with_name("copy")
NAMED_SUFFIX = "_named"
TERMS_FRAGMENT = "fragment_terms"
_FORMATTER = string.Formatter()
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_MANY_SPACES = re.compile(r"[ \t]{2,}")


class CopyError(ValueError):
    """Unknown language or message id, a missing param, or a malformed copy file."""


@functools.cache  # a template is parsed once, not on every text rendered from it
def template_fields(template: str) -> frozenset[str]:
    """The `{field}` names a template uses. Only plain names are allowed: no attribute
    access, indexing, conversions or format specs, so copy can't reach into objects."""
    names = set()
    for _literal, name, spec, conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not _IDENT.match(name) or spec or conversion:
            raise CopyError(f"bad field {{{name}}} in copy: use plain {{name}} fields only")
        names.add(name)
    return frozenset(names)


def load(directory: Path = COPY_DIR) -> dict[str, dict[str, str]]:
    """Read and check every language file: flat `id = "text"` tables with valid fields."""
    catalog: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        path = directory / f"{language}.toml"
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
        messages: dict[str, str] = {}
        for message_id, text in raw.items():
            if not _IDENT.match(message_id) or not isinstance(text, str):
                raise CopyError(f'{path.name}: {message_id!r} must be an id = "text" entry')
            try:
                template_fields(text)
            except (CopyError, ValueError) as err:
                raise CopyError(f"{path.name}: {message_id}: {err}") from None
            messages[message_id] = text
        catalog[language] = messages
    return catalog


_CATALOG = load()


def message_ids(language: str) -> set[str]:
    """Every message id defined for a language (including `_named` variants)."""
    return set(_messages(language))


@functools.cache
def fields_of(message_id: str, language: str) -> frozenset[str]:
    """The params a message may use (its `_named` variant's too); empty for an unknown id
    (render then says what is wrong)."""
    messages = _messages(language)
    variants = (message_id, message_id + NAMED_SUFFIX)
    return frozenset().union(*(template_fields(messages[v]) for v in variants if v in messages))


def template(message_id: str, language: str) -> str:
    """The raw template of one message (for tests and the dashboard's copy review)."""
    messages = _messages(language)
    if message_id not in messages:
        raise CopyError(f"no copy {message_id!r} in {language}")
    return messages[message_id]


def render(message_id: str, language: str, params: Mapping[str, object]) -> str:
    """The text of one message in one language, with its params filled in."""
    messages = _messages(language)
    chosen = message_id
    if params.get("named") is True and message_id + NAMED_SUFFIX in messages:
        chosen = message_id + NAMED_SUFFIX
    if chosen not in messages:
        raise CopyError(f"no copy {message_id!r} in {language}")
    text = messages[chosen]
    values: dict[str, object] = {}
    for name in template_fields(text):
        if name == "terms_line":
            values[name] = _terms_line(language, params)
        elif name in params:
            values[name] = params[name]
        else:
            raise CopyError(f"copy {chosen!r} ({language}) needs param {name!r}")
    rendered = text.format(**values)
    # Optional fragments leave doubled spaces behind; tidy them line by line.
    lines = (_MANY_SPACES.sub(" ", line).strip() for line in rendered.split("\n"))
    return "\n".join(lines).strip()


def _terms_line(language: str, params: Mapping[str, object]) -> str:
    if "terms" not in params:
        raise CopyError("copy needs param 'terms' (the terms URL, or \"\" for none)")
    terms = params["terms"]
    if not terms:
        return ""
    return _CATALOG[language][TERMS_FRAGMENT].format(terms=terms)


def _messages(language: str) -> dict[str, str]:
    try:
        return _CATALOG[language]
    except KeyError:
        raise CopyError(f"unknown language {language!r}; expected one of {LANGUAGES}") from None
