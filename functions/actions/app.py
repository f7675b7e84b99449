"""Release links: GET /actions/{token} shows the facts and DingTalk's login, GET /actions/login comes back from it
with the clicker, POST /actions/{token} queues the release once for them."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from opsbot.actions import handler, pages
from opsbot.ingress.http import make_resolver
from opsbot.log import logger

app = make_resolver()


def _page(status: int, html: str) -> Response:
    return Response(status_code=status, body=html, headers=pages.HEADERS)


def _visit() -> handler.Visit:
    event = app.current_event
    return handler.Visit(
        forwarded_proto=event.headers.get("x-forwarded-proto") or "",
        host=event.request_context.domain_name or event.headers.get("host") or "",
        source_ip=event.request_context.http.source_ip,
        user_agent=event.headers.get("user-agent") or "",
    )


# A static route: API Gateway, and this resolver, prefer it to /actions/{token}.
@app.get("/actions/login")
def signed_in():
    return _page(*handler.login(dict(app.current_event.query_string_parameters or {}), _visit()))


@app.get("/actions/<token>")
def show_release(token: str):
    via = (app.current_event.query_string_parameters or {}).get("via") or ""
    return _page(*handler.show(token, _visit(), via))


@app.post("/actions/<token>")
def confirm_release(token: str):
    event = app.current_event
    return _page(
        *handler.confirm(token, event.headers.get("content-type") or "", event.body, event.is_base64_encoded, _visit())
    )


@app.exception_handler(Exception)
def unavailable(exc: Exception):
    # A person is looking at this: a page, not JSON. The trace goes to the log only.
    logger.exception("release link failed")
    return _page(503, pages.refused(503, "opsbot could not take this right now; nothing was changed. Try again."))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return app.resolve(event, context)
