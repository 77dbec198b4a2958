from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self):
        # Importing registers the built-in step kinds (and, through `tool`, the built-in tools).
        from workflows import live_access, signals
        from workflows.steps import subworkflow, tool  # noqa: F401

        signals.connect()
        live_access.connect()
