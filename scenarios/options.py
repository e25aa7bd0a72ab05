"""A locustfile's custom command-line options (`parser.add_argument` in init_command_line_parser
listeners): validating the values a run is given, and masking the secret ones wherever they are shown.

The analysis (scenarios.analysis) lists what a version declares in `findings["options"]`. A run
records the values it was given, converted to the option's type, in `params["options"]` (by
dest, as `environment.parsed_options` names them) and the names of the secret ones among them in
`params["secret_options"]`; the pool parses them through Locust's own parser. Pure: no Django.
"""

from __future__ import annotations

from typing import Any

MASK = "********"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class OptionError(ValueError):
    """Values that do not fit the declared options; `errors` maps each option's name (e.g. --region) to why."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def declared(findings: dict | None) -> list[dict[str, Any]]:
    return list((findings or {}).get("options") or [])


def key(name: str) -> str:
    """The dest a user-typed name means: "--api-key", "api-key" and "api_key" all mean api_key."""
    return str(name).strip().lstrip("-").replace("-", "_")


def convert(option: dict[str, Any], value: Any) -> Any:
    """`value` (typed JSON, or the text of a form or the command line) as the option's type; ValueError says why."""
    name, kind = option["name"], option.get("type") or "str"
    if kind == "bool":
        if isinstance(value, bool):
            converted: Any = value
        elif isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            converted = value.strip().lower() in _TRUE
        else:
            raise ValueError(f"{name} is a flag: give true or false, not {value!r}.")
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            converted = value
        else:
            try:
                converted = int(str(value).strip()) if isinstance(value, str) else None
            except ValueError:
                converted = None
            if converted is None:
                raise ValueError(f"{name} takes a whole number, not {value!r}.")
    elif kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            converted = float(value)
        else:
            try:
                converted = float(str(value).strip()) if isinstance(value, str) else None
            except ValueError:
                converted = None
            if converted is None or converted != converted or converted in (float("inf"), float("-inf")):
                raise ValueError(f"{name} takes a number, not {value!r}.")
    else:
        if isinstance(value, str):
            converted = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            converted = str(value)
        else:
            raise ValueError(f"{name} takes a string, not {value!r}.")
    choices = option.get("choices")
    if choices is not None and converted not in choices and str(converted) not in [str(c) for c in choices]:
        shown = ", ".join(str(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {shown}; {value!r} is not.")
    return converted


def clean(findings: dict | None, given: Any) -> dict[str, Any]:
    """The given option values, by dest and converted, checked against what the version declares.

    None values are left out (the locustfile's default applies). Raises OptionError naming every
    unknown option, wrong type, wrong choice and missing required option.
    """
    options = declared(findings)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise OptionError({"options": 'Options are a map of option name to value, e.g. {"region": "eu"}.'})
    by_dest = {option["dest"]: option for option in options}
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, value in given.items():
        option = by_dest.get(key(name))
        if option is None:
            known = ", ".join(o["name"] for o in options)
            errors[str(name)] = (f"Unknown option {name!r}: " + (
                f"this locustfile's options are {known}." if known else
                "this locustfile adds no command-line options (parser.add_argument in an "
                "init_command_line_parser listener)."))
            continue
        if value is None:
            continue
        try:
            values[option["dest"]] = convert(option, value)
        except ValueError as problem:
            errors[option["name"]] = str(problem)
    for option in options:
        if option.get("required") and option["dest"] not in values and option["name"] not in errors:
            errors[option["name"]] = f"{option['name']} is required: the locustfile declares it with required=True."
    if errors:
        raise OptionError(errors)
    return values


def secret_names(findings: dict | None, values: dict[str, Any]) -> list[str]:
    secret = {option["dest"] for option in declared(findings) if option.get("is_secret")}
    return sorted(name for name in values if name in secret)


def masked_params(params: dict | None) -> dict:
    """A run's params as pages, reports and the API show them: secret option values masked."""
    params = dict(params or {})
    secret = set(params.get("secret_options") or [])
    if params.get("options") and secret:
        params["options"] = {name: MASK if name in secret else value for name, value in params["options"].items()}
    return params


def shown(findings: dict | None) -> list[dict[str, Any]]:
    """The declared options as the analysis view and the API show them: a secret's default masked."""
    result = []
    for option in declared(findings):
        if option.get("is_secret") and option.get("default") not in (None, ""):
            option = {**option, "default": MASK, "default_text": MASK}
        result.append(option)
    return result


def rows(findings: dict | None, params: dict | None) -> list[dict[str, Any]]:
    """What a run's options were: each declared option with its value or the default, secrets masked."""
    params = masked_params(params)
    given = params.get("options") or {}
    result = []
    for option in shown(findings):
        if option["dest"] in given:
            result.append({"name": option["name"], "value": given[option["dest"]], "default": False})
        else:
            result.append({"name": option["name"], "value": option.get("default_text"), "default": True})
    for dest, value in given.items():  # set for an older version's option, or by the API
        if not any(option["dest"] == dest for option in declared(findings)):
            result.append({"name": f"--{dest.replace('_', '-')}", "value": value, "default": False})
    return result
