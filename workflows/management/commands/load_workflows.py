"""Create or update workflows from a directory of YAML/JSON spec files."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError

from workflows.engine.registry import definition_loaders
from workflows.loading import default_owner, workflows_load_dir


class Command(BaseCommand):
    help = (
        "Load every *.yaml, *.yml and *.json spec in DIR: create each workflow, or publish a new "
        "version when its spec changed. Sub-workflows load before the workflows that call them. "
        "Definitions of other kinds load first from their folders of DIR (providers/, agents/). "
        "Exits non-zero when a file is invalid, after loading the others."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--owner",
            help="Username owning new workflows and publishing versions "
            "(default: the first superuser, else a 'system' user).",
        )
        parser.add_argument(
            "--missing-only",
            action="store_true",
            help="Only create the workflows that do not exist; never publish over existing ones.",
        )

    def handle(self, *args, directory: Path, owner: str | None, missing_only: bool, **options):
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        user = _owner(owner)
        results = []
        for folder, load in definition_loaders().items():
            if (directory / folder).is_dir():
                results += load(directory=directory / folder, owner=user, missing_only=missing_only)
        results += workflows_load_dir(directory=directory, owner=user, missing_only=missing_only)
        for result in results:
            if result.ok:
                version = f" v{result.version}" if result.version is not None else ""
                self.stdout.write(f"{result.path}: {result.outcome} {result.slug}{version}")
            else:
                self.stderr.write(f"{result.path}: invalid")
                for line in result.errors:
                    self.stderr.write(f"  {line}")
        failed = [result for result in results if not result.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} spec files could not be loaded.")
        if not results:
            self.stdout.write(f"No spec files in {directory}.")


def _owner(username: str | None):
    if username is None:
        return default_owner()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user '{username}'.")
    return user
