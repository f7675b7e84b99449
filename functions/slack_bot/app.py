"""The Slack app's two Request URLs, verified alike (v0 signature, chat/inbound/slack.py): interactivity (a button
pressed on opsbot's message, queued once per press; the worker runs its command as the presser and updates the
message in place) and the Events API (a typed @opsbot message or direct message, queued once per event_id; the
worker answers it in its thread)."""

from aws_lambda_powertools.logging import correlation_paths

from opsbot.chat.inbound.slack import handle_event, handle_press
from opsbot.ingress.http import json_response, make_resolver
from opsbot.log import logger

app = make_resolver()


@app.post("/webhooks/slack/interactivity")
def slack_interactivity():
    # 200 for every press it takes: Slack shows the presser an error for anything else, or after 3 s.
    return json_response(200, handle_press(app.current_event).as_dict())


@app.post("/webhooks/slack/events")
def slack_events():
    # 200 for every event it takes: Slack retries anything else, or an answer after 3 s.
    return json_response(200, handle_event(app.current_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
