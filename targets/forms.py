from django import forms

from targets.models import AllowedTarget
from workers.target_rules import PatternError, parse


class ProposeForm(forms.Form):
    pattern = forms.CharField(
        max_length=255, label="Host, wildcard or range",
        help_text="api.example.com, api.example.com:8443, *.staging.example.com or 203.0.113.0/24 "
                  "(a pasted URL counts as its host and port)")
    note = forms.CharField(max_length=500, required=False, label="What it is",
                           help_text="For the admin who approves it")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_pattern(self):
        try:
            pattern = parse(self.cleaned_data["pattern"])
        except PatternError as error:
            raise forms.ValidationError(str(error)) from None
        existing = AllowedTarget.objects.filter(project=self.project, pattern=pattern.text).first()
        if existing is not None and existing.status != AllowedTarget.Status.REJECTED:
            state = existing.get_status_display().lower()
            raise forms.ValidationError(f"{pattern.text} is already on the list ({state}).")
        return pattern


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(max_length=500, required=False)
