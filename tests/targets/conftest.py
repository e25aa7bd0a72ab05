"""Allow-list tests run with enforcement on and the loopback allowance off (tests/settings.py turns
it on for the rest of the suite, whose targets are on loopback)."""

import pytest

from targets.models import AllowedTarget


@pytest.fixture
def enforced(settings):
    settings.SWARMDECK_TARGET_ALLOW_LIST = True
    settings.SWARMDECK_ALLOW_LOOPBACK_TARGETS = False
    return settings


def allow(project, pattern: str, status=AllowedTarget.Status.APPROVED) -> AllowedTarget:
    from workers.target_rules import parse

    parsed = parse(pattern)
    return AllowedTarget.objects.create(project=project, pattern=parsed.text, kind=parsed.kind, status=status)
