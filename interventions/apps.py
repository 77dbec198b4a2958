from django.apps import AppConfig


class InterventionsConfig(AppConfig):
    name = "interventions"
    verbose_name = "Interventions"

    def ready(self):
        from config.metrics import scrape_collector_register
        from interventions import opening
        from interventions.dashboard.step_links import step_runs_waiting_links
        from interventions.executor import HumanExecutor
        from interventions.expiry import interventions_expire_due
        from interventions.lifecycle import EVENT_PAYLOAD, EVENTS
        from interventions.metrics import OpenInterventions
        from interventions.notifications import interventions_warn_due, notifications_resend_stale
        from interventions.specs import EscalationTask, NotifySpec, ReviewTask
        from workflows.engine import api

        api.executor_register(HumanExecutor())
        api.step_field_register("review", ReviewTask)
        api.step_field_register("escalation", EscalationTask)
        api.step_field_register("notify", NotifySpec)
        api.sweep_register("expired", interventions_expire_due)
        api.sweep_register("warned", interventions_warn_due)
        api.sweep_register("resent", notifications_resend_stale)
        api.step_waiting_register(opening.step_waiting)
        api.review_register(opening.step_reviewed)
        api.run_finished_register(opening.run_finished)
        api.step_links_register("interventions", step_runs_waiting_links)
        for event_type, payload in EVENTS.values():
            api.event_type_register(event_type, ", ".join(filter(None, [EVENT_PAYLOAD, payload])))
        scrape_collector_register(OpenInterventions())
