"""DingTalk robot callbacks (HTTP mode) → one job per msgId; answered with an empty reply at once."""
from aws_lambda_powertools.logging import correlation_paths

from opsbot.dingtalk.callback import EMPTY_REPLY, handle_callback
from opsbot.ingress.http import json_response, make_resolver
from opsbot.log import logger

app = make_resolver()


@app.post("/webhooks/dingtalk")
def dingtalk_webhook():
    handle_callback(app.current_event)
    return json_response(200, EMPTY_REPLY)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
