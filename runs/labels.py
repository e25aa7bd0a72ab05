"""Run labels: what a run tested, as its user names it (`sut_version=1.4.2`, `commit=abc123`, `env=staging`).

Labels are set when a run starts (the run form, the API's `labels` object, `runscenario --label`,
a schedule's labels) and frozen on Run.labels. Every interface checks them here, so a label one of
them refuses is refused by all, with the same sentence naming the label.

Keys are lowercase identifiers (`[a-z][a-z0-9_.-]*`, at most 64 characters), values non-empty
strings of at most 200 characters on one line; at most 20 labels a run.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

MAX_LABELS = 20
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 200
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_.-]*")
# In text (the forms): one label a line, or several on a line separated by commas. A comma starts a
# new label only when "key=" follows it, so a value may hold a comma ("note=a, b" is one label). The
# key may be one this module refuses ("Build="): it is a label of its own, named as bad, not a part
# of the value before it. The history's and trends' label filter boxes split the same way.
_PAIR_COMMA = r",\s*(?=[A-Za-z][A-Za-z0-9_.-]*\s*=)"
_SEPARATOR = re.compile(r"\n|" + _PAIR_COMMA)
KEY_RULE = "lowercase letters, digits and _ . - only, starting with a letter"
EXAMPLE = "env=staging"


class LabelError(ValueError):
    """Labels that cannot be kept; `messages` holds one sentence per problem, each naming its label."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__(" ".join(messages))


def key_problem(key) -> str | None:
    if not isinstance(key, str) or not key:
        return "A label needs a key, e.g. env=staging."
    if len(key) > MAX_KEY_LENGTH:
        return f"The label key “{key[:20]}…” is {len(key)} characters long: at most {MAX_KEY_LENGTH}."
    if not KEY_PATTERN.fullmatch(key):
        return f"The label key “{key}” is not valid: use {KEY_RULE} (e.g. sut_version, app.commit)."
    return None


def value_problem(key: str, value) -> str | None:
    if isinstance(value, bool) or isinstance(value, (int, float)):
        text = json.dumps(value)
        return (f"The label {key} must be a string, not {'true or false' if isinstance(value, bool) else 'a number'}: "
                f"write it in quotes, \"{key}\": \"{text}\".")
    if not isinstance(value, str):
        kind = "null" if value is None else "a list or object"
        return f"The label {key} must be a string, not {kind}."
    value = value.strip()  # as it is kept
    if not value:
        return f"The label {key} has no value: write {key}=<value>, or leave the label out."
    if len(value) > MAX_VALUE_LENGTH:
        return f"The value of the label {key} is {len(value)} characters long: at most {MAX_VALUE_LENGTH}."
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return f"The value of the label {key} holds a line break or control character: keep it on one line."
    return None


def label_problem(key, value) -> str | None:
    """The sentence naming what is wrong with one label, or None."""
    return key_problem(key) or value_problem(key, value)


def count_problems(count: int) -> list[str]:
    """The sentence refusing `count` labels for a run, if they are too many."""
    return [f"A run takes at most {MAX_LABELS} labels; {count} were given."] if count > MAX_LABELS else []


def clean(labels) -> dict[str, str]:
    """`labels` ({key: value}, or None) checked: the labels to freeze on a run, keys sorted, values stripped.
    LabelError lists every problem."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise LabelError([f"Give labels as an object of strings, e.g. {{\"env\": \"staging\"}}, "
                          f"not {type(labels).__name__}."])
    problems = [problem for key, value in labels.items() if (problem := label_problem(key, value))]
    problems += count_problems(len(labels))
    if problems:
        raise LabelError(problems)
    return {key: labels[key].strip() for key in sorted(labels)}


def parse_pair(text: str) -> tuple[str, str]:
    """("env", "staging") from "env=staging"; LabelError when it is not key=value."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise LabelError([f"“{text.strip()}” is not a label: write key=value, e.g. {EXAMPLE}."])
    return key.strip(), value.strip()


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """Labels from key=value strings, checked; a key given twice keeps its last value. LabelError names
    every bad one in the order given: each pair that is not key=value, each kept label's bad key or value."""
    given: dict[str, str] = {}
    places: dict[str, int] = {}
    problems: list[tuple[int, str]] = []   # (place in `pairs`, sentence)
    for place, pair in enumerate(pairs):
        try:
            key, value = parse_pair(pair)
        except LabelError as error:
            problems += [(place, message) for message in error.messages]
            continue
        given[key], places[key] = value, place
    problems += [(places[key], problem) for key, value in given.items() if (problem := label_problem(key, value))]
    if problems:
        raise LabelError([message for _, message in sorted(problems)] + count_problems(len(given)))
    return clean(given)


def parse_text(text: str | None) -> dict[str, str]:
    """Labels from the forms' text: one key=value a line, or comma-separated (empty lines are skipped)."""
    parts = [part.strip() for part in _SEPARATOR.split((text or "").replace("\r\n", "\n")) if part.strip()]
    return parse_pairs(parts)


def as_text(labels: dict | None) -> str:
    """The forms' text of stored labels: key=value lines, keys sorted."""
    return "\n".join(f"{key}={value}" for key, value in sorted((labels or {}).items()))


def pairs(labels: dict | None) -> list[tuple[str, str]]:
    """(key, value) sorted by key: the order labels are shown in everywhere (a database may reorder JSON keys)."""
    return sorted((labels or {}).items())


def ordered(labels: dict | None) -> dict[str, str]:
    """The labels with their keys sorted, as payloads and reports write them."""
    return dict(pairs(labels))


def as_words(labels: dict | None) -> str:
    """"commit=abc123 env=staging": labels on one line, for the console and titles."""
    return " ".join(f"{key}={value}" for key, value in pairs(labels))


HELP_TEXT = ("What this run tests, one key=value per line or comma-separated: e.g. sut_version=1.4.2, commit=abc123, "
             f"env=staging. Keys: {KEY_RULE}; at most {MAX_LABELS} labels. History and trends filter by them.")


# -- filtering runs by label ---------------------------------------------------------------------

def parse_filters(values: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The ?label=key=value filters (repeatable, all must match): the usable ones, and a sentence for each
    unusable one. Empty values (the form's blank "add a label" input) are skipped."""
    filters: list[tuple[str, str]] = []
    problems = []
    # "env=staging, sut_version=1.1" in one box is two filters, split as the run form splits labels.
    values = [part for raw in values for part in re.split(_PAIR_COMMA, raw)]
    for raw in values:
        if not raw.strip():
            continue
        key, equals, value = raw.partition("=")
        key, value = key.strip(), value.strip()
        if not (equals and key and value):
            problem = f"“{raw.strip()}” is not a label filter: write key=value, e.g. {EXAMPLE}."
        elif len(value) > MAX_VALUE_LENGTH:
            problem = f"The label filter on {key} is longer than any label's value ({MAX_VALUE_LENGTH} characters)."
        else:
            problem = key_problem(key)
        if problem:
            problems.append(problem)
        elif (key, value) not in filters:
            filters.append((key, value))
    return filters, problems


def matching(filters: list[tuple[str, str]]) -> Q:
    """A condition true for runs that carry every one of these labels."""
    condition = Q()
    for key, value in filters:
        condition &= Q(Exact(KeyTextTransform(key, "labels"), value))
    return condition


def filter_runs(runs, filters: list[tuple[str, str]]):
    """`runs` narrowed to those carrying every label in `filters`."""
    return runs.filter(matching(filters)) if filters else runs


def known(runs, limit: int = 1000, values_per_key: int = 30) -> dict[str, list[str]]:
    """The label keys of these runs' last `limit` (newest first), each with its values, most used first:
    what the filter inputs offer."""
    newest = runs.exclude(labels={}).order_by("-created_at", "-id").values_list("labels", flat=True)[:limit]
    return tally(newest, values_per_key)


def tally(many_labels, values_per_key: int = 30) -> dict[str, list[str]]:
    """{key: [values, most used first]} of these runs' labels, keys sorted."""
    counts: dict[str, Counter] = {}
    for labels in many_labels:
        for key, value in (labels or {}).items():
            counts.setdefault(key, Counter())[value] += 1
    return {key: [value for value, _ in sorted(counts[key].items(), key=lambda item: (-item[1], item[0]))]
            [:values_per_key] for key in sorted(counts)}


def known_pairs(known_labels: dict[str, list[str]]) -> list[str]:
    """"key=value" suggestions for a datalist, by key."""
    return [f"{key}={value}" for key, values in known_labels.items() for value in values]


def changes(before: dict | None, after: dict | None) -> list[str]:
    """What changed from one run's labels to the next: "env=prod" (new or changed), "−env" (gone)."""
    before, after = before or {}, after or {}
    words = [f"{key}={after[key]}" for key in sorted(after) if before.get(key) != after[key]]
    return words + [f"−{key}" for key in sorted(before) if key not in after]
