from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self):
        from workflows.engine import executors  # noqa: F401  registers the built-in step kinds
