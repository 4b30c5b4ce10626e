"""The shared cast of users: a sales manager, a rep, an executive, and two partner users
from two different partners; and a test client signed in as any of them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from channels.models import SalesRep
from partners.models import Partner
from tests.factories import PartnerFactory, PartnerUserFactory, SalesRepFactory, UserFactory


@dataclass
class Cast:
    manager: AbstractBaseUser
    rep_user: AbstractBaseUser
    rep: SalesRep
    executive: AbstractBaseUser
    partner_a: Partner
    partner_a_user: AbstractBaseUser
    partner_b: Partner
    partner_b_user: AbstractBaseUser


@pytest.fixture
def cast(db: None) -> Cast:
    manager = UserFactory(username="manager", role="sales_manager")
    rep_user = UserFactory(username="rep", role="sales_rep")
    executive = UserFactory(username="exec", role="executive")
    partner_a = PartnerFactory(name="Alpha Systems", external_id="P-ALPHA")
    partner_b = PartnerFactory(name="Beta Cloud", external_id="P-BETA")
    return Cast(
        manager=manager,
        rep_user=rep_user,
        rep=SalesRepFactory(user=rep_user, name="Rita Rep"),
        executive=executive,
        partner_a=partner_a,
        partner_a_user=PartnerUserFactory(user__username="partner-a", partner=partner_a).user,
        partner_b=partner_b,
        partner_b_user=PartnerUserFactory(user__username="partner-b", partner=partner_b).user,
    )


def signed_in(user: AbstractBaseUser) -> Client:
    """A test client signed in as `user`."""
    client = Client()
    client.force_login(user)
    return client
