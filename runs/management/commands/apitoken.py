"""Print a new API token for a user: `manage.py apitoken USERNAME [--name NAME]`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken


class Command(BaseCommand):
    help = ("Create an API token for USERNAME and print its key (only this once: it is stored hashed). "
            "Use it as `Authorization: Bearer <key>`.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What will use it (default: “created by manage.py”)")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user named “{username}”.")
        if not user.is_active:
            raise CommandError(f"{username} is inactive: a token of theirs would not work.")
        _, key = ApiToken.issue(user, (name or "created by manage.py")[:100])
        self.stdout.write(key)
