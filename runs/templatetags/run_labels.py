"""Run labels in templates: sorted pairs, and links to the runs carrying a label."""

from django import template
from django.http import QueryDict
from django.urls import reverse

from runs import labels as run_labels

register = template.Library()


@register.filter
def label_pairs(labels) -> list[tuple[str, str]]:
    """[(key, value)] sorted by key, as labels are shown everywhere."""
    return run_labels.pairs(labels if isinstance(labels, dict) else {})


@register.simple_tag(takes_context=True)
def label_filter_url(context, project, key, value) -> str:
    """The project's runs carrying this label. On the runs list (`label_query` in the context: its filters
    without the page), the label is added to the filters already applied."""
    text = f"{key}={value}"
    query = context.get("label_query")
    query = query.copy() if isinstance(query, QueryDict) else QueryDict(mutable=True)
    if text not in query.getlist("label"):
        query.appendlist("label", text)
    return f"{reverse('runs-list', args=[project.slug])}?{query.urlencode()}"
