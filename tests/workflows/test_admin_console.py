"""The admin reads like a product: branded, with pause buttons, a run form and a run page."""

import pytest
from django.urls import reverse


@pytest.fixture
def operator_client(client, make_user):
    user = make_user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    client.user = user
    return client


def test_the_admin_is_branded_chameleon(operator_client):
    page = operator_client.get(reverse("admin:index")).content.decode()

    assert "<title>Chameleon console | Chameleon</title>" in page
    assert '<a href="/admin/">Chameleon</a>' in page
    assert "Django administration" not in page
    assert "Site administration" not in page
