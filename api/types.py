"""The field types of the API's request bodies: strict JSON types, documented as they are checked.

A JSON value of the wrong type is refused, not coerced: true is not 1, [5] is not 5, 2.5 is not a
whole number. A number may also be sent as its text ("7", "2.5") and a duration as Locust's -t
writes it ("30s", "5m", "1h30m"): those strings go to the Django forms, which parse them as the
UI does, and the document says which strings are taken. In form data (multipart or urlencoded)
every value is text, so strings pass to the forms as they are.

Ranges, lengths and choices are the forms' rules (their messages are the UI's): the document
states them, the forms enforce them after the types here.
"""

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from django.core.files.uploadedfile import UploadedFile as DjangoUploadedFile
from pydantic import PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from scenarios.durations import parse_duration

WHOLE_TEXT = r"^[+-]?[0-9]+$"
NUMBER_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
DURATION_TEXT = r"^[0-9]+$|^([0-9]+ ?[hHmMsS] ?)+$"
BOOLEAN_TEXT = ("true", "false", "on", "1", "0")
NULL = {"type": "null"}


def form_data(info: ValidationInfo) -> bool:
    """Whether the body being validated came as form data (every value is text there)."""
    request = (info.context or {}).get("request")
    return request is not None and (request.content_type or "") != "application/json"


def refuse(label: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError("json_type", "Expected {label}, got {given}.",
                               {"label": label, "given": json.dumps(value, default=str)})


def _checker(label: str, accepts: Callable[[Any], bool], text: str | None) -> Callable[[Any, ValidationInfo], Any]:
    pattern = re.compile(text) if text else None

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            if form_data(info) or pattern is None or pattern.match(value):
                return value
            raise refuse(label, value)
        if accepts(value):
            return value
        raise refuse(label, value)

    return check


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _one_of(*schemas: dict, nullable: bool = True, **about) -> dict:
    options = [*schemas, NULL] if nullable else list(schemas)
    return {"anyOf": options, **about} if len(options) > 1 else {**options[0], **about}


def _limits(minimum: float | None, maximum: float | None) -> dict:
    return {key: value for key, value in (("minimum", minimum), ("maximum", maximum)) if value is not None}


def Whole(description: str, *, minimum: int | None = None, maximum: int | None = None,  # noqa: N802
          example: int | None = None, nullable: bool = True) -> Any:
    """A whole number within [minimum, maximum], or its digits as text."""
    schema = _one_of({"type": "integer", **_limits(minimum, maximum)},
                     {"type": "string", "pattern": WHOLE_TEXT, "description": "The number as text."},
                     nullable=nullable, description=description, **({"example": example} if example else {}))
    return Annotated[Any, PlainValidator(_checker("a whole number", _is_whole, WHOLE_TEXT)), WithJsonSchema(schema)]


def Number(description: str, *, minimum: float | None = None, maximum: float | None = None,  # noqa: N802
           example: float | None = None, nullable: bool = True) -> Any:
    """A number within [minimum, maximum], or its text."""
    schema = _one_of({"type": "number", **_limits(minimum, maximum)},
                     {"type": "string", "pattern": NUMBER_TEXT, "description": "The number as text."},
                     nullable=nullable, description=description, **({"example": example} if example else {}))
    return Annotated[Any, PlainValidator(_checker("a number", _is_number, NUMBER_TEXT)), WithJsonSchema(schema)]


def _check_duration(value: Any, info: ValidationInfo) -> Any:
    if value is None or _is_whole(value) or (isinstance(value, str) and form_data(info)):
        return value
    if isinstance(value, str):
        if re.match(DURATION_TEXT, value):
            return value
        try:
            parse_duration(value)
        except ValueError as problem:
            raise PydanticCustomError("json_type", str(problem)) from None
        raise PydanticCustomError("json_type", "“{given}” is not a duration: write e.g. 90, 30s, 5m or 1h30m.",
                                  {"given": value})
    raise refuse('seconds or a duration such as "30s" or "5m"', value)


def Duration(description: str, *, example: str | None = None, nullable: bool = True) -> Any:  # noqa: N802
    """Seconds (1 to 7 days), or a duration as Locust's -t takes it: 90, 30s, 5m, 1h30m."""
    schema = _one_of({"type": "integer", "minimum": 1, "maximum": 7 * 24 * 3600},
                     {"type": "string", "pattern": DURATION_TEXT, "example": example or "5m",
                      "description": "Seconds, or hours, minutes and seconds: 90, 30s, 5m, 1h30m."},
                     nullable=nullable, description=description)
    return Annotated[Any, PlainValidator(_check_duration), WithJsonSchema(schema)]


def _text_checker(min_length: int | None, max_length: int | None, pattern: str | None,
                  pattern_message: str | None) -> Callable[[Any, ValidationInfo], Any]:
    """Strings only, their length and pattern as sent (the forms would strip spaces first)."""
    compiled = re.compile(pattern) if pattern else None

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise refuse("a string", value)
        if min_length and len(value) < min_length:
            if value == "":
                raise PydanticCustomError("json_type", "This field is required.")
            raise PydanticCustomError("json_type", "Ensure this value has at least {limit} characters (it has "
                                                   "{length}).", {"limit": min_length, "length": len(value)})
        if max_length is not None and len(value) > max_length:
            raise PydanticCustomError("json_type", "Ensure this value has at most {limit} characters (it has "
                                                   "{length}).", {"limit": max_length, "length": len(value)})
        if compiled and not compiled.search(value):
            raise PydanticCustomError("json_type", pattern_message or "Enter a valid value.")
        return value

    return check


def Text(description: str, *, max_length: int | None = None, min_length: int | None = None,  # noqa: N802
         pattern: str | None = None, pattern_message: str | None = None, example: str | None = None,
         nullable: bool = True) -> Any:
    """A string, its length and pattern checked as sent; what else it must be (a URL, a free name) is the form's."""
    text = {"type": "string", **{key: value for key, value in (
        ("minLength", min_length), ("maxLength", max_length), ("pattern", pattern), ("example", example))
        if value is not None}}
    schema = _one_of(text, nullable=nullable, description=description)
    return Annotated[Any, PlainValidator(_text_checker(min_length, max_length, pattern, pattern_message)),
                     WithJsonSchema(schema)]


def Choice(description: str, choices: list[str], *, default: str | None = None,  # noqa: N802
           nullable: bool = True) -> Any:
    """One of `choices` (the form refuses any other with its message)."""
    schema = _one_of({"type": "string", "enum": choices, **({"default": default} if default else {})},
                     nullable=nullable, description=description)
    return Annotated[Any, PlainValidator(_checker("a string", lambda value: False, None)), WithJsonSchema(schema)]


def _check_boolean(value: Any, info: ValidationInfo) -> Any:
    if value is None or isinstance(value, bool) or (isinstance(value, str) and form_data(info)):
        return value
    if isinstance(value, str) and value.lower() in BOOLEAN_TEXT:
        return value
    raise refuse("true or false", value)


def Boolean(description: str, *, default: bool | None = None) -> Any:  # noqa: N802
    """true or false (or its text: "true", "false", "on", "1", "0")."""
    schema = _one_of({"type": "boolean", **({"default": default} if default is not None else {})},
                     {"type": "string", "enum": list(BOOLEAN_TEXT)}, description=description)
    return Annotated[Any, PlainValidator(_check_boolean), WithJsonSchema(schema)]


def _object_checker(label: str, text_label: str | None) -> Callable[[Any, ValidationInfo], Any]:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, dict) or (isinstance(value, str) and form_data(info)):
            return value
        raise refuse(text_label if isinstance(value, str) and text_label else label, value)

    return check


def Mapping(description: str, schema: dict, *, text_label: str | None = None) -> Any:  # noqa: N802
    """A JSON object (in form data: its JSON text); what its members may be is `schema`'s, checked by the form."""
    documented = _one_of({"type": "object", **schema}, description=description)
    return Annotated[Any, PlainValidator(_object_checker("an object", text_label)), WithJsonSchema(documented)]


def _check_list(value: Any, info: ValidationInfo) -> Any:
    if value is None or isinstance(value, list) or (isinstance(value, str) and form_data(info)):
        return value
    raise refuse("an array", value)


def Names(description: str, *, example: list[str] | None = None) -> Any:  # noqa: N802
    """An array of names (strings)."""
    schema = _one_of({"type": "array", "items": {"type": "string"}, **({"example": example} if example else {})},
                     description=description)
    return Annotated[Any, PlainValidator(_check_list), WithJsonSchema(schema)]


def _check_upload(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, DjangoUploadedFile):
        return value
    raise PydanticCustomError("json_type", "Send it as a file part of multipart/form-data.")


def Upload(description: str, *, max_bytes: int, example: str) -> Any:  # noqa: N802
    """A file part of a multipart body; its content is checked by the form (a locustfile is analysed)."""
    schema = {"type": "string", "format": "binary", "maxLength": max_bytes, "description": description,
              "example": example}
    return Annotated[Any, PlainValidator(_check_upload), WithJsonSchema(schema)]
