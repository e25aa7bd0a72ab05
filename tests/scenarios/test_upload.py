"""Creating scenarios and uploading locustfile versions through the web UI."""

import hashlib
import io
import os
import zipfile

from django.urls import reverse

from scenarios.models import LocustfileVersion, Scenario
from tests.conftest import upload
from tests.locustfiles import BROKEN, BUNDLE, NO_USERS, SHOP, SHOP_V2, zip_bundle


def _create(client, content, name="Checkout", filename="locustfile.py", **extra):
    data = {"name": name, "locustfile": upload(filename, content), "default_host": "http://127.0.0.1:8089",
            "default_users": 20, "default_spawn_rate": 5, "default_duration": "2m", "default_slots": 2, **extra}
    return client.post(reverse("scenarios-create", args=["shop"]), data)


def test_it_creates_a_scenario_with_its_first_version(client, alice, project):
    client.force_login(alice)
    response = _create(client, SHOP)
    scenario = Scenario.objects.get(project=project)
    assert response.status_code == 302 and response["Location"] == scenario.get_absolute_url()
    assert (scenario.default_users, scenario.default_spawn_rate, scenario.default_duration, scenario.default_slots) == (
        20, 5.0, 120, 2)
    version = scenario.versions.get()
    assert version.number == 1
    assert bytes(version.content) == SHOP
    assert version.sha256 == hashlib.sha256(SHOP).hexdigest()
    assert version.size == len(SHOP)
    assert version.uploaded_by == alice
    assert [uc["name"] for uc in version.findings["user_classes"]] == ["Shopper"]


def test_it_shows_user_classes_tasks_and_wait_time(client, alice, project):
    client.force_login(alice)
    _create(client, SHOP)
    page = client.get(Scenario.objects.get().get_absolute_url()).content.decode()
    assert "Shopper" in page
    assert "between(1, 3)" in page
    assert "browse" in page and "×3" in page
    assert "checkout" in page  # the tag of buy()
    assert 'id="L-9"' in page  # source with line anchors


def test_it_shows_a_syntax_error_with_file_line_and_column_and_stores_nothing(client, alice, project):
    client.force_login(alice)
    response = _create(client, BROKEN)
    page = response.content.decode()
    assert response.status_code == 200
    assert "locustfile.py, line 6" in page  # the uploaded file's own name
    assert "column 17" in page  # where Python expected the colon
    assert "def go(self)" in page  # the offending line is quoted
    assert "expected &#x27;:&#x27;" in page
    assert not Scenario.objects.exists()
    assert not LocustfileVersion.objects.exists()


def test_it_refuses_a_locustfile_without_users(client, alice, project):
    client.force_login(alice)
    page = _create(client, NO_USERS).content.decode()
    assert "No User class found" in page
    assert not Scenario.objects.exists()


def test_it_refuses_wrong_extensions_empty_and_binary_files(client, alice, project):
    client.force_login(alice)
    assert "neither" in _create(client, SHOP, filename="locustfile.txt").content.decode()
    assert "empty" in _create(client, b"", filename="locustfile.py").content.decode().lower()
    assert "binary" in _create(client, b"\x00\x01\x02import os", filename="locustfile.py").content.decode()
    assert "UTF-8" in _create(client, b"# caf\xe9\nimport locust\n", filename="locustfile.py").content.decode()
    assert not Scenario.objects.exists()


def test_it_refuses_an_oversized_py_before_reading_it(client, alice, project):
    client.force_login(alice)
    big = b"# padding\n" * 110_000  # ~1.1 MB
    page = _create(client, big).content.decode()
    assert "the limit for a .py upload is 1 MB" in page
    assert not Scenario.objects.exists()


def test_it_refuses_zip_path_traversal(client, alice, project):
    client.force_login(alice)
    evil = zip_bundle({"locustfile.py": SHOP, "../evil.py": b"x = 1\n"})
    page = _create(client, evil, filename="bundle.zip").content.decode()
    assert "evil.py" in page
    assert not Scenario.objects.exists()


def test_it_keeps_a_zip_bundle_with_helpers_and_data(client, alice, project):
    client.force_login(alice)
    response = _create(client, BUNDLE, filename="shop-bundle.zip")
    assert response.status_code == 302
    version = LocustfileVersion.objects.get()
    assert version.kind == "zip" and version.file_count == 3
    assert [f["path"] for f in version.findings["files"]] == ["common.py", "data/users.csv", "locustfile.py"]
    runnable = [uc["name"] for uc in version.findings["user_classes"] if not uc["abstract"]]
    assert runnable == ["Catalogue"]
    page = client.get(version.get_absolute_url() + "?file=data/users.csv").content.decode()
    assert "alice,secret" in page
    page = client.get(version.get_absolute_url() + "?file=common.py").content.decode()
    assert "auth_headers" in page


def test_it_adds_versions_and_keeps_old_ones_downloadable(client, alice, project, scenario):
    client.force_login(alice)
    response = client.post(reverse("scenarios-upload", args=[scenario.pk]),
                           {"locustfile": upload("v2.py", SHOP_V2), "comment": "Add admin users"})
    assert response.status_code == 302
    assert list(scenario.versions.values_list("number", flat=True)) == [2, 1]
    assert scenario.current_version.comment == "Add admin users"
    old = client.get(reverse("scenarios-version-download", args=[scenario.pk, 1]))
    assert old.status_code == 200 and old.content == SHOP
    assert old["X-Content-SHA256"] == hashlib.sha256(SHOP).hexdigest()
    assert 'filename="checkout-v1.py"' in old["Content-Disposition"]
    new = client.get(reverse("scenarios-version-download", args=[scenario.pk, 2]))
    assert new.content == SHOP_V2
    assert "Admin" in client.get(reverse("scenarios-version", args=[scenario.pk, 2])).content.decode()
    old_page = client.get(reverse("scenarios-version", args=[scenario.pk, 1])).content.decode()
    assert "Admin" not in old_page
    assert "An older version" in old_page and reverse("scenarios-version", args=[scenario.pk, 2]) in old_page
    assert "An older version" not in client.get(reverse("scenarios-version", args=[scenario.pk, 2])).content.decode()


def test_it_keeps_the_current_version_when_an_upload_is_broken(client, alice, project, scenario):
    client.force_login(alice)
    response = client.post(reverse("scenarios-upload", args=[scenario.pk]), {"locustfile": upload("x.py", BROKEN)})
    assert response.status_code == 400
    assert "line 6" in response.content.decode()
    assert scenario.versions.count() == 1


def test_it_never_changes_a_stored_version(scenario):
    version = scenario.versions.get()
    version.content = b"tampered"
    try:
        version.save()
    except ValueError as error:
        assert "immutable" in str(error)
    else:
        raise AssertionError("saving an existing version must fail")
    assert bytes(LocustfileVersion.objects.get().content) == SHOP


def test_it_escapes_locustfile_source(client, alice, project):
    client.force_login(alice)
    hostile = SHOP + b'\nMARKER = "</pre><script>alert(1)</script>"\n'
    _create(client, hostile)
    page = client.get(Scenario.objects.get().get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "alert" in page


def test_it_refuses_duplicate_scenario_names_in_a_project(client, alice, project, scenario):
    client.force_login(alice)
    page = _create(client, SHOP, name="checkout").content.decode()
    assert "already has a scenario named" in page
    assert Scenario.objects.count() == 1


def test_it_reads_durations_like_locust(client, alice, project, scenario):
    client.force_login(alice)
    url = reverse("scenarios-edit", args=[scenario.pk])
    base = {"name": "Checkout", "default_users": 1, "default_spawn_rate": 1, "default_slots": 1}
    assert client.post(url, {**base, "default_duration": "1h30m"}).status_code == 302
    scenario.refresh_from_db()
    assert scenario.default_duration == 5400
    page = client.post(url, {**base, "default_duration": "soon"}).content.decode()
    assert "is not a duration" in page
    scenario.refresh_from_db()
    assert scenario.default_duration == 5400


def test_it_rejects_a_form_full_of_garbage_with_field_errors(client, alice, project):
    client.force_login(alice)
    response = _create(client, SHOP, name="", default_users=-5, default_spawn_rate="fast", default_slots=0,
                       default_host="not a url", default_duration="-3")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('class="errorlist') >= 5
    assert not Scenario.objects.exists()


def test_it_strips_a_single_wrapping_folder_from_a_zip(client, alice, project):
    client.force_login(alice)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("shop/locustfile.py", SHOP)
        archive.writestr("shop/README.txt", b"read me")
    assert _create(client, buffer.getvalue(), filename="shop.zip").status_code == 302
    assert sorted(f["path"] for f in LocustfileVersion.objects.get().findings["files"]) == [
        "README.txt", "locustfile.py"]


def test_it_names_a_single_file_by_its_uploaded_name_in_errors(client, alice, project):
    client.force_login(alice)
    page = _create(client, BROKEN, filename="checkout.py").content.decode()
    assert "checkout.py, line 6, column 17" in page
    assert "Nothing was stored" in page


def test_it_refuses_a_huge_upload_from_its_size_alone(client, alice, project, scenario):
    client.force_login(alice)
    huge = zip_bundle({"locustfile.py": SHOP, "data/blob.bin": os.urandom(12 * 1024 * 1024)})  # incompressible
    for url in (reverse("scenarios-create", args=["shop"]), reverse("scenarios-upload", args=[scenario.pk])):
        response = client.post(url, {"name": "Huge", "locustfile": upload("huge.zip", huge)})
        assert response.status_code == 413
        assert "a .zip bundle of up to 10 MB" in response.content.decode()
    assert Scenario.objects.count() == 1 and scenario.versions.count() == 1


def test_it_shows_markov_transitions_with_their_weights(client, alice, project):
    markov = b'''\
from locust import User, constant
from locust.user.markov_taskset import MarkovTaskSet, transition, transitions


class Flow(MarkovTaskSet):
    @transition("checkout", weight=2)
    @transition("browse")
    def browse(self):
        pass

    @transitions({"browse": 3})
    def checkout(self):
        pass


class Shopper(User):
    tasks = [Flow]
    wait_time = constant(1)
'''
    client.force_login(alice)
    _create(client, markov)
    page = client.get(Scenario.objects.get().get_absolute_url()).content.decode()
    assert "→ checkout ×2, browse" in page
    assert "→ browse ×3" in page


def test_it_refuses_to_store_the_current_version_again(client, alice, project, scenario):
    client.force_login(alice)
    response = client.post(reverse("scenarios-upload", args=[scenario.pk]), {"locustfile": upload("again.py", SHOP)})
    assert response.status_code == 400
    assert "same file as the current version 1" in response.content.decode()
    assert scenario.versions.count() == 1
    changed = client.post(reverse("scenarios-upload", args=[scenario.pk]), {"locustfile": upload("v2.py", SHOP_V2)})
    assert changed.status_code == 302 and scenario.versions.count() == 2


def test_it_names_the_uploaded_file_once_when_it_has_no_users(client, alice, project):
    client.force_login(alice)
    page = _create(client, NO_USERS, filename="checkout.py").content.decode()
    assert page.count("No User class found in checkout.py") == 1
    assert "locustfile.py" not in page.split("<form")[0]


def test_it_warns_when_no_host_is_set_anywhere(client, alice, project):
    client.force_login(alice)
    _create(client, SHOP, default_host="")
    page = client.get(Scenario.objects.get().get_absolute_url()).content.decode()
    assert "None set." in page and "edit the defaults" in page


def test_it_shows_the_locustfiles_host_when_the_scenario_has_none(client, alice, project):
    client.force_login(alice)
    _create(client, SHOP.replace(b"class Shopper(HttpUser):\n", b"class Shopper(HttpUser):\n    host = \"http://shop.test\"\n"),
            default_host="")
    page = client.get(Scenario.objects.get().get_absolute_url()).content.decode()
    assert "http://shop.test</span> <span class=\"small muted\">(from the locustfile)" in page
    assert "None set." not in page


def test_it_does_not_flag_an_abstract_base_user_for_missing_tasks(client, alice, project):
    base = b'''\
from locust import HttpUser, task, between


class Base(HttpUser):
    abstract = True


class Real(Base):
    wait_time = between(1, 2)

    @task
    def t(self):
        self.client.get("/")
'''
    client.force_login(alice)
    _create(client, base)
    page = client.get(Scenario.objects.get().get_absolute_url()).content.decode()
    assert "a base for other user classes" in page
    assert "back-to-back" not in page and '<span class="badge warn">none</span>' not in page


def test_it_asks_the_browser_for_at_least_one_user_and_slot(client, alice, project):
    client.force_login(alice)
    page = client.get(reverse("scenarios-create", args=["shop"])).content.decode()
    assert 'name="default_users" value="10" min="1"' in page
    assert 'name="default_slots" value="1" min="1"' in page


def test_it_wraps_each_source_line_so_a_linked_line_can_be_highlighted(client, alice, project, scenario):
    client.force_login(alice)
    page = client.get(reverse("scenarios-version", args=[scenario.pk, 1])).content.decode()
    assert '<span id="line-3"><a id="L-3" name="L-3"></a>' in page
    assert 'href="#L-3"' in page


def _littered_bundle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("shop/locustfile.py", SHOP)
        archive.writestr("shop/helpers.py", b"def go():\n    pass\n")
        archive.writestr("shop/helpers.pyc", b"\xa7\r\r\n\x00\x00\x00\x00")
        archive.writestr("shop/__pycache__/helpers.cpython-311.pyc", b"\xa7\r\r\n\x00\x00\x00\x00")
        archive.writestr("__MACOSX/shop/._locustfile.py", b"\x00\x05\x16\x07")
    return buffer.getvalue()


def test_it_stores_only_the_files_it_shows_and_names_the_ignored_ones(client, alice, project):
    client.force_login(alice)
    assert _create(client, _littered_bundle(), filename="shop.zip").status_code == 302
    version = LocustfileVersion.objects.get()
    with zipfile.ZipFile(io.BytesIO(bytes(version.content))) as archive:
        stored = archive.namelist()
    assert stored == [f["path"] for f in version.findings["files"]] == ["helpers.py", "locustfile.py"]
    assert version.file_count == 2 and version.size == len(version.content)
    assert version.sha256 == hashlib.sha256(bytes(version.content)).hexdigest()
    page = client.get(version.get_absolute_url()).content.decode()
    assert "shop/helpers.pyc" in page and "__MACOSX/shop/._locustfile.py" in page  # listed under "Ignored"
    download = client.get(reverse("scenarios-version-download", args=[version.scenario_id, 1]))
    assert download.content == bytes(version.content)
    assert download["X-Content-SHA256"] == version.sha256


def test_it_refuses_the_same_littered_bundle_twice(client, alice, project):
    client.force_login(alice)
    _create(client, _littered_bundle(), filename="shop.zip")
    scenario = Scenario.objects.get()
    response = client.post(reverse("scenarios-upload", args=[scenario.pk]),
                           {"locustfile": upload("shop.zip", _littered_bundle())})
    assert response.status_code == 400
    assert "same file as the current version 1" in response.content.decode()
    assert scenario.versions.count() == 1


def test_it_refuses_a_bomb_hidden_in_an_ignored_member_and_stores_nothing(client, alice, project):
    client.force_login(alice)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("locustfile.py", SHOP)
        archive.writestr("__MACOSX/._blob", bytes(200 * 1024 * 1024))
    assert len(buffer.getvalue()) < 300 * 1024
    response = _create(client, buffer.getvalue(), filename="shop.zip")
    assert response.status_code == 200
    assert "shop.zip unpacks to 200.0 MB" in response.content.decode()
    assert not Scenario.objects.exists() and not LocustfileVersion.objects.exists()


def test_it_shows_why_an_old_version_can_no_longer_be_opened(client, alice, project, scenario):
    client.force_login(alice)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("locustfile.py", SHOP)
        archive.writestr("fast.so", b"\x7fELF")
    LocustfileVersion.objects.create(scenario=scenario, number=2, kind="zip", filename="old.zip",
                                     content=buffer.getvalue(), unpacked_size=0, file_count=2, findings={})
    response = client.get(reverse("scenarios-version", args=[scenario.pk, 2]))
    assert response.status_code == 200
    assert "&#x27;fast.so&#x27; in bundle.zip is a compiled module" in response.content.decode()
