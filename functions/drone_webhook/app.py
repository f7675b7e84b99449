"""Drone's global webhook → one job per finished build."""

from aws_lambda_powertools.logging import correlation_paths

from opsbot.drone.webhook import handle_delivery
from opsbot.ingress.http import json_response, make_resolver
from opsbot.log import logger

app = make_resolver()


@app.post("/webhooks/drone")
def drone_webhook():
    outcome = handle_delivery(app.current_event)
    return json_response(outcome.http_status, outcome.as_dict())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
