"""Signing in and landing: each role has its own first page, and every link it sees works."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.cast import Cast, signed_in
from tests.factories import TEST_PASSWORD, UserFactory

LANDING = {
    "manager": "/workspace/",
    "rep_user": "/workspace/",
    "executive": "/dashboard/",
    "partner_a_user": "/portal/",
}

INTERNAL_PAGES = [
    "/workspace/",
    "/workspace/my-accounts/",
    "/workspace/accounts/",
    "/workspace/partners/",
    "/workspace/distributors/",
    "/workspace/reps/",
    "/workspace/agreements/",
    "/workspace/feedback/",
    "/dashboard/",
]


class NavigationLinks(HTMLParser):
    """The href of every link inside the page's <nav> elements, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "nav":
            self.depth += 1
        elif tag == "a" and self.depth:
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self.depth:
            self.depth -= 1


def navigation_links(html: str) -> list[str]:
    parser = NavigationLinks()
    parser.feed(html)
    return parser.links


@pytest.mark.parametrize(("member", "landing"), LANDING.items())
def test_it_sends_each_role_from_the_root_to_its_landing_page(
    cast: Cast, member: str, landing: str
) -> None:
    client = signed_in(getattr(cast, member))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == landing
    assert client.get(landing).status_code == 200


@pytest.mark.parametrize(("member", "landing"), LANDING.items())
def test_it_signs_in_through_the_login_form_and_lands_by_role(
    cast: Cast, member: str, landing: str
) -> None:
    client = Client()
    username = getattr(cast, member).get_username()

    response = client.post(
        "/accounts/login/", {"username": username, "password": TEST_PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1] == (landing, 302)
    assert response.status_code == 200
    assert response.wsgi_request.user.get_username() == username


def test_it_shows_the_login_form(db: None) -> None:
    response = Client().get("/accounts/login/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html


def test_it_keeps_a_wrong_password_on_the_login_page(cast: Cast) -> None:
    client = Client()

    response = client.post("/accounts/login/", {"username": "manager", "password": "wrong"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_it_returns_to_the_page_asked_for_after_signing_in(cast: Cast) -> None:
    response = Client().post(
        "/accounts/login/?next=/workspace/agreements/",
        {"username": "manager", "password": TEST_PASSWORD, "next": "/workspace/agreements/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/workspace/agreements/"


@pytest.mark.parametrize("path", ["/", *INTERNAL_PAGES, "/portal/"])
def test_it_sends_anonymous_users_to_the_login_page(db: None, path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_it_hides_every_internal_page_from_a_partner_user(cast: Cast) -> None:
    client = signed_in(cast.partner_a_user)

    for path in INTERNAL_PAGES:
        assert client.get(path).status_code == 404, path


def test_it_refuses_a_signed_in_user_without_a_role(db: None) -> None:
    response = signed_in(UserFactory(username="nobody")).get("/")

    assert response.status_code == 403


@pytest.mark.parametrize(("member", "landing"), LANDING.items())
def test_it_answers_every_navigation_link_on_each_landing_page(
    cast: Cast, member: str, landing: str
) -> None:
    client = signed_in(getattr(cast, member))
    html = client.get(landing).content.decode()

    links = [href for href in navigation_links(html) if href.startswith("/")]

    assert landing in links
    for href in dict.fromkeys(links):
        response = client.get(href, follow=True)
        assert response.status_code == 200, href
