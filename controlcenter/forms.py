"""Form pieces more than one page uses."""

from django import forms


def since_field() -> forms.DateField:
    return forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From",
                           error_messages={"invalid": "Write the start date as YYYY-MM-DD."})


def until_field() -> forms.DateField:
    return forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To",
                           error_messages={"invalid": "Write the end date as YYYY-MM-DD."})


class DateRangeChecks:
    """For a form with `since` and `until` (since_field, until_field): the end may not come before the start."""

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", f"The end date {until} is before the start date {since}.")
        return data
