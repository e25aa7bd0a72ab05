"""Locustfiles used as upload fixtures across the tests."""

import io
import zipfile

SHOP = b'''\
from locust import HttpUser, between, tag, task


class Shopper(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        self.client.post("/login", json={"user": "demo"})

    @task(3)
    def browse(self):
        self.client.get("/products")

    @tag("checkout")
    @task
    def buy(self):
        self.client.post("/cart", json={"id": 1})
'''

SHOP_V2 = SHOP + b'''

class Admin(HttpUser):
    wait_time = between(5, 10)

    @task
    def report(self):
        self.client.get("/admin/report")
'''

BROKEN = b'''\
from locust import HttpUser, task


class Broken(HttpUser):
    @task
    def go(self)
        self.client.get("/")
'''

NO_USERS = b'''\
import locust

def helper():
    return 42
'''


def zip_bundle(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


BUNDLE_LOCUSTFILE = b'''\
from locust import task
from common import ApiUser


class Catalogue(ApiUser):
    @task
    def list_items(self):
        self.client.get("/items", headers=self.auth_headers())
'''

BUNDLE_COMMON = b'''\
import csv
from pathlib import Path

from locust import FastHttpUser, constant_throughput

USERS = list(csv.reader((Path(__file__).parent / "data" / "users.csv").open()))


class ApiUser(FastHttpUser):
    abstract = True
    wait_time = constant_throughput(2)

    def auth_headers(self):
        return {"Authorization": "Bearer demo"}
'''

BUNDLE = zip_bundle(
    {"locustfile.py": BUNDLE_LOCUSTFILE, "common.py": BUNDLE_COMMON, "data/users.csv": b"alice,secret\nbob,secret\n"}
)
