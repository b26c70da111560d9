"""How guessable a secret is: the rules production applies to JWT_SECRET and the passwords.

Standard library only at import (zxcvbn loads when a strength estimate is asked for), so the deployment
checklist can apply the same rules without loading the service's settings.
"""

from __future__ import annotations

# Secrets that appear in docs and samples; production must never run with one of them, nor with one of
# them plus a suffix (they are also words of the strength estimate below).
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "your-secure-jwt-secret-key",
        "secret",
        "changeme",
        "change-me",
        "jwt-secret",
        "development-secret",
    }
)
# Words an attacker of this service tries first, besides zxcvbn's own dictionaries.
SERVICE_WORDS = ("living-codex", "livingcodex", "codex", "jwt", "admin", "codex-gate", "gate", "staging", "production")
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT_CHARS = 10
# The strength estimate's floor, as log10 of the guesses zxcvbn estimates. JWT_SECRET signs tokens, so a
# captured token lets it be guessed offline at hash speed: 10^30 (a random 32-character secret estimates
# about 10^31). The passwords are argon2-hashed and throttled: 10^20 (20 random characters).
MIN_GUESSES_LOG10 = {"JWT_SECRET": 30, "ADMIN_PASSWORD": 20, "GATE_PASSWORD": 20}
ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; the first 72 characters must be strong on their own

_PATTERN_NAMES = {
    "dictionary": "a dictionary word or common password",
    "spatial": "a keyboard run",
    "repeat": "a repetition",
    "sequence": "a sequence",
    "regex": "a year or digit run",
    "date": "a date",
}


def weak_secret_reason(secret: str, *, min_length: int = MIN_SECRET_LENGTH, min_guesses_log10: float = 0) -> str | None:
    """Why a secret is too guessable for a shared deployment, or None when it is acceptable.

    Not a known default, at least `min_length` characters and 10 distinct ones, not a shorter string
    repeated, and zxcvbn's estimate at least 10^min_guesses_log10 guesses. The reason never quotes the
    secret: it names the kinds of pattern found, so it can be logged.
    """
    if not secret:
        return "missing"
    if secret.lower() in KNOWN_DEFAULT_SECRETS:
        return "a known default"
    if len(secret) < min_length:
        return f"shorter than {min_length} characters"
    if len(set(secret)) < MIN_SECRET_DISTINCT_CHARS:
        return f"made of fewer than {MIN_SECRET_DISTINCT_CHARS} distinct characters"
    if secret in (secret + secret)[1:-1]:  # true exactly when secret is a shorter string repeated
        return "a shorter string repeated"
    return _guessable(secret, min_guesses_log10) if min_guesses_log10 else None


def _guessable(secret: str, min_guesses_log10: float) -> str | None:
    from zxcvbn import zxcvbn  # imported when needed: its dictionaries take a moment to load

    estimate = zxcvbn(secret[:ZXCVBN_MAX_LENGTH], user_inputs=[*KNOWN_DEFAULT_SECRETS, *SERVICE_WORDS])
    if estimate["guesses_log10"] >= min_guesses_log10:
        return None
    found = sorted({_PATTERN_NAMES[m["pattern"]] for m in estimate["sequence"] if m["pattern"] in _PATTERN_NAMES})
    made_of = f": it contains {', '.join(found)}" if found else ""
    return (
        f"guessable (about 10^{estimate['guesses_log10']:.0f} guesses by a zxcvbn strength estimate, "
        f"at least 10^{min_guesses_log10:.0f} needed{made_of})"
    )


def secret_weakness(name: str, secret: str) -> str | None:
    """weak_secret_reason under the rule for the variable `name` (MIN_GUESSES_LOG10)."""
    min_length = MIN_SECRET_LENGTH if name == "JWT_SECRET" else 0
    return weak_secret_reason(secret, min_length=min_length, min_guesses_log10=MIN_GUESSES_LOG10[name])
