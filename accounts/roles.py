"""Roles are groups. Each gets model permissions here; object access comes from django-guardian."""

ADMIN, OPERATOR, PILOT, VIEWER, SERVICE = "admin", "operator", "pilot", "viewer", "service"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    ADMIN: ["*"],
    OPERATOR: [
        "workflows.add_workflow",
        "workflows.change_workflow",
        "workflows.view_workflow",
        "workflows.run_workflow",
        "workflows.view_workflowversion",
        "workflows.view_run",
        "workflows.cancel_run",
        "workflows.view_steprun",
        "workflows.view_runevent",
        "agents.add_provider",
        "agents.change_provider",
        "agents.view_provider",
        "agents.add_agent",
        "agents.change_agent",
        "agents.view_agent",
        "agents.view_agentversion",
        "agents.view_llmcall",
        "guardians.add_guardian",
        "guardians.change_guardian",
        "guardians.view_guardian",
        "guardians.view_guardianversion",
        "guardians.view_guardiandecision",
        "interventions.view_intervention",
        "interventions.view_interventioncomment",
    ],
    PILOT: [],
    VIEWER: [],
    SERVICE: ["workflows.add_workflow"],
}
