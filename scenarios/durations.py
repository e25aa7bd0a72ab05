"""Durations as people write them for Locust's -t: "90", "30s", "5m", "1h30m", "2h 5m 10s"."""

import re

_PART = re.compile(r"(\d+)\s*([hms])", re.IGNORECASE)
_UNIT = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in `text`; ValueError with a readable message when it is not a duration."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return int(cleaned)
    if not cleaned or _PART.sub("", cleaned).strip():
        raise ValueError(f"“{text}” is not a duration: write e.g. 90, 30s, 5m or 1h30m.")
    return sum(int(amount) * _UNIT[unit] for amount, unit in _PART.findall(cleaned))


def format_duration(seconds: int) -> str:
    """The shortest form that parse_duration reads back: 90 -> "1m30s", 3600 -> "1h"."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)
