from zoneinfo import available_timezones

from django import forms

from automation import cron, safe_http, schedules
from automation.models import Event, Schedule, Webhook
from runs import labels as run_labels
from runs.forms import clean_env_field, clean_labels_field, clean_option_fields, env_field, labels_field, option_fields
from runs.services import host_problem
from scenarios.forms import HOST_ERRORS, DurationField
from targets import policy as target_policy
from workers.envvars import as_lines

TIMEZONES = sorted(available_timezones())


class ScheduleForm(forms.ModelForm):
    cron = forms.CharField(required=False, max_length=120, label="Cron expression",
                           help_text="minute hour day-of-month month day-of-week, e.g. 30 6 * * 1-5 "
                                     "(weekdays at 06:30). Used when the timing is “Cron expression”.")
    timezone = forms.ChoiceField(choices=[(name, name) for name in TIMEZONES], initial="UTC", label="Time zone")
    duration = DurationField(required=False, help_text="e.g. 30s, 5m, 1h30m; empty: the scenario's default")
    host = forms.URLField(required=False, max_length=500, assume_scheme="http", error_messages=HOST_ERRORS,
                          help_text="Empty: the scenario's default host")

    class Meta:
        model = Schedule
        fields = ["name", "preset", "cron", "timezone", "users", "spawn_rate", "duration", "host", "slots",
                  "overlap", "enabled"]
        labels = {"preset": "Timing", "slots": "Worker slots", "overlap": "If the previous run is still going"}
        help_texts = {"users": "Empty: the scenario's default", "spawn_rate": "Empty: the scenario's default",
                      "slots": "Empty: the scenario's default"}
        widgets = {"overlap": forms.RadioSelect}

    def __init__(self, *args, scenario, **kwargs):
        super().__init__(*args, **kwargs)
        self.scenario = scenario
        for name in ("users", "slots"):  # the model says at least 1; PositiveIntegerField tells browsers 0
            self.fields[name].min_value = 1
            self.fields[name].widget.attrs["min"] = 1
        # The locustfile's own options, as on the run form; a secret left empty keeps the one stored.
        version = scenario.current_version
        self.version_findings = version.findings if version is not None else {}
        self.options = dict(self.instance.options or {})
        fields = option_fields(self.version_findings, initial_values=self.options)
        for field in fields.values():
            if field.option.get("is_secret") and field.option["dest"] in self.options:
                field.help_text = "Set (hidden). Type a new value to replace it; empty keeps it."
        self.fields.update(fields)
        self.fields["env_text"] = env_field(scenario)
        self.env = dict(self.instance.env or {})
        self.fields["labels"] = labels_field()
        self.fields["labels"].help_text = "Every run this schedule starts carries them. " + run_labels.HELP_TEXT
        self.labels = dict(self.instance.labels or {})
        if not self.is_bound:
            self.initial["env_text"] = as_lines(self.env)
            self.initial["labels"] = run_labels.as_text(self.labels)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = Schedule.objects.filter(scenario=self.scenario, name=name).exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(f"{self.scenario.name} already has a schedule named “{name}”.")
        return name

    def clean_host(self):
        host = self.cleaned_data.get("host") or ""
        problem = host_problem(host)
        if problem:
            raise forms.ValidationError(problem)
        version = self.scenario.current_version
        effective = host or self.scenario.default_host or (version.locustfile_host if version else "")
        unlisted = target_policy.unlisted_host(self.scenario.project, effective)
        if unlisted:  # every fire would fail: refuse it now
            raise forms.ValidationError(target_policy.refusal_message(self.scenario.project, unlisted))
        return host

    def clean(self):
        data = super().clean()
        preset = data.get("preset")
        expression = " ".join((data.get("cron") or "").split())
        if preset == Schedule.Preset.CUSTOM:
            if not expression:
                self.add_error("cron", "Write a cron expression, or choose hourly, nightly or weekly.")
            else:
                try:
                    cron.split(expression)
                except cron.CronError as error:
                    self.add_error("cron", str(error))
                data["cron"] = expression
        elif preset:
            kept = " ".join((self.instance.cron or "").split()) if self.instance.pk else ""
            if expression and expression not in (cron.PRESETS[preset], kept):
                # A new expression typed while the timing stayed a preset: saving the preset would drop it.
                self.add_error("cron", f"This expression is used only with the timing “Cron expression”: choose it "
                                       f"above, or clear this field to keep “{Schedule.Preset(preset).label}”.")
            data["cron"] = cron.PRESETS[preset]
        kept = {name: value for name, value in self.options.items()
                if any(getattr(f, "option", {}).get("dest") == name and f.option.get("is_secret")
                       and not data.get(key) for key, f in self.fields.items())}
        self.options = {**kept, **clean_option_fields(self)}
        self.env = clean_env_field(self, self.scenario)
        self.labels = clean_labels_field(self)
        return data

    def save(self, commit=True):
        """With commit, through automation.schedules.save_schedule (the views call that themselves)."""
        self.instance.scenario = self.scenario
        schedule = super().save(commit=False)
        schedule.options = self.options
        schedule.env = self.env
        schedule.labels = self.labels
        if commit:
            schedules.save_schedule(schedule)
        return schedule


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=[Event.RUN_FINISHED, Event.RUN_FAILED, Event.THRESHOLD_BROKEN],
                                       help_text="Run finished: the run ended normally; its payload carries the "
                                                 "verdict (pass or fail). Run failed: it could not run or broke off "
                                                 "(import error, every slot lost). Threshold broken: an abort-on-fail "
                                                 "criterion stopped it while running.")
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https",
                         help_text="Receives a signed JSON POST for each event (http:// or https://)")

    class Meta:
        model = Webhook
        fields = ["url", "events", "enabled"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// URL.")
        # A first look, at save time; every connection checks again what the name resolves to then.
        problem = safe_http.url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url
