"""DingTalk robot callbacks (HTTP mode): reads are answered in the response, acts are queued once per msgId."""

from aws_lambda_powertools.logging import correlation_paths

from opsbot.chat.inbound.dingtalk import handle_callback
from opsbot.ingress.http import json_response, make_resolver
from opsbot.log import logger

app = make_resolver()


@app.post("/webhooks/dingtalk")
def dingtalk_webhook():
    return json_response(200, handle_callback(app.current_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
