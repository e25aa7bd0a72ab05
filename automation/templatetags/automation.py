"""The Schedules section of the scenario page, drawn here so the scenario view stays as it is."""

from django import template

from automation import schedules as schedule_service
from scenarios.models import Role

register = template.Library()


@register.inclusion_tag("automation/_schedules_section.html", takes_context=True)
def schedules_section(context, scenario, membership):
    rows = []
    for schedule in scenario.schedules.select_related("periodic_task"):
        runs = schedule_service.runs_of(schedule).defer("stats_blob", "totals")[:5]
        rows.append({"schedule": schedule, "next_times": schedule_service.next_fire_times(schedule),
                     "runs": runs, "skips": schedule.skips.all()[:5], "skip_count": schedule.skips.count()})
    return {"scenario": scenario, "rows": rows, "can_edit": membership.allows(Role.MAINTAINER),
            "csrf_token": context.get("csrf_token")}
