"""A run's custom locustfile options as Locust parses them: the pool's `environment.parsed_options`.

The control plane checked the values against what the analysis read (scenarios.options); here
they become a command line for Locust's own parser (locust.argument_parser.get_parser, which
fires init_command_line_parser, so the locustfile's listeners add their arguments), exactly
as `locust -f locustfile.py --region eu` would be parsed: argparse applies types and defaults.

Imported by the pool only (it imports locust).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any


class OptionsError(Exception):
    """Locust's parser refused the run's options; the message is shown as the run's reason."""


def command_line(parser, options: dict[str, Any]) -> list[str]:
    """The arguments that set `options` (dest -> value) on `parser`, as a user would type them."""
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    args: list[str] = []
    for dest, value in options.items():
        action = actions.get(dest)
        if action is None:
            raise OptionsError(f"The locustfile's parser has no option {dest!r} (its init_command_line_parser "
                               "listeners did not add it when the run started).")
        flag = next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])
        if action.nargs == 0:  # store_true, store_false, store_const, count: the flag alone
            if action.const is None:  # count
                args += [flag] * int(value or 0)
            elif value == action.const and value != action.default:
                args.append(flag)
            continue
        values = value if isinstance(value, list) else [value]
        texts = ["true" if v is True else "false" if v is False else str(v) for v in values]
        if len(texts) == 1 and flag.startswith("--"):
            args.append(f"{flag}={texts[0]}")  # a value that starts with "-" stays a value
        else:
            args += [flag, *texts]
    return args


def parse(path: str, options: dict[str, Any]):
    """Locust's parsed options for the locustfile at `path` with the run's `options` set."""
    from locust.argument_parser import get_parser

    parser = get_parser()
    args = ["-f", path, *command_line(parser, options)]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return parser.parse_args(args=args)
    except SystemExit:
        said = errors.getvalue().strip().splitlines()
        raise OptionsError("Locust refused the run's options: " + (said[-1] if said else " ".join(args[2:]))) from None
