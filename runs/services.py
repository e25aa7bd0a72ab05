"""Starting, cancelling, stopping and dispatching runs. The collector drives the rest."""

import base64
import logging
import time
from urllib.parse import urlsplit

import redis as redis_lib
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.utils import timezone

from audit.log import record
from controlcenter.celery import app as celery_app
from controlcenter.env import envint
from runs import cluster, health, live, shards
from runs import labels as run_labels
from runs import signals as run_signals
from runs.models import Run, RunSlot
from runs.redis import client
from scenarios import options as locust_options
from scenarios import secrets as project_secrets
from scenarios.models import Scenario
from workers import envvars, protocol, stats

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10.0
IMPORT_TIMEOUT = float(envint("SWARMDECK_IMPORT_TIMEOUT", 30, minimum=1))  # read by the collector, which dispatches
START_TIMEOUT = float(envint("SWARMDECK_START_TIMEOUT", 60, minimum=1))


def host_problem(host: str | None) -> str | None:
    """Why a host cannot be load-tested by Locust's HTTP users, or None."""
    if not host:
        return None
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"“{host}” is not an http:// or https:// URL with a host name."
    if parts.query or parts.fragment:
        return ("Leave the query string and fragment out of the host: each request's path is appended to it "
                "(a path prefix such as https://example.com/api is fine).")
    return None


def capacity_problem(slots: int) -> str | None:
    """Why a run of this many slots cannot start on the cluster as it is now, or None."""
    total = cluster.capacity()
    if total == 0 and cluster.unisolated_slots():
        return ("No isolated load worker is online: the workers online cannot sandbox locustfiles and take no runs. "
                "Install bubblewrap on them (apt-get install bubblewrap) and restart them, or allow unisolated "
                "workers with SWARMDECK_REQUIRE_ISOLATION=0 (see the Cluster page).")
    if total == 0 and cluster.drained_slots():
        return ("Every load worker online is drained by an admin (maintenance): it takes no new slots. The run "
                "would wait until an admin undrains one (see the Cluster page).")
    if total == 0:
        return "No load worker is online: start one (see the Cluster page) and try again."
    if slots > total:
        return (f"The cluster has {total} slot{'s' if total != 1 else ''} online and this run asks for {slots}: "
                "ask for fewer, or add a load-generator machine (see the Cluster page).")
    return None


def collector_running() -> bool:
    return health.collector_alive()


class RunError(Exception):
    """A run cannot be started or changed; the message is shown to the user."""


class BrokerUnavailable(RunError):
    """Redis is unreachable: nothing was created (the API answers 503)."""


class OptionsRefused(RunError):
    """The locustfile's custom options were given values that do not fit; `errors` maps each option to why."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def clean_options(version, given) -> dict:
    """`given` checked and converted against the options `version` declares (scenarios.options)."""
    try:
        return locust_options.clean(version.findings, given)
    except locust_options.OptionError as problem:
        raise OptionsRefused(problem.errors) from None


class LabelsRefused(RunError):
    """Labels that do not fit (runs/labels.py); `errors` holds one sentence per problem, each naming its label."""

    field = "labels"

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(" ".join(errors))


class EnvRefused(RunError):
    """Environment variable overrides that do not fit (bad or reserved name, a secret's name, too large)."""


def run_environment(scenario: Scenario, overrides: dict | None) -> tuple[dict, list[str]]:
    """The variables a run gets (the scenario's, with the run's overrides) and the secrets it receives, by name.

    Overrides may change or add variables, never a secret. A secret the scenario names that the
    project no longer has, or that does not decrypt (SECRET_KEY changed), refuses the run.
    """
    secret_names = list(scenario.secret_names or [])
    if overrides:
        try:
            overrides = envvars.check_variables(overrides)
        except ValueError as problem:
            raise EnvRefused(str(problem)) from None
        clash = sorted(set(overrides) & set(secret_names))
        if clash:
            raise EnvRefused(f"{', '.join(clash)} {'is a secret' if len(clash) == 1 else 'are secrets'} this scenario "
                             "receives: a run cannot override a secret (a maintainer replaces it on the project's "
                             "Secrets page).")
    variables = {**(scenario.env_vars or {}), **(overrides or {})}
    try:
        variables = envvars.check_variables(variables)
    except ValueError as problem:
        raise EnvRefused(str(problem)) from None
    try:
        project_secrets.values(scenario.project, secret_names)
    except KeyError as missing:
        raise RunError(f"This scenario receives the secret {missing.args[0]}, which the project "
                       f"{scenario.project.name} no longer has: a maintainer sets it again on the project's "
                       "Secrets page, or unticks it on the scenario's edit page.") from None
    except project_secrets.SecretUnreadable as problem:
        raise RunError(str(problem)) from None
    return variables, secret_names


def run_params(scenario: Scenario, overrides: dict | None = None) -> dict:
    """The scenario's defaults with the given overrides: the frozen parameters of a new run."""
    params = {
        "users": scenario.default_users,
        "spawn_rate": scenario.default_spawn_rate,
        "duration": scenario.default_duration,
        "host": scenario.default_host,
        "slots": scenario.default_slots,
        "user_classes": [],
        "tags": [],
        "exclude_tags": [],
        "stop_timeout": DEFAULT_STOP_TIMEOUT,
        "options": {},
        "env": {},
    }
    params.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return params


@transaction.atomic
def start_run(scenario: Scenario, *, user=None, params: dict | None = None, trigger=Run.Trigger.MANUAL,
              trigger_detail: dict | None = None, labels: dict | None = None) -> Run:
    version = scenario.current_version
    if version is None:
        raise RunError(f"{scenario.name} has no locustfile yet: upload one first.")
    frozen = run_params(scenario, params)
    # The locustfile's own command-line options, by dest, as `locust --region eu` would set them.
    frozen["options"] = clean_options(version, frozen.get("options"))
    frozen["secret_options"] = locust_options.secret_names(version.findings, frozen["options"])
    # Variables with their values (members see them); secrets by name only: values are read at dispatch.
    frozen["env"], frozen["secrets"] = run_environment(scenario, frozen.get("env"))
    try:
        labels = run_labels.clean(labels)  # what the run tested, frozen with it (sut_version=1.4.2)
    except run_labels.LabelError as problem:
        raise LabelsRefused(problem.messages) from None
    if not frozen["host"] and not version.locustfile_host:
        raise RunError("Set a host: neither the run nor the locustfile's user classes name one.")
    problem = host_problem(frozen["host"])
    if problem:
        raise RunError(problem)
    from targets.policy import check_run_target  # targets builds on this module

    check_run_target(scenario.project, frozen["host"] or version.locustfile_host)  # TargetNotAllowed names the host
    from sharing import quotas  # sharing builds on this module

    quotas.check_start(scenario.project, frozen)  # QuotaRefused names the cap
    if not health.redis_reachable():  # a queued run nobody could dispatch: create nothing
        raise BrokerUnavailable("The broker (Redis) is unreachable, so the run was not created. Swarmdeck "
                                "reconnects by itself: try again in a moment.")
    run = Run(project=scenario.project, scenario=scenario, version=version, params=frozen, trigger=trigger,
              trigger_detail=trigger_detail or {}, created_by=user if user and user.is_authenticated else None,
              labels=labels)
    run.record(Run.Status.QUEUED, f"by {user.username}" if user and user.is_authenticated else trigger)
    run.save()
    log.info("Run %s of scenario %s queued: %s.", run.pk, scenario.pk, locust_options.masked_params(frozen))
    record("run.started", actor=user, project=scenario.project, subject=f"run #{run.pk} of {scenario.name}",
           details={"run": run.pk, "scenario": scenario.pk, "version": version.number, "trigger": trigger,
                    **_audited_params(frozen), **({"labels": labels} if labels else {})})
    return run


def _audited_params(params: dict) -> dict:
    """What the audit log keeps of a run's parameters: the load and the host, not options or variables (an
    option may be a secret one)."""
    return {name: params.get(name) for name in ("users", "spawn_rate", "duration", "slots", "host")}


def queue_position(run: Run) -> int | None:
    """1-based position among queued runs of every project, in the fair queue's order (sharing.queue)."""
    entry = queue_entry(run)
    return entry.position if entry else None


def queue_entry(run: Run):
    """The queued run's place in the fair queue (sharing.queue.Entry: position, reason, estimated start), or None."""
    if run.status != Run.Status.QUEUED:
        return None
    from sharing import queue

    return queue.plan().of(run.pk)


def split(total: int, parts: int) -> list[int]:
    """Users per slot (workers.protocol.share for each)."""
    return [protocol.share(total, parts, index) for index in range(parts)]


def dispatch(run: Run) -> bool:
    """queued -> dispatching: create slot rows, open the control hash, send one task per slot.

    The conditional update makes a second collector (or a retry) a no-op.
    """
    token = Run.new_token()
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.DISPATCHING, token=token, dispatched_at=timezone.now(),
            collector_shard=shards.for_run(run.pk))
        if not claimed:
            return False
        run.refresh_from_db()
        run.record(Run.Status.DISPATCHING, f"{run.slots_requested} slot(s)")
        Run.objects.filter(pk=run.pk).update(history=run.history)
        RunSlot.objects.bulk_create(RunSlot(run=run, index=i) for i in range(run.slots_requested))
    try:
        slot_assignments = assignments(run)
    except (KeyError, project_secrets.SecretUnreadable) as problem:
        reason = (str(problem) if isinstance(problem, project_secrets.SecretUnreadable) else
                  f"The secret {problem.args[0]} was deleted before the run started: set it again, or untick it on "
                  "the scenario's edit page.")
        run.record(Run.Status.FAILED, reason)
        Run.objects.filter(pk=run.pk, status=Run.Status.DISPATCHING).update(
            status=Run.Status.FAILED, reason=reason, ended_at=timezone.now(), history=run.history)
        log.warning("Run %s failed at dispatch: %s", run.pk, reason)
        live.publish_meta(run.pk)
        announce_end(run)
        return True
    write_control(run.pk, {"token": token, "users": run.params["users"], "spawn_rate": run.params["spawn_rate"]})
    for assignment in slot_assignments:
        celery_app.send_task(protocol.SLOT_TASK, args=[assignment], queue=protocol.LOADGEN_QUEUE)
    log.info("Run %s dispatched to %s slot(s).", run.pk, run.slots_requested)
    live.publish_meta(run.pk)
    return True


def assignments(run: Run) -> list[dict]:
    """One task argument per slot. It carries the run's secrets decrypted (`secrets`), through the broker:
    never stored in the database, Run.params or a log (see the README, "Secrets")."""
    params = run.params
    secret_values = project_secrets.values(run.project, params.get("secrets") or [])
    slots = run.slots_requested
    users = split(params["users"], slots)
    content = base64.b64encode(bytes(run.version.content)).decode()
    from targets.policy import pool_targets

    allow_list = pool_targets(run.project)
    bundle = {"kind": run.version.kind, "content_b64": content, "sha256": run.version.sha256}
    return [
        {
            "run": run.pk, "slot": index, "slots": slots, "token": run.token, "bundle": bundle,
            "stream": shards.stream(run.collector_shard),  # its collector shard's report stream
            "params": {
                "users": users[index],
                "spawn_rate": float(params["spawn_rate"]) / slots,
                "share": 1.0 / slots,
                "host": params.get("host") or "",
                "duration": float(params.get("duration") or 0),
                "user_classes": params.get("user_classes") or [],
                "tags": params.get("tags") or [],
                "exclude_tags": params.get("exclude_tags") or [],
                "stop_timeout": float(params.get("stop_timeout") or DEFAULT_STOP_TIMEOUT),
                "options": params.get("options") or {},
                "targets": allow_list,  # the pool's HTTP clients keep to it (workers/pool_target_guard.py)
                "max_endpoints": max_endpoints(),  # it folds names past them into "(other)", as the collector
            },
            "env": dict(params.get("env") or {}),
            "secrets": secret_values,
            "timeouts": {"import": IMPORT_TIMEOUT, "start": START_TIMEOUT, "keys_after_end": keys_after_end()},
            "require_isolation": cluster.require_isolation(),
        }
        for index in range(slots)
    ]


def restore_control(run: Run) -> None:
    """Write a run's control hash from the database (after Redis lost it): the slots go on."""
    mapping = {"token": run.token, "users": run.params.get("live_users", run.params["users"]),
               "spawn_rate": run.params.get("live_spawn_rate", run.params["spawn_rate"])}
    if run.started_at:  # in Redis's clock, as the barrier wrote it (near enough: the run has started)
        mapping["go_at"] = repr(protocol.redis_now(client()) - (timezone.now() - run.started_at).total_seconds())
    if run.status == Run.Status.STOPPING:
        mapping["stop"] = "1"
    if client().exists(protocol.control_key(run.pk)):
        return
    write_control(run.pk, mapping)
    log.info("Run %s: control hash restored from the database.", run.pk)


def signal_stop(run_id: int) -> None:
    write_control(run_id, {"stop": "1"})


# -- a run's keys in Redis ---------------------------------------------------------------------
def max_endpoints() -> int:
    """Distinct endpoint names a run keeps apart (SWARMDECK_MAX_ENDPOINTS): the collector and the pools."""
    return int(getattr(settings, "SWARMDECK_MAX_ENDPOINTS", stats.MAX_ENDPOINTS))


def keys_after_end() -> int:
    """Seconds a run's claim and control keys stay once it ended (SWARMDECK_RUN_KEYS_AFTER_END)."""
    return int(getattr(settings, "SWARMDECK_RUN_KEYS_AFTER_END", protocol.RUN_KEYS_AFTER_END_SECONDS))


def write_control(run_id: int, mapping: dict) -> None:
    """HSET fields of a run's control hash (write_controls for one run)."""
    write_controls({run_id: mapping})


def write_controls(mappings: dict[int, dict]) -> None:
    """HSET fields of runs' control hashes, by run id, in one round trip. A hash this creates (at dispatch, or
    again after Redis lost it) expires after protocol.RUN_KEY_TTL_SECONDS, a bound for runs that never end (a
    second round trip); one that exists keeps its expiry, so an ended run's stays short (expire_run_keys)."""
    if not mappings:
        return
    keys = [protocol.control_key(run_id) for run_id in mappings]
    pipe = client().pipeline(transaction=True)
    for key, mapping in zip(keys, mappings.values(), strict=True):
        pipe.hset(key, mapping=mapping)
    for key in keys:
        pipe.ttl(key)
    ttls = pipe.execute()[len(keys):]
    created = [key for key, ttl in zip(keys, ttls, strict=True) if ttl == -1]  # -1: no expiry yet
    if created:
        pipe = client().pipeline(transaction=False)
        for key in created:
            pipe.expire(key, protocol.RUN_KEY_TTL_SECONDS)
        pipe.execute()


def expire_run_keys(run: Run) -> None:
    """The run ended: its control hash says stop (to a slot task that arrives late) and expires with its slots'
    claims after keys_after_end() seconds. Redis unreachable: they keep their bound (one log line)."""
    seconds = keys_after_end()
    try:
        pipe = client().pipeline(transaction=True)
        pipe.hset(protocol.control_key(run.pk), "stop", "1")
        pipe.expire(protocol.control_key(run.pk), seconds)
        for index in range(run.slots_requested):
            pipe.expire(protocol.claim_key(run.pk, index), seconds)
        pipe.execute()
    except (redis_lib.ConnectionError, redis_lib.TimeoutError) as error:
        log.warning("Run %s ended, but its Redis keys could not be set to expire (%s): they expire within %s days.",
                    run.pk, error, protocol.RUN_KEY_TTL_SECONDS // 86400)


def announce_end(run: Run) -> None:
    """After a run reached finished, failed or cancelled: run_ended goes out, and its Redis keys expire soon."""
    run_signals.run_ended.send(sender=Run, run_id=run.pk)
    expire_run_keys(run)


def cancel_run(run: Run, user=None) -> bool:
    """Cancel a run that has not started its users yet."""
    note = f"by {user.username}" if user else ""
    for status in (Run.Status.QUEUED, Run.Status.DISPATCHING, Run.Status.STARTING):
        run.refresh_from_db()
        if run.status != status:
            continue
        run.record(Run.Status.CANCELLED, note)
        if Run.objects.filter(pk=run.pk, status=status).update(
            status=Run.Status.CANCELLED, ended_at=timezone.now(), reason=f"Cancelled {note}".strip(),
            history=run.history,
        ):
            if status != Run.Status.QUEUED:
                signal_stop(run.pk)
            live.publish_meta(run.pk)
            log.info("Run %s cancelled %s.", run.pk, note)
            record("run.cancelled", actor=user, project=run.project, subject=f"run #{run.pk}",
                   details={"run": run.pk, "was": status})
            announce_end(run)
            return True
    return False


def request_stop(run: Run, user=None, note: str = "", audit_action: str | None = "run.stopped") -> bool:
    """running -> stopping: every slot stops its users within the stop timeout, then sends its final snapshot.

    The audit log records the stop as `audit_action` ("run.aborted" for a broken criterion), or not at
    all with None (the run reached its duration: nobody changed anything)."""
    run.refresh_from_db()
    if run.status in (Run.Status.QUEUED, Run.Status.DISPATCHING, Run.Status.STARTING):
        return cancel_run(run, user)
    if run.status != Run.Status.RUNNING:
        return False
    note = note or (f"stopped by {user.username}" if user else "stopped")
    run.record(Run.Status.STOPPING, note)
    updated = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=Run.Status.STOPPING, stopping_at=timezone.now(), stop_requested_by=user, history=run.history)
    if updated:
        signal_stop(run.pk)
        live.publish_meta(run.pk)
        log.info("Run %s stopping: %s.", run.pk, note)
        if audit_action:
            record(audit_action, actor=user, project=run.project, subject=f"run #{run.pk}",
                   details={"run": run.pk, "note": note})
    return bool(updated)


def change_users(run: Run, *, users: int, spawn_rate: float, user=None) -> None:
    """Change a running test's users and spawn rate, as Locust's "Edit" does; slots get their share."""
    run.refresh_from_db()
    if run.status != Run.Status.RUNNING:
        raise RunError(f"Run #{run.pk} is {run.get_status_display().lower()}: users can change only while it runs.")
    if run.version.findings.get("shape"):
        raise RunError("This locustfile's LoadTestShape decides the users: they cannot be changed by hand.")
    from sharing import quotas

    quotas.check_users(run.project, users, run.slots_requested)
    note = f"users → {users} at {spawn_rate:g}/s" + (f" by {user.username}" if user else "")
    run.record(run.status, note)
    params = {**run.params, "live_users": users, "live_spawn_rate": spawn_rate}
    if not Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(history=run.history, params=params):
        raise RunError(f"Run #{run.pk} stopped in the meantime.")
    write_control(run.pk, {"users": users, "spawn_rate": spawn_rate})
    record("run.users_changed", actor=user, project=run.project, subject=f"run #{run.pk}",
           details={"users": users, "spawn_rate": spawn_rate})
    log.info("Run %s: %s.", run.pk, note)
    live.publish_meta(run.pk)


def wait_until_done(run: Run, timeout: float | None = None, poll: float = 0.5) -> Run:
    """Poll until the run ends; a database outage meanwhile is waited out (one log line)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    outage = False
    while True:
        try:
            run.refresh_from_db()
        except (OperationalError, InterfaceError) as error:
            if not outage:
                log.warning("The database is unreachable (%s); still waiting for run %s.", error, run.pk)
                outage = True
            connections.close_all()
            if deadline is not None and time.monotonic() > deadline:
                return run
            time.sleep(poll)
            continue
        outage = False
        if run.status in Run.TERMINAL:
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll)
