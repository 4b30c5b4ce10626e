"""Check constraints validated in Python (crm.check_constraints) agree with Django's query."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    CheckConstraint,
    DateField,
    DecimalField,
    F,
    Field,
    IntegerField,
    Q,
    Value,
)
from django.test.utils import CaptureQueriesContext

from crm.check_constraints import Unsupported, evaluate
from crm.models import Account, TimeStamped
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 1)

# Conditions of every shape the models use, each with the values it is tried on (None: NULL).
CASES: list[tuple[Q, dict[str, list[object]]]] = [
    (Q(satisfaction__gte=1, satisfaction__lte=5), {"satisfaction": [None, 0, 1, 5, 6]}),
    (
        Q(nps__isnull=True) | Q(nps__gte=0, nps__lte=10),
        {"nps": [None, -1, 0, 10, 11]},
    ),
    (Q(size_band__in=["smb", "mid_market"]), {"size_band": [None, "smb", "SMB", ""]}),
    (
        Q(archived_on__isnull=True) | Q(archived_on__gte=F("entered_on")),
        {"archived_on": [None, DAY - timedelta(days=1), DAY], "entered_on": [None, DAY]},
    ),
    (
        Q(converted_on__isnull=True, converted_via="")
        | Q(converted_on__isnull=False, converted_via__in=["direct", "partner"]),
        {"converted_on": [None, DAY], "converted_via": ["", "direct", "online", None]},
    ),
    (Q(amount__gte=Decimal("0")), {"amount": [None, Decimal("-0.01"), Decimal("0"), 3]}),
    (
        Q(source="survey") | Q(survey_response__isnull=True),
        {
            "source": ["survey", "portal", None],
            "survey_response": [None, 7],
        },
    ),
    (~Q(from_tier=F("to_tier")), {"from_tier": [None, 1, 2], "to_tier": [None, 1]}),
    (
        ~Q(status="approved") | Q(account__isnull=False, protected_until__gte=F("protected_from")),
        {
            "status": ["approved", "won"],
            "account": [None, 5],
            "protected_from": [None, DAY],
            "protected_until": [None, DAY - timedelta(days=1), DAY],
        },
    ),
    (Q(recurring=True, stage="won"), {"recurring": [True, False, None], "stage": ["won", "open"]}),
]


def _field(domain: list[object]) -> Field[Any, Any]:
    """The model field a column of these values would be (as Django's check passes it)."""
    kinds = {type(value) for value in domain if value is not None}
    if bool in kinds:
        return BooleanField()
    if Decimal in kinds:
        return DecimalField(max_digits=12, decimal_places=2)
    if int in kinds:
        return IntegerField()
    if date in kinds:
        return DateField()
    return CharField()


@pytest.mark.parametrize(("condition", "domain"), CASES)
def test_python_and_the_database_agree_on_every_value(
    condition: Q, domain: dict[str, list[object]]
) -> None:
    names = list(domain)
    for combination in product(*(domain[name] for name in names)):
        values = dict(zip(names, combination, strict=True))
        verdict = evaluate(condition, values)
        # Django's query: a condition that holds or is unknown (NULL) passes.
        against = {name: Value(value, _field(domain[name])) for name, value in values.items()}
        assert (verdict is not False) == Q(condition).check(against), (condition, values)


def test_what_python_cannot_compare_exactly_is_left_to_the_database() -> None:
    with pytest.raises(Unsupported):  # text orders by the database's collation
        evaluate(Q(name__gte="m"), {"name": "n"})
    with pytest.raises(Unsupported):  # a text value against a number
        evaluate(Q(satisfaction__gte=1), {"satisfaction": "3"})
    with pytest.raises(Unsupported):  # a lookup through a relation
        evaluate(Q(partner__is_active=True), {"partner": 1})
    with pytest.raises(Unsupported):  # a field left out of the validation
        evaluate(Q(nps__gte=0), {})


def test_every_check_constraint_of_the_models_is_evaluated_in_python() -> None:
    """The conditions use only what `evaluate` knows: none needs a query (values of the right
    types for each field; NULL where a field may hold one)."""
    samples: dict[str, object] = {}
    for model in apps.get_models():
        if not issubclass(model, TimeStamped):
            continue
        for constraint in model._meta.constraints:
            if not isinstance(constraint, CheckConstraint):
                continue
            values: dict[str, object] = {"pk": None}
            for field in model._meta.concrete_fields:
                internal = field.get_internal_type()
                sample: object = samples.get(internal, None)
                if internal in {"DateField"}:
                    sample = DAY
                elif internal in {"DecimalField"}:
                    sample = Decimal("1")
                elif internal.endswith("IntegerField") or internal in {"ForeignKey", "AutoField"}:
                    sample = 1
                elif internal in {"CharField", "TextField"}:
                    sample = ""
                elif internal == "BooleanField":
                    sample = True
                values[field.name] = sample
            evaluate(Q(constraint.condition), values)  # raises Unsupported if it could not


def test_a_violated_check_constraint_gives_its_message_without_a_query() -> None:
    account = AccountFactory(entered_on=DAY)
    account.archived_on = DAY - timedelta(days=1)
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationError) as error:
        account.validate_constraints()
    assert error.value.messages == [Account._meta.constraints[1].get_violation_error_message()]
    assert "account_archived_not_before_entered" in error.value.messages[0]
    assert not [q for q in queries.captured_queries if '"_check"' in q["sql"]]
    account.archived_on = DAY
    account.validate_constraints()
