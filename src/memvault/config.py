"""Where memvault keeps things and how URLs are read: ``MEMVAULT_HOME`` (default ``~/.memvault``), ``MEMVAULT_URL``
(overrides the default store, ``sqlite:///$MEMVAULT_HOME/memvault.db``), masking passwords, and URL paths/options.
No backend is imported here (backends and the spool import this module)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from memvault.errors import InvalidURL


def memvault_home() -> Path:
    return Path(os.environ.get("MEMVAULT_HOME") or "~/.memvault").expanduser()


def default_url() -> str:
    """``MEMVAULT_URL`` if set, else ``sqlite:///`` + ``$MEMVAULT_HOME/memvault.db``."""
    return os.environ.get("MEMVAULT_URL") or f"sqlite:///{memvault_home() / 'memvault.db'}"


def mask_url(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***`` (a raw ``@`` inside the password included)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    at = netloc.rfind("@")
    if at < 0 or ":" not in netloc[:at]:
        return url
    user = netloc[:at].split(":", 1)[0]
    return f"{scheme}://{user}:***@{netloc[at + 1 :]}{tail}"


def file_path(url: str) -> Path:
    """The filesystem path in ``sqlite:///rel.db``, ``sqlite:////abs.db`` (SQLAlchemy style) or ``file:///abs``."""
    rest = url.split("://", 1)[1]
    rest = rest.split("?", 1)[0]
    if url.lower().startswith("sqlite"):
        if not rest.startswith("/"):
            raise InvalidURL(f"{url!r}: write sqlite:///relative.db or sqlite:////absolute/path.db")
        rest = rest[1:]
        if not rest:
            raise InvalidURL(f"{url!r} names no database file")
    elif rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if not rest:
        raise InvalidURL(f"{url!r} names no path")
    return Path(rest).expanduser()


def query_options(url: str) -> dict[str, str]:
    """``?a=1&b=2`` of a URL as a dict."""
    return dict(parse_qsl(urlsplit(url).query))


__all__ = ["default_url", "file_path", "mask_url", "memvault_home", "query_options"]
