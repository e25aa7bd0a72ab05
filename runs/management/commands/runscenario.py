"""Run a locustfile or a scenario through the cluster, headless, like `locust --headless`."""

import json
import logging
import signal
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit import log as audit_log
from runs import labels as run_labels
from runs import reporting, reports, services
from runs.models import Run
from scenarios import analysis, bundles
from scenarios.durations import parse_duration
from scenarios.models import Membership, Project, Role, Scenario
from scenarios.options import masked_params
from scenarios.services import add_version, create_project, create_scenario, same_as_current
from workers import envvars

EXIT_OK, EXIT_FAILURES, EXIT_COULD_NOT_RUN = 0, 1, 2


def exit_code(run: Run) -> int:
    """0: finished without failures and not failing its criteria; 1: failures, failed mid-run or
    verdict fail; 2: could not run (never started, cancelled, timed out in the queue)."""
    if run.status == Run.Status.FINISHED:
        return EXIT_OK if run.total_failures == 0 and run.verdict != Run.Verdict.FAIL else EXIT_FAILURES
    if run.status == Run.Status.FAILED and run.started_at is not None:
        return EXIT_FAILURES
    return EXIT_COULD_NOT_RUN


def why_exit(run: Run) -> str:
    code = exit_code(run)
    if code == EXIT_OK:
        return "finished without failures"
    if code == EXIT_COULD_NOT_RUN:
        return f"the run could not run ({run.status})"
    reasons = []
    if run.total_failures:
        reasons.append(f"{run.total_failures:,} failed request{'s' if run.total_failures != 1 else ''}")
    if run.verdict == Run.Verdict.FAIL:
        reasons.append("pass/fail criteria failed")
    if run.status == Run.Status.FAILED:
        reasons.append("the run failed after it started")
    return ", ".join(reasons)


class Command(BaseCommand):
    help = ("Run LOCUSTFILE_OR_SCENARIO_ID on the cluster, wait for it, print Locust's summary. "
            "Exit 0: finished without failures; 1: failures, failed mid-run or pass/fail criteria failed; "
            "2: could not run.")

    def add_arguments(self, parser):
        parser.add_argument("target", help="Path to a locustfile (.py or .zip bundle) or a scenario id")
        parser.add_argument("-u", "--users", type=int)
        parser.add_argument("-r", "--spawn-rate", type=float)
        parser.add_argument("-t", "--run-time", help="e.g. 30s, 5m, 1h30m")
        parser.add_argument("--host")
        parser.add_argument("--slots", type=int)
        parser.add_argument("--project", default="cli", help="Project slug for a locustfile path (created if missing)")
        parser.add_argument("--user", help="Username the run is started as (default: the first superuser)")
        parser.add_argument("--json", dest="json_file", help="Write a JSON summary to this file")
        parser.add_argument("--csv", dest="csv_prefix",
                            help="Write PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv and "
                                 "PREFIX_exceptions.csv with Locust's columns")
        parser.add_argument("--timeout", type=float, help="Give up waiting after this many seconds (exit 2)")
        parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE", dest="locust_options",
                            help="Set one of the locustfile's own command-line options (init_command_line_parser), "
                                 "e.g. --option region=eu; repeatable")
        parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", dest="env",
                            help="Set an environment variable of the run (overrides the scenario's; not a secret), "
                                 "e.g. --env API_HOST=https://staging.example.com; repeatable")
        parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", dest="labels",
                            help="Label the run with what it tests, e.g. --label sut_version=1.4.2 --label "
                                 "env=staging; repeatable. History and trends filter by labels")

    def handle(self, *args, **options):
        logging.getLogger("runs").setLevel(logging.WARNING)  # the command says what happens itself
        try:
            with audit_log.via("cli"):
                code = self.run(options)
        except CommandError as error:
            self.stderr.write(f"runscenario: {error}")
            code = EXIT_COULD_NOT_RUN
        sys.exit(code)

    def run(self, options) -> int:
        labels = self.run_labels(options.get("labels") or [])  # before a locustfile is stored for nothing
        user = self.resolve_user(options.get("user"))
        scenario = self.resolve_scenario(options["target"], options["project"], user)
        overrides = {"users": options.get("users"), "spawn_rate": options.get("spawn_rate"),
                     "host": options.get("host"), "slots": options.get("slots")}
        if options.get("run_time"):
            try:
                overrides["duration"] = parse_duration(options["run_time"])
            except ValueError as error:
                raise CommandError(str(error)) from None
        for name in ("users", "spawn_rate", "slots"):
            if overrides[name] is not None and overrides[name] <= 0:
                raise CommandError(f"--{name.replace('_', '-')} must be positive.")
        overrides["options"] = self.locust_options(scenario, options.get("locust_options") or [])
        overrides["env"] = self.env_overrides(options.get("env") or [])
        # Waiting would never end without a collector and enough load workers: say so now.
        if not services.collector_running():
            raise CommandError("No collector is running, so no run would ever start: start Swarmdeck (`make run`, "
                               "or `manage.py collect` beside your web server) and try again.")
        problem = services.capacity_problem(services.run_params(scenario, overrides)["slots"])
        if problem:
            raise CommandError(problem)
        try:
            run = services.start_run(scenario, user=user, params=overrides, trigger=Run.Trigger.CLI, labels=labels)
        except services.RunError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Run #{run.pk} of “{scenario.name}” queued: {run.params['users']} users, "
                          f"{run.params['spawn_rate']}/s, {run.params['duration']} s, {run.params['slots']} slot(s), "
                          f"host {run.params['host'] or '(from the locustfile)'}")
        shown = masked_params(run.params).get("options") or {}
        if shown:
            self.stdout.write("Locustfile options: " + " ".join(f"--{name.replace('_', '-')} {value}"
                                                               for name, value in shown.items()))
        if run.params.get("env") or run.params.get("secrets"):
            shown_env = [*(f"{name}={value}" for name, value in run.params["env"].items()),
                         *(f"{name}=[secret]" for name in run.params["secrets"])]
            self.stdout.write("Environment: " + " ".join(shown_env))
        if run.labels:
            self.stdout.write("Labels: " + run_labels.as_words(run.labels))
        self.stdout.write(f"Watch it live: {settings.SWARMDECK_BASE_URL}{run.get_absolute_url()}")
        run = self.wait(run, options.get("timeout"))
        self.stdout.write("")
        self.stdout.write(reporting.summary_table(run))
        self.stdout.write("")
        criteria = reporting.criteria_table(run)
        if criteria:
            self.stdout.write(criteria)
            self.stdout.write("")
        self.stdout.write(f"Run #{run.pk}: {run.status}" + (f" — {run.reason}" if run.reason else "")
                          + (f" — verdict {run.verdict}" if run.verdict else ""))
        self.stdout.write(f"Exit {exit_code(run)}: {why_exit(run)}. Report: "
                          f"{settings.SWARMDECK_BASE_URL}{run.get_absolute_url()}")
        if options.get("json_file"):
            Path(options["json_file"]).write_text(json.dumps(reporting.summary(run), indent=2))
        if options.get("csv_prefix"):
            reports.write_csv_files(run, options["csv_prefix"])
        return exit_code(run)

    def wait(self, run: Run, timeout: float | None) -> Run:
        interrupted = {"count": 0}

        def on_interrupt(signum, frame):
            interrupted["count"] += 1
            if interrupted["count"] > 1:
                raise KeyboardInterrupt
            self.stdout.write("Stopping the run (Ctrl-C again to stop waiting)…")
            services.request_stop(run)

        previous = signal.signal(signal.SIGINT, on_interrupt)
        previous_term = signal.signal(signal.SIGTERM, on_interrupt)  # a CI job killed by its runner stops the run too
        deadline = None if timeout is None else time.monotonic() + timeout
        last_line = 0.0
        try:
            while True:
                run.refresh_from_db()
                if run.status in Run.TERMINAL:
                    return run
                if deadline is not None and time.monotonic() > deadline:
                    services.request_stop(run)
                    services.wait_until_done(run, timeout=30)
                    return run
                if time.monotonic() - last_line >= 5:
                    last_line = time.monotonic()
                    entry = services.queue_entry(run)
                    where = (f"queue position {entry.position}{': ' + entry.reason if entry.reason else ''}"
                             if entry else run.status)
                    self.stdout.write(f"  [{where}] {run.current_users} users, {run.total_requests} requests, "
                                      f"{run.total_failures} failures, {run.rps or 0:.1f} req/s")
                time.sleep(0.5)
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)

    def locust_options(self, scenario: Scenario, pairs: list[str]) -> dict:
        """--option NAME=VALUE pairs, checked against the locustfile's options like the form and the API do."""
        given = _name_values("--option", pairs, "region=eu")
        version = scenario.current_version
        if version is None:
            return given
        try:
            return services.clean_options(version, given)
        except services.OptionsRefused as problem:
            raise CommandError(" ".join(problem.errors.values())) from None

    def env_overrides(self, pairs: list[str]) -> dict | None:
        """--env NAME=VALUE pairs, checked like the form and the API check them (start_run refuses a secret's name)."""
        given = _name_values("--env", pairs, "API_HOST=https://example.com")
        try:
            return envvars.check_variables(given) or None
        except ValueError as problem:
            raise CommandError(f"--env: {problem}") from None

    def run_labels(self, pairs: list[str]) -> dict:
        """--label KEY=VALUE pairs, checked like the form and the API check them."""
        given = _name_values("--label", pairs, "env=staging")
        try:
            return run_labels.clean(given)
        except run_labels.LabelError as problem:
            raise CommandError("--label: " + " ".join(problem.messages)) from None

    def resolve_user(self, username):
        User = get_user_model()
        if username:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"There is no user named {username!r}.")
            return user
        user = User.objects.filter(is_superuser=True).order_by("pk").first()
        if user is None:
            raise CommandError("No superuser exists: start `make run` once, or pass --user.")
        return user

    def resolve_scenario(self, target: str, project_slug: str, user) -> Scenario:
        if target.isdigit():
            scenario = Scenario.objects.filter(pk=int(target)).select_related("project").first()
            if scenario is None:
                raise CommandError(f"There is no scenario {target}.")
            return scenario
        path = Path(target)
        if not path.is_file():
            raise CommandError(f"{target} is neither a scenario id nor a file.")
        raw = path.read_bytes()
        try:
            bundle = bundles.read_upload(path.name, raw)
            findings = analysis.analyze(bundle.sources)
        except analysis.LocustfileError as error:
            if path.suffix.lower() == ".py":
                error.name_single_file(bundles.ENTRY_POINT, path.name)
            raise CommandError(str(error)) from None
        except bundles.BundleError as error:
            raise CommandError(f"{path}: {error}") from None
        project = Project.objects.filter(slug=project_slug).first()
        if project is None:
            project = create_project(user, name=project_slug, slug=project_slug)
        elif not Membership.objects.filter(project=project, user=user).exists():
            Membership.objects.create(project=project, user=user, role=Role.MAINTAINER)
        name = path.stem
        scenario = Scenario.objects.filter(project=project, name=name).first()
        if scenario is None:
            return create_scenario(project, fields={"name": name}, bundle=bundle, raw=raw, filename=path.name,
                                   findings=findings, user=user)
        if same_as_current(scenario, bundle) is None:  # what would be stored, not the raw file, decides
            add_version(scenario, bundle=bundle, raw=raw, filename=path.name, findings=findings, user=user,
                        comment="uploaded by runscenario")
        return scenario


def _name_values(flag: str, pairs: list[str], example: str) -> dict[str, str]:
    """Repeated `flag NAME=VALUE` arguments as a dict, or CommandError saying how to write one."""
    given: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise CommandError(f"{flag} {pair!r}: write NAME=VALUE, e.g. {flag} {example}.")
        given[name.strip()] = value
    return given
