from django.apps import AppConfig


class GuardiansConfig(AppConfig):
    name = "guardians"
    verbose_name = "Guardians"

    def ready(self):
        from guardians import kinds  # noqa: F401 - registers the evaluators
        from guardians.gate import gate_install
        from guardians.loading import guardians_load_dir
        from guardians.selectors import decisions_panel
        from workflows.engine import api

        gate_install()
        api.definitions_register("guardians", guardians_load_dir)
        api.run_page_register("Guardian decisions", _decisions_url)
        api.run_panel_register(
            "guardian-decisions", "guardians/decisions_panel.html", decisions_panel,
            title="Guardian decisions", reload_on=("step.gate",),
        )  # fmt: skip


def _decisions_url(run_id: str) -> str:
    from django.urls import reverse

    return f"{reverse('admin:guardians_guardiandecision_changelist')}?q={run_id}"
