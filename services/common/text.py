"""Checks on text from callers, shared by the gateway and the services. Pure."""

from __future__ import annotations

import unicodedata


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a NUL, a line break, a tab or another Unicode control character.

    PostgreSQL cannot store a NUL at all, and the others have no place in a
    name, a key or a query parameter.
    """
    return any(unicodedata.category(char) == "Cc" for char in text)
