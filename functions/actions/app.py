"""Release links: GET /actions/{token} shows a confirmation page, POST queues the release once."""
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from opsbot.actions import handler, pages
from opsbot.ingress.http import make_resolver
from opsbot.log import logger

app = make_resolver()


def _page(status: int, html: str) -> Response:
    return Response(status_code=status, body=html, headers=pages.HEADERS)


@app.get("/actions/<token>")
def show_release(token: str):
    return _page(*handler.show(token))


@app.post("/actions/<token>")
def confirm_release(token: str):
    event = app.current_event
    return _page(*handler.confirm(token, event.request_context.http.source_ip, event.headers.get("user-agent") or ""))


@app.exception_handler(Exception)
def unavailable(exc: Exception):
    # A person is looking at this: a page, not JSON. The trace goes to the log only.
    logger.exception("release link failed")
    return _page(503, pages.refused(503, "opsbot could not take this right now; nothing was changed. Try again."))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
