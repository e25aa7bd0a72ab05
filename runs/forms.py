from django import forms

from runs import cluster, services
from runs import labels as run_labels
from runs.models import Threshold
from scenarios import options as locust_options
from scenarios.forms import HOST_ERRORS, DurationField
from scenarios.models import LocustfileVersion, Scenario
from workers import envvars

OPTION_PREFIX = "option_"


def env_field(scenario: Scenario) -> forms.CharField:
    """Environment variables a run (or schedule) overrides or adds, NAME=VALUE lines; never a secret."""
    mine = ", ".join(f"{name}={value}" for name, value in (scenario.env_vars or {}).items())
    secrets = ", ".join(scenario.secret_names or [])
    help_text = ("One NAME=VALUE per line: overrides or adds to the scenario's variables"
                 + (f" ({mine})" if mine else "") + "."
                 + (f" Secrets it receives ({secrets}) cannot be overridden." if secrets else ""))
    return forms.CharField(required=False, label="Environment variables",
                           widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}), help_text=help_text)


def clean_env_field(form: forms.Form, scenario: Scenario) -> dict:
    """The env_text field as overrides {name: value}, checked as start_run checks them; errors on the field."""
    text = form.cleaned_data.get("env_text") or ""
    try:
        variables = envvars.parse_lines(text)
    except ValueError as problem:
        form.add_error("env_text", str(problem))
        return {}
    clash = sorted(set(variables) & set(scenario.secret_names or []))
    if clash:
        form.add_error("env_text", f"{', '.join(clash)}: a secret of this scenario cannot be overridden.")
        return {}
    return variables


def labels_field() -> forms.CharField:
    """The labels a run (or a schedule's runs) carries, as key=value text (runs/labels.py)."""
    return forms.CharField(required=False, label="Labels", help_text=run_labels.HELP_TEXT,
                           widget=forms.Textarea(attrs={"rows": 2, "class": "mono",
                                                        "placeholder": "sut_version=1.4.2\nenv=staging"}))


def clean_labels_field(form: forms.Form) -> dict:
    """The labels field as {key: value}, checked as start_run checks them; each problem on the field."""
    try:
        return run_labels.parse_text(form.cleaned_data.get("labels"))
    except run_labels.LabelError as problem:
        for message in problem.messages:
            form.add_error("labels", message)
        return {}


def option_fields(findings: dict, *, initial_values: dict | None = None) -> dict[str, forms.Field]:
    """One form field per custom option the locustfile adds that Locust's web UI would show
    (include_in_web_ui), named option_<dest>; a secret one is a password input that never shows a value."""
    fields: dict[str, forms.Field] = {}
    for option in locust_options.declared(findings):
        if not option.get("include_in_web_ui", True):
            continue
        name, kind = option["name"], option.get("type") or "str"
        default = (initial_values or {}).get(option["dest"], option.get("default"))
        text = option.get("help") or ""
        common = {"label": name, "required": False}
        if option.get("is_secret"):
            field: forms.Field = forms.CharField(
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=(text + " " if text else "") + "Secret: never shown again. Empty: the locustfile's default.",
                **common)
        elif kind == "bool":
            field = forms.BooleanField(initial=bool(default), help_text=text, **common)
        elif option.get("choices"):
            choices = [(str(choice), str(choice)) for choice in option["choices"]]
            listed = ", ".join(value for value, _ in choices)
            field = forms.ChoiceField(choices=([("", "— the locustfile's default —")] if default is None else [])
                                      + choices, initial="" if default is None else str(default), help_text=text,
                                      error_messages={"invalid_choice": f"{name} must be one of {listed}; "
                                                                        "%(value)s is not."},
                                      **common)
        else:
            computed = "" if option.get("default_known", True) else option.get("default_text")
            field = forms.CharField(initial=None if default is None else str(default),
                                    help_text=text or ("Empty: the locustfile's default" if default is None else ""),
                                    **common)
            if computed:
                field.widget.attrs["placeholder"] = computed
            if kind in ("int", "float"):
                field.widget.attrs["inputmode"] = "numeric" if kind == "int" else "decimal"
        field.option = option
        fields[OPTION_PREFIX + option["dest"]] = field
    return fields


def clean_option_fields(form: forms.Form) -> dict:
    """The option fields' values, by dest, checked like every other way of starting a run; errors on the fields."""
    given: dict = {}
    for name, field in form.fields.items():
        option = getattr(field, "option", None)
        if option is None:
            continue
        value = form.cleaned_data.get(name)
        if option.get("type") == "bool":
            given[option["dest"]] = bool(value)
        elif value not in (None, ""):
            given[option["dest"]] = value
    try:
        return locust_options.clean(form.version_findings, given)
    except locust_options.OptionError as problem:
        by_name = {field.option["name"]: name for name, field in form.fields.items() if hasattr(field, "option")}
        for option_name, message in problem.errors.items():
            form.add_error(by_name.get(option_name), message)
        return {}


class RunForm(forms.Form):
    users = forms.IntegerField(min_value=1, max_value=1_000_000, help_text="Peak number of concurrent users")
    spawn_rate = forms.FloatField(min_value=0.01, max_value=100_000, help_text="Users started per second")
    duration = DurationField(help_text="e.g. 30s, 5m, 1h30m")
    host = forms.URLField(required=False, max_length=500, assume_scheme="http", error_messages=HOST_ERRORS,
                          help_text="Base URL of the system under test")
    slots = forms.IntegerField(min_value=1, max_value=1000, label="Worker slots",
                               help_text="One CPU core each; users and spawn rate are split across them")
    user_classes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             help_text="None ticked: all of them")
    tags = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Only tasks tagged")
    exclude_tags = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             label="Skip tasks tagged")

    @staticmethod
    def defaults(scenario: Scenario) -> dict:
        """The scenario's run defaults, as this form's fields name them."""
        return {"users": scenario.default_users, "spawn_rate": scenario.default_spawn_rate,
                "duration": scenario.default_duration, "host": scenario.default_host, "slots": scenario.default_slots}

    @staticmethod
    def again(run) -> dict:
        """The form's initial values to run `run` again: its parameters, its labels and the variables it set
        beyond its scenario's (secrets are never in them); its locustfile options are `again_options`."""
        params = run.params or {}
        own = run.scenario.env_vars or {}
        env = {name: value for name, value in (params.get("env") or {}).items() if own.get(name) != value}
        return {"users": params.get("users"), "spawn_rate": params.get("spawn_rate"),
                "duration": params.get("duration"), "host": params.get("host") or "", "slots": params.get("slots"),
                "user_classes": params.get("user_classes") or [], "tags": params.get("tags") or [],
                "exclude_tags": params.get("exclude_tags") or [], "labels": run_labels.as_text(run.labels),
                "env_text": "\n".join(f"{name}={value}" for name, value in env.items())}

    def __init__(self, *args, scenario: Scenario, version: LocustfileVersion, with_options: bool = True,
                 options_initial: dict | None = None, **kwargs):
        """`with_options=False`: no fields for the locustfile's options (the API takes them as one object);
        `options_initial`: their values by dest (a run again), else the locustfile's defaults."""
        kwargs.setdefault("initial", self.defaults(scenario))
        super().__init__(*args, **kwargs)
        self.version = version
        findings = version.findings
        classes = [uc["name"] for uc in findings.get("user_classes", []) if not uc.get("abstract")]
        self.fields["user_classes"].choices = [(name, name) for name in classes]
        tags = findings.get("all_tags", [])
        self.fields["tags"].choices = self.fields["exclude_tags"].choices = [(t, t) for t in tags]
        if version.locustfile_host:
            self.fields["host"].help_text = "Leave empty to use the host set in the locustfile"
        if len(classes) < 2:
            del self.fields["user_classes"]
        if not tags:
            del self.fields["tags"], self.fields["exclude_tags"]
        self.has_shape = bool(findings.get("shape"))
        self.scenario = scenario
        self.fields["env_text"] = env_field(scenario)
        self.env: dict = {}
        self.labels: dict = {}
        self.version_findings = findings
        self.options: dict = {}
        self.with_options = with_options
        if with_options:
            self.fields.update(option_fields(findings, initial_values=options_initial))
        self.fields["labels"] = labels_field()

    def clean(self):
        data = super().clean()
        host = data.get("host")
        if "host" in self.errors:
            pass  # "Enter a valid URL." says it already
        elif not host and not self.version.locustfile_host:
            self.add_error("host", "Name the host to test: the locustfile's user classes do not set one.")
        elif services.host_problem(host):
            self.add_error("host", services.host_problem(host))
        total = cluster.capacity()
        if data.get("slots") and total and data["slots"] > total:
            self.add_error("slots", f"The cluster has {total} slot{'s' if total != 1 else ''} online: ask for at most "
                                    f"{total}, or add a load-generator machine first (see the Cluster page).")
        tags, excluded = set(data.get("tags") or []), set(data.get("exclude_tags") or [])
        if tags & excluded:
            self.add_error("exclude_tags", f"Tagged both to run and to skip: {', '.join(sorted(tags & excluded))}.")
        if self.with_options:
            self.options = clean_option_fields(self)
        self.env = clean_env_field(self, self.scenario)
        self.labels = clean_labels_field(self)
        return data

    def params(self) -> dict:
        data = self.cleaned_data
        return {
            "users": data["users"], "spawn_rate": data["spawn_rate"], "duration": data["duration"],
            "host": data.get("host") or "", "slots": data["slots"],
            "user_classes": data.get("user_classes") or [], "tags": data.get("tags") or [],
            "exclude_tags": data.get("exclude_tags") or [], "options": self.options, "env": self.env,
        }


class LiveUsersForm(forms.Form):
    """Users and spawn rate of a running test, changed from its page."""

    users = forms.IntegerField(min_value=0, max_value=1_000_000, help_text="Users to run from now on")
    spawn_rate = forms.FloatField(min_value=0.01, max_value=100_000, help_text="Users started (or stopped) per second")


class ThresholdForm(forms.ModelForm):
    """A pass/fail criterion of a scenario. An endpoint no run recorded yet is allowed (the view warns)."""

    endpoint = forms.CharField(
        required=False, max_length=600, label="Scope",
        help_text='Empty for the total (the Aggregated row), or one endpoint as "METHOD name" as in the statistics '
                  'table, e.g. "GET /cart".')
    value = forms.FloatField(
        label="Limit", help_text="Milliseconds for response times; percent (0–100) for the failure ratio; requests/s "
                                 "for minimum RPS; for the baseline rule, how many % worse a significant change of "
                                 "p95 must be to count (0: any significant change of at least 1 ms and 2%).",
        error_messages={"invalid": "Enter a number, e.g. 500 or 2.5."})
    baseline_runs = forms.IntegerField(
        required=False, min_value=1, max_value=50, initial=5, label="Baseline runs",
        help_text="Baseline rule only: a run fails when an endpoint's p95 is significantly worse than in each of "
                  "this many last passing runs with the same parameters.")
    grace_seconds = forms.IntegerField(
        required=False, min_value=0, max_value=7 * 24 * 3600, initial=0, label="Grace period (s)",
        help_text="With abort on fail: not checked live during the first seconds of the run (ramp-up); with a "
                  "window, no window that begins in them is checked live.")
    window_seconds = forms.IntegerField(
        required=False, min_value=0, max_value=24 * 3600, label="Window (s)",
        help_text="Empty or 0: the whole run (its totals). N: judge a rolling window of N seconds instead, merged "
                  "across all slots, e.g. 60 for “p95 of the last 60 s”. Not for the baseline rule.",
        error_messages={"max_value": "A window is at most 86400 s (a day)."})
    window = forms.ChoiceField(
        label="Which windows", required=False, initial=Threshold.Window.LAST, choices=[
            (Threshold.Window.LAST, "the last N seconds: live, the newest window; at the end, the last full one"),
            (Threshold.Window.ANY, "any N seconds: every window of the run must hold; the verdict shows the worst")],
        help_text="With a window only. Either way, an abort-on-fail criterion stops the run as soon as its newest "
                  "window breaks it.")

    class Meta:
        model = Threshold
        fields = ["metric", "endpoint", "value", "window_seconds", "window", "baseline_runs", "abort_on_fail",
                  "grace_seconds", "enabled"]
        labels = {"abort_on_fail": "Abort the run live when broken", "enabled": "Enabled"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].widget.attrs.update({"list": "known-endpoints", "placeholder": "total"})
        self.fields["metric"].error_messages["invalid_choice"] = (
            "“%(value)s” is not a metric: use one of " + ", ".join(Threshold.Metric.values) + ".")

    def clean_endpoint(self):
        endpoint = " ".join((self.cleaned_data.get("endpoint") or "").split())
        return "" if endpoint.lower() in ("total", "aggregated") else endpoint

    def clean(self):
        from runs.thresholds import FAILURE_RATIO, P95_BASELINE

        data = super().clean()
        metric, value = data.get("metric"), data.get("value")
        if value is not None:
            if value != value or value in (float("inf"), float("-inf")):
                self.add_error("value", "Enter a finite number.")
            elif value < 0:
                self.add_error("value", "A limit cannot be negative.")
            elif metric == FAILURE_RATIO and value > 100:
                self.add_error("value", "The failure ratio is a percentage: choose a limit between 0 and 100.")
            elif metric == P95_BASELINE and value > 1000:
                self.add_error("value", "Allow at most 1000% worse than the baseline.")
        if metric == P95_BASELINE and data.get("abort_on_fail"):
            self.add_error("abort_on_fail", "The baseline rule is checked when the run ends; it cannot abort a run.")
        if data.get("baseline_runs") is None:
            data["baseline_runs"] = 5
        if data.get("grace_seconds") is None:
            data["grace_seconds"] = 0
        self._clean_window_fields(data)
        return data

    def _clean_window_fields(self, data: dict) -> None:
        """No window means the whole run (0); the baseline rule compares whole runs and takes none."""
        from runs.thresholds import P95_BASELINE

        if not data.get("window_seconds"):
            data["window_seconds"] = 0
        elif data.get("metric") == P95_BASELINE:
            self.add_error("window_seconds", "The baseline rule compares the p95 of whole runs: it has no window. "
                                             "Leave the window empty, or pick p95 with a window.")
        if not data.get("window"):
            data["window"] = Threshold.Window.LAST
