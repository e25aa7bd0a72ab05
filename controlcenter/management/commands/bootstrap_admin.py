import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = ("On a fresh install (no users at all), create the superuser 'admin' with a random password "
            "and print it once.")

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", email="", password=password)
        # The launcher reads this exact line to repeat the password in its start-up banner.
        self.stdout.write(f"Created user admin with password: {password}")
