"""Audit fixtures: entries in alice's project "shop" and in charlie's own project."""

import pytest

from audit.log import record, via


@pytest.fixture
def shop_entries(project, alice):
    """Two entries of shop (made by alice in the UI), on top of the one create_project recorded."""
    with via("ui"):
        record("scenario.created", actor=alice, project=project, subject="scenario Shop-only-checkout")
        record("secret.set", actor=alice, project=project, subject="secret SHOP_ONLY_TOKEN")


@pytest.fixture
def charlies_entries(charlies_project, charlie):
    with via("ui"):
        record("scenario.created", actor=charlie, project=charlies_project, subject="scenario Charlie-only-browse")
