"""Project secrets: encrypted at rest with Fernet, under a key derived from settings.SECRET_KEY.

Each project has its own key: HKDF-SHA256 of SECRET_KEY with the project's id in `info`, so a
ciphertext copied to another project's row does not decrypt there. Values are write-only:
pages and the API show names and dates, never a value; only a run's dispatch (runs.services)
and the masking of what a run produced (Masker) decrypt them.

Changing SECRET_KEY makes every stored secret unreadable: runs that use one then fail to start,
saying so, until a maintainer sets the secret again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from audit.log import record
from workers import envvars

ROTATION_NOTE = ("Changing SECRET_KEY makes stored secrets unreadable: a maintainer must set this secret again "
                 "on the project's Secrets page.")


class SecretUnreadable(Exception):
    """A stored secret does not decrypt under the current SECRET_KEY; the message says what to do."""


def _fernet(project_id: int, secret_key: str | None = None) -> Fernet:
    key = (secret_key if secret_key is not None else settings.SECRET_KEY).encode()
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"swarmdeck-secrets-v1",
                   info=f"project:{project_id}".encode()).derive(key)
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(project_id: int, value: str) -> str:
    return _fernet(project_id).encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(project_id: int, name: str, token: str) -> str:
    try:
        return _fernet(project_id).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SecretUnreadable(f"The secret {name} cannot be decrypted: it was stored under another SECRET_KEY "
                               f"(or the row was altered). {ROTATION_NOTE}") from None


def secret_value_problem(name: str, value) -> str | None:
    problem = envvars.value_problem(name, value)
    if problem:
        return problem
    if len(value) < envvars.MIN_SECRET:
        return (f"A secret must be at least {envvars.MIN_SECRET} characters long: a shorter value could not be "
                "masked in logs without masking ordinary text too.")
    return None


def set_secret(project, name: str, value: str, user=None):
    """Create or replace a project secret; ValueError says why a name or value is refused."""
    from scenarios.models import ProjectSecret

    problem = envvars.name_problem(name) or secret_value_problem(name, value)
    if problem:
        raise ValueError(problem)
    secret, created = ProjectSecret.objects.update_or_create(
        project=project, name=name,
        defaults={"ciphertext": encrypt(project.pk, value), "updated_by": user if user and user.is_authenticated
                  else None})
    # By name only: the value never reaches the audit log.
    record("secret.set" if created else "secret.replaced", actor=user, project=project, subject=f"secret {name}",
           details={"name": name})
    return secret


def delete_secret(project, name: str, user=None) -> bool:
    """Delete a project secret by name; False when the project has none of that name."""
    deleted, _ = project.secrets.filter(name=name).delete()
    if deleted:
        record("secret.deleted", actor=user, project=project, subject=f"secret {name}", details={"name": name})
    return bool(deleted)


def values(project, names) -> dict[str, str]:
    """The decrypted values of these secrets of the project; SecretUnreadable or KeyError (a missing name)."""
    rows = {row.name: row for row in project.secrets.filter(name__in=list(names))}
    result = {}
    for name in names:
        row = rows.get(name)
        if row is None:
            raise KeyError(name)
        result[name] = decrypt(project.pk, name, row.ciphertext)
    return result


def masker_for_run(run) -> envvars.Masker:
    """Masks the values of the secrets a run received, as they are stored now (unreadable ones are skipped:
    what was stored was masked by the slot and the collector when it arrived)."""
    names = list((run.params or {}).get("secrets") or [])
    options = envvars.secret_options(run.params)  # is_secret locustfile options: masked like secrets
    if not names:
        return envvars.Masker(options)
    from scenarios.models import ProjectSecret

    known = {}
    for row in ProjectSecret.objects.filter(project_id=run.project_id, name__in=names):
        try:
            known[row.name] = decrypt(run.project_id, row.name, row.ciphertext)
        except SecretUnreadable:
            continue
    return envvars.Masker({**known, **options})


class EnvironmentRefused(ValueError):
    """A scenario's variables or chosen secrets do not fit; `errors` maps "variables"/"secrets" to why."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(" ".join(message for messages in errors.values() for message in messages))


def check_environment(project, variables, secret_names) -> tuple[dict[str, str], list[str]]:
    """A scenario's variables and the project secrets it receives, checked; EnvironmentRefused otherwise."""
    errors: dict[str, list[str]] = {}
    try:
        variables = envvars.check_variables(variables if variables is not None else {})
    except ValueError as problem:
        errors["variables"] = [str(problem)]
        variables = {}
    if secret_names is None:
        secret_names = []
    if not isinstance(secret_names, list) or not all(isinstance(name, str) for name in secret_names):
        errors["secrets"] = ['Secrets are a list of the project\'s secret names, e.g. ["API_TOKEN"].']
        secret_names = []
    known = set(project.secrets.values_list("name", flat=True))
    unknown = [name for name in secret_names if name not in known]
    if unknown:
        errors["secrets"] = [f"{project.name} has no secret named {', '.join(unknown)}: a maintainer adds it on the "
                             "project's Secrets page first."]
    clash = sorted(set(variables) & set(secret_names))
    if clash:
        errors.setdefault("variables", []).append(
            f"{', '.join(clash)}: a variable cannot have the name of a secret the scenario receives.")
    if errors:
        raise EnvironmentRefused(errors)
    return variables, sorted(set(secret_names))


def set_environment(scenario, variables, secret_names) -> None:
    scenario.env_vars, scenario.secret_names = check_environment(scenario.project, variables, secret_names)
    scenario.save(update_fields=["env_vars", "secret_names", "updated_at"])


def scenarios_using(project, name: str) -> list:
    return [scenario for scenario in project.scenarios.all() if name in (scenario.secret_names or [])]
