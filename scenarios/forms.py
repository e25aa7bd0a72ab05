"""Forms for projects, scenarios, locustfile uploads and members.

A locustfile is checked in the form (bundle safety, then static analysis) so that a bad
upload comes back as a form error and nothing is stored.
"""

import os

from django import forms
from django.utils.text import slugify

from scenarios import analysis, bundles
from scenarios import secrets as project_secrets
from scenarios.durations import format_duration, parse_duration
from scenarios.models import Project, Role, Scenario


class ProjectForm(forms.ModelForm):
    slug = forms.SlugField(
        required=False, max_length=60, help_text="Used in URLs. Leave empty to derive it from the name."
    )

    class Meta:
        model = Project
        fields = ["name", "slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_slug(self):
        slug = self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name", ""))[:60]
        if not slug:
            raise forms.ValidationError("Give the project a slug made of letters, digits, - or _.")
        taken = Project.objects.filter(slug=slug).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"The slug “{slug}” is taken; choose another.")
        return slug


class DurationField(forms.CharField):
    """Seconds, typed the way Locust's -t takes them: 90, 30s, 5m, 1h30m."""

    def prepare_value(self, value):
        return format_duration(value) if isinstance(value, int) else value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        if not 1 <= seconds <= 7 * 24 * 3600:
            raise forms.ValidationError("Choose a duration between 1 second and 7 days.")
        return seconds


class LocustfileField(forms.FileField):
    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            "A single .py (up to 1 MB) or a .zip bundle (up to 10 MB) with locustfile.py at its root, "
            "helper modules and data files beside it. It is analysed, never executed.",
        )
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs={"accept": ".py,.zip"}))
        super().__init__(**kwargs)


class LocustfileUploadMixin:
    """Validates the `locustfile` field into `self.bundle`, `self.raw` and `self.findings`.

    When the analysis fails, `self.locustfile_error` keeps the structured error (file, line,
    column, source line) for the template to show beside the plain message.
    """

    bundle = raw = findings = locustfile_error = None

    def clean_locustfile(self):
        upload = self.cleaned_data["locustfile"]
        name = os.path.basename(upload.name or "")
        extension = os.path.splitext(name)[1].lower()
        limit = {".py": bundles.MAX_PY_BYTES, ".zip": bundles.MAX_ZIP_BYTES}.get(extension)
        if limit is not None and upload.size > limit:
            # Refuse before reading a byte of it into memory.
            raise forms.ValidationError(
                f"{name} is {upload.size / 1048576:.1f} MB; the limit for a {extension} upload is "
                f"{limit // 1048576} MB."
            )
        raw = upload.read() if limit is not None else b""
        try:
            bundle = bundles.read_upload(name, raw)
            findings = analysis.analyze(bundle.sources)
        except bundles.BundleError as error:
            raise forms.ValidationError(error.message) from None
        except analysis.LocustfileError as error:
            if extension == ".py":
                error.name_single_file(bundles.ENTRY_POINT, name)
            self.locustfile_error = error  # shown once, with the quoted line, above the form
            raise forms.ValidationError("This locustfile cannot be used as it is (details above).") from None
        self.bundle, self.raw, self.findings = bundle, raw, findings
        return upload


# A host field's error for what is not a URL Locust can test ("Enter a valid URL." says neither what nor how).
HOST_ERRORS = {"invalid": "Enter an http:// or https:// URL with a host name, e.g. https://shop.example.com."}


class ScenarioForm(forms.ModelForm):
    default_host = forms.URLField(
        label="Host", required=False, max_length=500, assume_scheme="http", error_messages=HOST_ERRORS,
        help_text="Base URL of the system under test, e.g. http://127.0.0.1:8089",
    )
    default_duration = DurationField(label="Duration", initial=60, help_text="e.g. 90, 30s, 5m, 1h30m")
    env_text = forms.CharField(
        label="Environment variables", required=False, widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="One NAME=VALUE per line; the locustfile reads them from os.environ. Visible to every member: "
                  "put credentials in project secrets instead.")
    secret_names = forms.MultipleChoiceField(
        label="Secrets it receives", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Project secrets set as environment variables of its runs; their values are masked in logs, "
                  "errors and reports.")

    class Meta:
        model = Scenario
        fields = [
            "name",
            "description",
            "default_host",
            "default_users",
            "default_spawn_rate",
            "default_duration",
            "default_slots",
        ]
        labels = {
            "default_users": "Users",
            "default_spawn_rate": "Spawn rate",
            "default_slots": "Worker slots",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, project: Project, **kwargs):
        self.project = project
        super().__init__(*args, **kwargs)
        # PositiveIntegerField's form field says min=0; the model's validators say 1: tell the browser so.
        for name in ("default_users", "default_slots"):
            self.fields[name].min_value = 1
            self.fields[name].widget.attrs["min"] = 1
        self.fields["default_spawn_rate"].widget.attrs["min"] = 0.01
        self.fields["secret_names"].choices = [(name, name) for name in
                                               project.secrets.values_list("name", flat=True)] if project.pk else []
        if self.instance.pk and not self.is_bound:
            from workers.envvars import as_lines

            self.initial["env_text"] = as_lines(self.instance.env_vars)
            self.initial["secret_names"] = list(self.instance.secret_names or [])
        if not self.fields["secret_names"].choices:
            self.fields["secret_names"].help_text = ("This project has no secrets yet: a maintainer adds them on the "
                                                     "project's Secrets page.")

    def clean(self):
        from workers.envvars import parse_lines

        data = super().clean()
        try:
            variables = parse_lines(data.pop("env_text", "") or "")
        except ValueError as problem:
            self.add_error("env_text", str(problem))
            return data
        try:
            data["env_vars"], data["secret_names"] = project_secrets.check_environment(
                self.project, variables, list(data.get("secret_names") or []))
        except project_secrets.EnvironmentRefused as refused:
            for key, messages in refused.errors.items():
                for message in messages:
                    self.add_error("env_text" if key == "variables" else "secret_names", message)
        return data

    def save(self, commit=True):
        self.instance.env_vars = self.cleaned_data.get("env_vars") or {}
        self.instance.secret_names = self.cleaned_data.get("secret_names") or []
        return super().save(commit)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Scenario.objects.filter(project=self.project, name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"{self.project.name} already has a scenario named “{name}”.")
        return name


class NewScenarioForm(LocustfileUploadMixin, ScenarioForm):
    locustfile = LocustfileField()

    class Meta(ScenarioForm.Meta):
        fields = ["name", "locustfile"] + ScenarioForm.Meta.fields[1:]


class UploadVersionForm(LocustfileUploadMixin, forms.Form):
    locustfile = LocustfileField(label="New locustfile version")
    comment = forms.CharField(required=False, max_length=200, help_text="What changed (optional)")


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SecretForm(forms.Form):
    """A project secret, created or replaced: the value is a password input that is never filled in."""

    name = forms.CharField(max_length=100, help_text="An environment variable name, e.g. API_TOKEN")
    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}), strip=False,
        help_text="Stored encrypted; after saving no one sees it again, maintainers included. Saving an existing "
                  "name replaces its value.")

    def clean_name(self):
        from workers.envvars import name_problem

        name = self.cleaned_data["name"].strip()
        problem = name_problem(name)
        if problem:
            raise forms.ValidationError(problem)
        return name

    def clean(self):
        data = super().clean()
        if data.get("name") and data.get("value") is not None:
            problem = project_secrets.secret_value_problem(data["name"], data["value"])
            if problem:
                self.add_error("value", problem)
        return data
