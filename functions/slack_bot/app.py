"""Slack app interactivity: a button pressed on opsbot's message is verified (v0 signature) and queued once per
press; the worker runs the button's command as the presser and updates the message in place."""

from aws_lambda_powertools.logging import correlation_paths

from opsbot.chat.inbound.slack import handle_press
from opsbot.ingress.http import json_response, make_resolver
from opsbot.log import logger

app = make_resolver()


@app.post("/webhooks/slack/interactivity")
def slack_interactivity():
    # 200 for every press it takes: Slack shows the presser an error for anything else, or after 3 s.
    return json_response(200, handle_press(app.current_event).as_dict())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
