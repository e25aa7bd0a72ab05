"""Run-to-run noise of a scenario, learned from its history (runs/significance.py says how it is used).

Equal runs differ by more than each run's own intervals say: the machine is busier for all of one
run, a cache is colder, and closed-loop users' RPS follows their latency. Only whole runs show it,
so it is read from the base run's history: up to MAX_RUNS finished runs of its scenario with the same
parameters (runs/baseline.py's parameters_key) and the same labels, newest first, the compared runs
left out. Labels say what was tested (`sut_version=1.4.2`): runs of another version are not equal runs.

Each run's figures and their within-run standard deviations (its `profile`) are computed once per
ended run and cached. With fewer than significance.MIN_NOISE_RUNS such runs nothing is known and
nothing is widened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from runs import evidence, significance
from runs.models import Run

MAX_RUNS = 10
CACHE_SECONDS = 24 * 3600

Profile = dict[evidence.Key, dict[str, tuple[float, float]]]   # key -> figure -> (value, within-run sd)


@dataclass(frozen=True)
class Noise:
    """The run-to-run sd of each endpoint's figures, from `runs` earlier equal runs (ids in `run_ids`)."""

    runs: int = 0
    run_ids: tuple[int, ...] = ()
    sd: dict[evidence.Key, dict[str, float]] = field(default_factory=dict)

    def of(self, key: evidence.Key) -> dict[str, float]:
        return self.sd.get(key, {})


NONE = Noise()


def reference_runs(base: Run, exclude: Iterable[int] = ()) -> list[Run]:
    """The base run's equal runs: finished, same scenario, same parameters and labels, newest first."""
    from runs.baseline import equal_runs

    finished = (Run.objects.filter(scenario_id=base.scenario_id, status=Run.Status.FINISHED)
                .exclude(pk__in={*exclude, base.pk}).order_by("-pk"))
    return equal_runs(finished, base.params, MAX_RUNS, labels=base.labels or {})


def profile(run: Run, level: float) -> Profile:
    """Every bounded figure of every endpoint of a run, with its within-run sd; cached once the run ended
    (its statistics no longer change)."""
    from django.core.cache import cache

    if run.status not in Run.TERMINAL or not run.stats_updated_at:
        return _profile(run, level)
    name = f"swarmdeck:noise-profile:v1:{run.pk}:{run.stats_updated_at.timestamp()}:{level}"
    found = cache.get(name)
    if found is None:
        found = _profile(run, level)
        cache.set(name, found, CACHE_SECONDS)
    return found


def _profile(run: Run, level: float) -> Profile:
    found = {}
    for key, sample in evidence.samples(run).items():
        figures = {figure: (estimate.value, significance.within_sd(estimate))
                   for figure, estimate in significance.estimates(sample, level).items() if estimate.bounded}
        if figures:
            found[key] = figures
    return found


def of_history(base: Run, level: float, exclude: Iterable[int] = ()) -> Noise:
    """The run-to-run noise around the base run, from its equal runs (none with too few of them)."""
    runs = reference_runs(base, exclude)
    if len(runs) < significance.MIN_NOISE_RUNS:
        return Noise(runs=len(runs), run_ids=tuple(r.pk for r in runs))
    return spread([profile(run, level) for run in runs], tuple(r.pk for r in runs))


def spread(profiles: list[Profile], run_ids: tuple[int, ...] = ()) -> Noise:
    """Noise from the profiles of equal runs (pure): each figure's between_run_sd over the runs that have it."""
    values: dict[tuple, list[tuple[float, float]]] = {}
    for found in profiles:
        for key, figures in found.items():
            for figure, pair in figures.items():
                values.setdefault((key, figure), []).append(pair)
    sd: dict[evidence.Key, dict[str, float]] = {}
    for (key, figure), pairs in values.items():
        between = significance.between_run_sd([v for v, _ in pairs], [w for _, w in pairs])
        if between > 0:
            sd.setdefault(key, {})[figure] = between
    return Noise(runs=len(profiles), run_ids=run_ids, sd=sd)
