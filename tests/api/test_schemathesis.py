"""Property-based run of the whole API against a live server, once per role's token.

Schemathesis generates requests from the OpenAPI schema the app serves; every response must be
free of server errors and match the schema. The run is bounded (a few examples per operation
and role) so it stays within a couple of minutes on two cores.
"""

from __future__ import annotations

import io
import json
from typing import Any

import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from rest_framework.test import APIClient
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from crm.services import api_token_issue
from tests.api.conftest import Market
from tests.cast import Cast

EXAMPLES_PER_OPERATION = 4
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _schema_for(user: Any) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _run_operation(operation: Any, *, base_url: str, token: str) -> None:
    headers = {"Authorization": f"Token {token}"}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    run()


def test_it_finds_no_server_errors_nor_schema_violations_for_any_role(
    transactional_db: None, live_server: Any, cast: Cast, market: Market
) -> None:
    call_command("compute_metrics", "--week", "2026-W46", stdout=io.StringIO())
    schema = schemathesis.openapi.from_dict(_schema_for(cast.manager))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    base_url = live_server.url
    roles = [cast.manager, cast.rep_user, cast.executive, cast.partner_a_user]
    failures = []
    for user in roles:
        for operation in operations:
            # A token of its own for each operation: revoking one is among the operations.
            token = api_token_issue(user=user)[1]
            try:
                _run_operation(operation, base_url=base_url, token=token)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # collected: one run reports every operation
                failures.append(f"{user.get_username()} {operation.label}: {error}"[:3000])
    assert not failures, "\n\n".join(failures)
