"""Brute force: failed logins, password-reset requests, sign-ups and invitations are limited
per account and per IP with counters in Redis, and the limits fail open without Redis."""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client

from esp import attempts, services
from esp.models import OutboxMessage, Role, User, Workspace
from tests.factories import PASSWORD

LOGIN = "/accounts/login/"


def _login(client: Client, email: str, password: str, ip: str = "198.51.100.7") -> Any:
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def _error(response: Any) -> str:
    return " ".join(response.context["form"].non_field_errors())


@pytest.mark.django_db
def test_wrong_passwords_lock_the_attacker_out_even_with_the_right_one(
    acme_owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    with caplog.at_level(logging.INFO, logger="esp.security"):
        for _ in range(5):
            response = _login(client, acme_owner.email, "wrong password!")
            assert response.status_code == 200 and "Too many" not in _error(response)
        response = _login(client, acme_owner.email, PASSWORD)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "Too many attempts. Try again in 1 minute." in _error(response)
    assert sum("failed login" in r.getMessage() for r in caplog.records) == 5
    assert any("login refused" in r.getMessage() for r in caplog.records)
    # The real owner, elsewhere, is not locked out by an attacker's five tries.
    assert _login(Client(), acme_owner.email, PASSWORD, ip="203.0.113.50").status_code == 302


@pytest.mark.django_db
def test_many_addresses_against_one_account_are_held_briefly(acme_owner: User) -> None:
    for number in range(attempts.LOGIN_ACCOUNT[0].count):
        _login(Client(), acme_owner.email, "wrong password!", ip=f"192.0.2.{number}")
    response = _login(Client(), acme_owner.email, PASSWORD, ip="203.0.113.50")
    assert "Try again in 5 minutes" in _error(response)  # a short lock-out, not an hour


@pytest.mark.django_db
def test_one_address_against_many_accounts_is_held(acme: Workspace) -> None:
    for number in range(attempts.LOGIN_IP[0].count):
        _login(Client(), f"user{number}@example.com", "wrong password!")
    assert "Too many" in _error(_login(Client(), "someone@example.com", "whatever"))
    assert "Too many" not in _error(_login(Client(), "someone@example.com", "whatever", ip="203.0.113.9"))


@pytest.mark.django_db
def test_a_success_clears_the_strict_counter(acme_owner: User) -> None:
    client = Client()
    for _ in range(4):
        _login(client, acme_owner.email, "wrong password!")
    assert _login(client, acme_owner.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        _login(client, acme_owner.email, "wrong password!")
    assert _login(client, acme_owner.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_limits_fail_open_when_redis_is_down(acme_owner: User, caplog: pytest.LogCaptureFixture) -> None:
    with (
        mock.patch.object(cache, "get_many", side_effect=ConnectionError("redis down")),
        mock.patch.object(cache, "add", side_effect=ConnectionError("redis down")),
    ):
        for _ in range(8):
            _login(Client(), acme_owner.email, "wrong password!")
        assert _login(Client(), acme_owner.email, PASSWORD).status_code == 302
    assert any("cache down" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_password_reset_mail_is_limited_per_address_with_the_same_answer(acme_owner: User) -> None:
    for _ in range(6):
        response = Client().post("/accounts/password/reset/", {"email": acme_owner.email}, REMOTE_ADDR="192.0.2.1")
        assert response.status_code == 302  # the same answer every time
    assert OutboxMessage.objects.count() == attempts.RESET_ADDRESS[0].count


@pytest.mark.django_db
def test_password_reset_is_limited_per_ip(acme: Workspace) -> None:
    users = [User.objects.create_user(email=f"r{n}@example.com", password=PASSWORD) for n in range(12)]
    for user in users:
        assert Client().post("/accounts/password/reset/", {"email": user.email}).status_code == 302
    assert OutboxMessage.objects.count() == attempts.RESET_IP[0].count


@pytest.mark.django_db
def test_sign_ups_are_limited_per_ip() -> None:
    def sign_up(number: int) -> Any:
        data = {"email": f"new{number}@example.com", "password": PASSWORD, "workspace_name": f"Shop {number}"}
        return Client().post("/accounts/signup/", data, REMOTE_ADDR="192.0.2.8")

    for number in range(attempts.SIGNUP_IP[0].count):
        assert sign_up(number).status_code == 302
    refused = sign_up(99)
    assert refused.status_code == 429 and "Too many attempts" in refused.content.decode()
    assert not User.objects.filter(email="new99@example.com").exists()


@pytest.mark.django_db
def test_invitations_are_limited_per_user(acme: Workspace, acme_owner: User, acme_client: Client) -> None:
    for number in range(attempts.INVITE_USER[0].count):
        services.invitation_create(
            workspace=acme, email=f"i{number}@example.com", role=Role.VIEWER, invited_by=acme_owner
        )
    response = acme_client.post("/settings/members/", {"email": "one.more@example.com", "role": "viewer"})
    assert response.status_code == 400
    assert "Too many invitations" in response.content.decode()


@pytest.mark.django_db
def test_guessing_invitation_tokens_is_limited_per_ip(acme: Workspace) -> None:
    client = Client()
    for number in range(attempts.INVITE_ACCEPT_IP[0].count):
        assert client.get(f"/invite/guess-{number}/").status_code == 404
    assert client.get("/invite/guess-last/").status_code == 429


def test_the_count_is_exact_under_concurrency() -> None:
    """Counted in Redis before the attempt goes ahead: of 40 attempts at once against a limit
    of 5, exactly 5 get through (a read-then-write counter lets most of them in)."""
    from concurrent.futures import ThreadPoolExecutor

    limit = (attempts.Limit("test-concurrency", 5, 60),)
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: attempts.hit([(limit, "someone@example.com")]), range(40)))
    assert answers.count(None) == 5


def test_ipv6_clients_are_limited_by_their_64_network() -> None:
    from esp.net import client_limit_key

    first = client_limit_key({"REMOTE_ADDR": "2001:db8:1:2::1"})
    assert first == client_limit_key({"REMOTE_ADDR": "2001:db8:1:2:ffff::9"}) == "2001:db8:1:2::/64"
    assert client_limit_key({"REMOTE_ADDR": "2001:db8:1:3::1"}) != first
    assert client_limit_key({"REMOTE_ADDR": "203.0.113.7"}) == "203.0.113.7"
