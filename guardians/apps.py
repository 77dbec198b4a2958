from django.apps import AppConfig


class GuardiansConfig(AppConfig):
    name = "guardians"
