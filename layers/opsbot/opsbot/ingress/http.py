"""The HTTP side every ingress function shares: one resolver shape, JSON errors, no stack traces."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from opsbot.ingress.errors import IngressError
from opsbot.log import logger


def json_response(status: int, body: dict) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False),
    )


def make_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.exception_handler(IngressError)
    def client_error(exc: IngressError):
        logger.warning("request refused", extra={"status": exc.status, "reason": exc.message})
        return json_response(exc.status, {"error": exc.message})

    @app.not_found
    def not_found(_exc):
        return json_response(404, {"error": "no such route"})

    @app.exception_handler(Exception)
    def backend_error(exc: Exception):
        # Not the sender's fault (DynamoDB/SQS/SSM trouble): 503 so GitLab and DingTalk retry. The stack trace
        # goes to the log only, never to the response.
        logger.exception("ingress failed")
        return json_response(503, {"error": "temporarily unavailable, please retry"})

    return app
