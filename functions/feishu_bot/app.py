"""Feishu (Lark) app bot event callbacks: the URL check is answered, a message is queued once per message_id; the
worker reads it from Feishu's API and replies."""

from aws_lambda_powertools.logging import correlation_paths

from opsbot.chat.inbound.feishu import handle_event
from opsbot.ingress.http import json_response, make_resolver
from opsbot.log import logger

app = make_resolver()


@app.post("/webhooks/feishu")
def feishu_webhook():
    # 200 for everything it takes: Feishu retries an event whose answer is not HTTP 200 within 3 s.
    return json_response(200, handle_event(app.current_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
