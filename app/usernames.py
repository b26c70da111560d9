"""One account per name however it is written: names compare after NFKC normalisation and case folding."""

from __future__ import annotations

import unicodedata


def username_key(username: str) -> str:
    """`Admin`, `ADMIN` and fullwidth `admin` (U+FF41...) are one account: `admin`."""
    return unicodedata.normalize("NFKC", username).casefold()
