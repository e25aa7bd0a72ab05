"""Personas used across the suite: alice maintains "shop", bob is her teammate with a lower
role, charlie is an outsider with a project of his own. Every access test includes charlie."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from scenarios import analysis, bundles
from scenarios.models import Membership, Role
from scenarios.services import create_project, create_scenario
from tests.locustfiles import SHOP


def make_user(username):
    return get_user_model().objects.create_user(username, password=f"{username}-password")


@pytest.fixture(autouse=True)
def fresh_health_check():
    """runs.health keeps its Redis answer for a second: no test sees the one of the test before."""
    from runs import health

    health.forget()
    yield


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def charlie(db):
    return make_user("charlie")


@pytest.fixture
def project(alice):
    return create_project(alice, name="Shop", slug="shop")


@pytest.fixture
def bob_membership(project, bob):
    return Membership.objects.create(project=project, user=bob, role=Role.VIEWER)


@pytest.fixture
def charlies_project(charlie):
    return create_project(charlie, name="Charlie's", slug="charlies")


def store_scenario(project, user, name="Checkout", content=SHOP, filename="locustfile.py"):
    bundle = bundles.read_upload(filename, content)
    return create_scenario(
        project, fields={"name": name}, bundle=bundle, raw=content, filename=filename,
        findings=analysis.analyze(bundle.sources), user=user,
    )


@pytest.fixture
def scenario(project, alice):
    return store_scenario(project, alice)


def upload(name, content):
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


@pytest.fixture(scope="session")
def target():
    """A real nginx on loopback (tests/target.py), shared by the session: reset() it per test."""
    from tests import target as nginx_target

    server = nginx_target.start()
    yield server
    server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under `make test`'s workers, each test (its fixtures' setup and teardown included) takes a shared turn:
    it waits while another worker's test restarts PostgreSQL (tests.parallel.exclusive), then reconnects."""
    from django.db import connections

    from tests.parallel import shared_turn

    with shared_turn() as server_restarted:
        if server_restarted:
            for connection in connections.all(initialized_only=True):
                connection.close()
        return (yield)


def pytest_collection_modifyitems(config, items):
    from tests.parallel import group_items

    group_items(items)
