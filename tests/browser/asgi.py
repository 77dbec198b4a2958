"""What the browser tests' server runs: config.asgi:application, with Django's and
django-guardian's caches of content types emptied before each connection. Transactional tests
flush the database after each test, and the flush makes the content types again under new ids,
which a server living across tests would otherwise keep (its permission checks would then find
no permission)."""

from config.asgi import application as chameleon  # first: it sets Django up

# isort: split
from django.contrib.contenttypes.models import ContentType
from guardian.shortcuts import clear_ct_cache


async def application(scope, receive, send):
    ContentType.objects.clear_cache()
    clear_ct_cache()
    await chameleon(scope, receive, send)
