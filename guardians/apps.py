from django.apps import AppConfig


class GuardiansConfig(AppConfig):
    name = "guardians"
    verbose_name = "Guardians"

    def ready(self):
        from guardians import kinds  # noqa: F401 - registers the evaluators
        from guardians.gate import gate_install
        from guardians.loading import guardians_load_dir
        from workflows.engine import api

        gate_install()
        api.definitions_register("guardians", guardians_load_dir)
        api.run_page_register("Guardian decisions", _decisions_url)


def _decisions_url(run_id: str) -> str:
    from django.urls import reverse

    return f"{reverse('admin:guardians_guardiandecision_changelist')}?q={run_id}"
