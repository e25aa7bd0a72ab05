from django import forms

from runs import cluster, services
from scenarios.forms import DurationField
from scenarios.models import LocustfileVersion, Scenario


class RunForm(forms.Form):
    users = forms.IntegerField(min_value=1, max_value=1_000_000, help_text="Peak number of concurrent users")
    spawn_rate = forms.FloatField(min_value=0.01, max_value=100_000, help_text="Users started per second")
    duration = DurationField(help_text="e.g. 30s, 5m, 1h30m")
    host = forms.URLField(required=False, max_length=500, assume_scheme="http",
                          help_text="Base URL of the system under test")
    slots = forms.IntegerField(min_value=1, max_value=1000, label="Worker slots",
                               help_text="One CPU core each; users and spawn rate are split across them")
    user_classes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             help_text="None ticked: all of them")
    tags = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Only tasks tagged")
    exclude_tags = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             label="Skip tasks tagged")

    def __init__(self, *args, scenario: Scenario, version: LocustfileVersion, **kwargs):
        kwargs.setdefault("initial", {
            "users": scenario.default_users, "spawn_rate": scenario.default_spawn_rate,
            "duration": scenario.default_duration, "host": scenario.default_host, "slots": scenario.default_slots,
        })
        super().__init__(*args, **kwargs)
        self.version = version
        findings = version.findings
        classes = [uc["name"] for uc in findings.get("user_classes", []) if not uc.get("abstract")]
        self.fields["user_classes"].choices = [(name, name) for name in classes]
        tags = findings.get("all_tags", [])
        self.fields["tags"].choices = self.fields["exclude_tags"].choices = [(t, t) for t in tags]
        if any(uc.get("host") for uc in findings.get("user_classes", [])):
            self.fields["host"].help_text = "Leave empty to use the host set in the locustfile"
        if len(classes) < 2:
            del self.fields["user_classes"]
        if not tags:
            del self.fields["tags"], self.fields["exclude_tags"]
        self.has_shape = bool(findings.get("shape"))

    def clean(self):
        data = super().clean()
        host = data.get("host")
        class_hosts = [uc.get("host") for uc in self.version.findings.get("user_classes", [])]
        if "host" in self.errors:
            pass  # "Enter a valid URL." says it already
        elif not host and not any(class_hosts):
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
        return data

    def params(self) -> dict:
        data = self.cleaned_data
        return {
            "users": data["users"], "spawn_rate": data["spawn_rate"], "duration": data["duration"],
            "host": data.get("host") or "", "slots": data["slots"],
            "user_classes": data.get("user_classes") or [], "tags": data.get("tags") or [],
            "exclude_tags": data.get("exclude_tags") or [],
        }


class LiveUsersForm(forms.Form):
    """Users and spawn rate of a running test, changed from its page."""

    users = forms.IntegerField(min_value=0, max_value=1_000_000, help_text="Users to run from now on")
    spawn_rate = forms.FloatField(min_value=0.01, max_value=100_000, help_text="Users started (or stopped) per second")
