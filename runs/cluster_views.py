"""The Cluster page's admin controls (stop everything, drain a load worker) and its slot grid."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from runs import cluster, cluster_control
from runs.models import Run


def staff_required(view):
    """Cluster-wide controls are for admins (user.is_staff): everyone else gets 403."""
    @wraps(view)
    def checked(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only an admin may do this.")
        return view(request, *args, **kwargs)
    return checked


@staff_required
def stop_all(request):
    """GET: what would be stopped, and a confirm button (it affects every team). POST: stop it all."""
    if request.method == "POST":
        done = cluster_control.stop_everything(request.user)
        if done.total:
            messages.success(request, f"Stop everything: {len(done.stopped)} run{'s' if len(done.stopped) != 1 else ''}"
                                      f" stopping, {len(done.cancelled)} cancelled, in {len(done.projects)} "
                                      f"project{'s' if len(done.projects) != 1 else ''}.")
        else:
            messages.info(request, "Stop everything: no run was active.")
        return redirect("runs-cluster")
    runs = cluster_control.stoppable_runs()
    return render(request, "runs/cluster_stop_all.html", {
        "running": sum(1 for run in runs if run.status == Run.Status.RUNNING),
        "cancelling": sum(1 for run in runs if run.status != Run.Status.RUNNING),
        "projects": sorted(Counter(run.project.name for run in runs).items()),
    })


def _known_worker(request) -> str:
    name = request.POST.get("worker", "")
    if name not in {worker.name for worker in cluster.workers()}:
        raise Http404("No such load worker.")
    return name


@require_POST
@staff_required
def drain(request):
    name = _known_worker(request)
    if cluster_control.drain(name, request.user):
        messages.success(request, f"{name} is draining: it takes no new slots and finishes its current ones.")
    else:
        messages.info(request, f"{name} was draining already.")
    return redirect(reverse("runs-cluster") + "#workers")


@require_POST
@staff_required
def undrain(request):
    name = _known_worker(request)
    if cluster_control.undrain(name, request.user):
        messages.success(request, f"{name} takes slots again.")
    else:
        messages.info(request, f"{name} was not draining.")
    return redirect(reverse("runs-cluster") + "#workers")


# -- the slot grid -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlotCell:
    """One slot as the Cluster page shows it: free, or busy with a run the viewer may or may not see."""

    busy: bool
    run: Run | None = None  # set only when the viewer may see the run's project
    slot: int | None = None

    @property
    def label(self) -> str:
        if not self.busy:
            return "free"
        return f"#{self.run.pk}" if self.run else "busy"

    @property
    def title(self) -> str:
        if not self.busy:
            return "free"
        if self.run is None:
            return "busy with another project's run"
        return f"busy: slot {self.slot} of run #{self.run.pk} {self.run.scenario.name} ({self.run.project.name})"


def slot_rows(workers: list[cluster.Worker], visible_projects: set[int]) -> list[tuple[cluster.Worker, list[SlotCell]]]:
    """Each worker with one cell per slot; a busy slot names its run only to members of the run's project."""
    run_ids = {lease.run for worker in workers for lease in worker.leases}
    runs = {run.pk: run for run in Run.objects.filter(pk__in=run_ids, project_id__in=visible_projects)
            .select_related("project", "scenario").only("pk", "project", "scenario", "project__name", "scenario__name")}
    rows = []
    for worker in workers:
        cells = [SlotCell(busy=False) if lease is None
                 else SlotCell(busy=True, run=runs.get(lease.run), slot=lease.slot) for lease in worker.slot_cells]
        rows.append((worker, cells if worker.online else []))
    return rows
