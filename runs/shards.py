"""Collector shards: runs spread over several collectors, each run owned by one.

One collector merges, persists and pushes every run of the cluster, on one thread. When that is
not enough (bench/scale.py measures where: about a thousand slots on a small machine), set
SWARMDECK_COLLECTOR_SHARDS = K and start K collectors (or more: the extra ones stand by):

- A run's shard is fixed at its dispatch (Run.collector_shard = its id mod K) and travels in each
  slot's assignment as the stream to write to (workers.protocol.report_stream: shard 0 keeps
  `sd:reports`, shard k writes `sd:reports:k`).
- Each shard has its own lease (runs.leader.key): the collector holding shard k's reads only
  shard k's stream and drives only shard k's runs (barrier, deadline, lost slots, finish). An
  entry on shard k's stream that names a run of another shard is dropped and counted, never
  merged: two collectors never write one run.
- Admission (the fair queue over every project) stays in one place: the leader of shard 0.
  So does the OTLP export, which reads every active run.
- A collector given no `--shard` takes whichever shard's lease is free, lowest first, and keeps
  it; when it loses it, it tries them all again. K + 1 collectors give every shard a hot standby.

Changing K while runs are active leaves them on the shard they were dispatched to; a shard
beyond the new K then has no collector until K is raised again, so change it between runs.
"""

from __future__ import annotations

from django.conf import settings

from workers import protocol


def count() -> int:
    """How many shards the cluster's runs are spread over (SWARMDECK_COLLECTOR_SHARDS)."""
    return int(settings.SWARMDECK_COLLECTOR_SHARDS)


def for_run(run_id: int) -> int:
    """The shard a run is given at its dispatch."""
    return int(run_id) % count()


def stream(shard: int) -> str:
    return protocol.report_stream(shard)


def streams() -> list[str]:
    """Every shard's report stream."""
    return [protocol.report_stream(shard) for shard in range(count())]


def admits(shard: int) -> bool:
    """Whether the leader of `shard` runs admission (and the other cluster-wide duties)."""
    return shard == 0
