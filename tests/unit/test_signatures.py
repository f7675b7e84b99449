"""The three signature schemes against known-answer vectors, and every way a request is refused."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from unit_support import SIGNATURE_VECTORS, fixture_bytes

from opsbot.dingtalk import signature as dingtalk
from opsbot.drone import signature as drone
from opsbot.ingress.errors import Unauthorized

ROBOT = SIGNATURE_VECTORS["dingtalk_robot_send"]
CALLBACK = SIGNATURE_VECTORS["dingtalk_outgoing_callback"]
DRONE = SIGNATURE_VECTORS["drone_webhook"]
DRONE_BODY = fixture_bytes(DRONE["body_file"])
DRONE_SENT_AT = parsedate_to_datetime(DRONE["header_date"]).timestamp()


def drone_headers(**overrides) -> dict:
    headers = {
        "date": DRONE["header_date"],
        "digest": DRONE["header_digest"],
        "signature": DRONE["header_signature"],
        "x-drone-event": DRONE["header_x_drone_event"],
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


# --- DingTalk robot send (加签) --------------------------------------------------------------------------


def test_robot_send_sign_matches_the_known_answer():
    assert dingtalk.sign(ROBOT["timestamp"], ROBOT["secret"]) == ROBOT["sign_base64"]


def test_robot_send_url_matches_the_known_answer():
    webhook = ROBOT["url"].split("&timestamp=")[0]
    assert webhook == "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    url = dingtalk.signed_robot_url(webhook, ROBOT["secret"], now_ms=int(ROBOT["timestamp"]))
    assert url == ROBOT["url"]
    assert url.endswith("&sign=" + ROBOT["sign_query_value"])


def test_robot_url_without_a_query_gets_one():
    url = dingtalk.signed_robot_url("https://robot.example/send", ROBOT["secret"], now_ms=int(ROBOT["timestamp"]))
    assert url == f"https://robot.example/send?timestamp={ROBOT['timestamp']}&sign={ROBOT['sign_query_value']}"


def test_robot_url_uses_the_current_time_when_none_is_given():
    import time

    before = int(time.time() * 1000)
    url = dingtalk.signed_robot_url("https://robot.example/send?access_token=t", ROBOT["secret"])
    query = parse_qs(urlsplit(url).query)
    timestamp = query["timestamp"][0]
    assert before <= int(timestamp) <= int(time.time() * 1000)
    # parse_qs undoes the URL encoding: what is left is the plain base64 sign.
    assert query["sign"] == [dingtalk.sign(timestamp, ROBOT["secret"])]


# --- DingTalk callback -----------------------------------------------------------------------------------


def test_callback_sign_matches_the_known_answer():
    assert dingtalk.sign(CALLBACK["header_timestamp"], CALLBACK["app_secret"]) == CALLBACK["header_sign"]
    headers = dingtalk.callback_headers(CALLBACK["app_secret"], now_ms=int(CALLBACK["header_timestamp"]))
    assert headers == {"timestamp": CALLBACK["header_timestamp"], "sign": CALLBACK["header_sign"]}


@pytest.mark.parametrize("offset_ms", [0, 59 * 60 * 1000, -59 * 60 * 1000, 3600 * 1000, -3600 * 1000])
def test_callback_within_the_hour_is_accepted(offset_ms):
    headers = {"timestamp": CALLBACK["header_timestamp"], "sign": CALLBACK["header_sign"]}
    dingtalk.verify_callback(headers, CALLBACK["app_secret"], now_ms=int(CALLBACK["header_timestamp"]) + offset_ms)


@pytest.mark.parametrize("offset_ms", [3600 * 1000 + 1, -(3600 * 1000 + 1), 86_400_000])
def test_callback_older_or_newer_than_an_hour_is_refused(offset_ms):
    headers = {"timestamp": CALLBACK["header_timestamp"], "sign": CALLBACK["header_sign"]}
    with pytest.raises(Unauthorized, match="stale"):
        dingtalk.verify_callback(headers, CALLBACK["app_secret"], now_ms=int(CALLBACK["header_timestamp"]) + offset_ms)


def test_callback_with_a_bad_sign_is_refused():
    headers = {"timestamp": CALLBACK["header_timestamp"], "sign": CALLBACK["header_sign"][:-2] + "A="}
    with pytest.raises(Unauthorized, match="does not match"):
        dingtalk.verify_callback(headers, CALLBACK["app_secret"], now_ms=int(CALLBACK["header_timestamp"]))


def test_callback_signed_with_another_secret_is_refused():
    headers = dingtalk.callback_headers("another-secret", now_ms=int(CALLBACK["header_timestamp"]))
    with pytest.raises(Unauthorized):
        dingtalk.verify_callback(headers, CALLBACK["app_secret"], now_ms=int(CALLBACK["header_timestamp"]))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"timestamp": CALLBACK["header_timestamp"]},
        {"sign": CALLBACK["header_sign"]},
        {"timestamp": "", "sign": CALLBACK["header_sign"]},
    ],
)
def test_callback_without_timestamp_or_sign_is_refused(headers):
    with pytest.raises(Unauthorized, match="missing"):
        dingtalk.verify_callback(headers, CALLBACK["app_secret"], now_ms=int(CALLBACK["header_timestamp"]))


@pytest.mark.parametrize("timestamp", ["1732521600000.5", "-1732521600000", "17325e9", "now"])
def test_callback_with_a_non_numeric_timestamp_is_refused(timestamp):
    with pytest.raises(Unauthorized, match="invalid"):
        dingtalk.verify_callback(
            {"timestamp": timestamp, "sign": CALLBACK["header_sign"]},
            CALLBACK["app_secret"],
            now_ms=int(CALLBACK["header_timestamp"]),
        )


# --- Drone HTTP Signature --------------------------------------------------------------------------------


def test_drone_digest_matches_the_known_answer():
    assert drone.body_digest(DRONE_BODY) == DRONE["header_digest"]


def test_drone_known_answer_verifies_close_to_its_date():
    drone.verify(drone_headers(), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT + 30)


def test_drone_sign_reproduces_the_known_answer():
    headers = drone.sign(DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)
    assert headers == {
        "Date": DRONE["header_date"],
        "Digest": DRONE["header_digest"],
        "Signature": DRONE["header_signature"],
    }


def test_drone_known_answer_is_stale_today():
    # The vector's Date is from 2024 on purpose: replaying it now must fail.
    with pytest.raises(Unauthorized, match="stale"):
        drone.verify(drone_headers(), DRONE_BODY, DRONE["secret"])


def test_drone_authorization_signature_form_is_accepted():
    headers = drone_headers(signature=None, authorization="Signature " + DRONE["header_signature"])
    drone.verify(headers, DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_authorization_scheme_is_case_insensitive():
    headers = drone_headers(signature=None, authorization="signature " + DRONE["header_signature"])
    drone.verify(headers, DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_authorization_with_another_scheme_is_no_signature():
    headers = drone_headers(signature=None, authorization="Bearer " + DRONE["header_signature"])
    with pytest.raises(Unauthorized, match="missing"):
        drone.verify(headers, DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


@pytest.mark.parametrize("skew", [299, -299, 300, -300])
def test_drone_date_within_five_minutes_is_accepted(skew):
    drone.verify(drone_headers(), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT + skew)


@pytest.mark.parametrize("skew", [301, -301, 3600, -86_400])
def test_drone_date_more_than_five_minutes_off_is_refused(skew):
    with pytest.raises(Unauthorized, match="stale"):
        drone.verify(drone_headers(), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT + skew)


def test_drone_body_that_does_not_match_the_digest_is_refused():
    tampered = DRONE_BODY.replace(b'"status":"success"', b'"status":"failure"', 1)
    assert tampered != DRONE_BODY
    with pytest.raises(Unauthorized, match="digest"):
        drone.verify(drone_headers(), tampered, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_digest_header_of_another_body_is_refused():
    # A signature made for another body cannot carry this one, even with a fresh Date.
    other = drone.sign(b'{"event":"build"}', DRONE["secret"], now=DRONE_SENT_AT)
    headers = {k.lower(): v for k, v in other.items()}
    with pytest.raises(Unauthorized, match="digest"):
        drone.verify(headers, DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_missing_signature_is_refused():
    with pytest.raises(Unauthorized, match="missing Drone signature"):
        drone.verify(drone_headers(signature=None), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_wrong_secret_is_refused():
    with pytest.raises(Unauthorized, match="signature does not match"):
        drone.verify(drone_headers(), DRONE_BODY, "not-the-secret", now=DRONE_SENT_AT)


def test_drone_altered_signature_value_is_refused():
    altered = DRONE["header_signature"].replace('signature="L', 'signature="M')
    with pytest.raises(Unauthorized, match="signature does not match"):
        drone.verify(drone_headers(signature=altered), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_signature_must_cover_date_and_digest():
    only_date = DRONE["header_signature"].replace('headers="date digest"', 'headers="date"')
    with pytest.raises(Unauthorized, match="cover date and digest"):
        drone.verify(drone_headers(signature=only_date), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_unsupported_algorithm_is_refused():
    sha1 = DRONE["header_signature"].replace("hmac-sha256", "hmac-sha1")
    with pytest.raises(Unauthorized, match="algorithm"):
        drone.verify(drone_headers(signature=sha1), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


@pytest.mark.parametrize("missing", ["date", "digest"])
def test_drone_missing_signed_header_is_refused(missing):
    with pytest.raises(Unauthorized, match="missing"):
        drone.verify(drone_headers(**{missing: None}), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_unreadable_date_is_refused():
    # Signed correctly over the unreadable Date, so that the Date itself is what gets refused.
    values = {"date": "yesterday-ish", "digest": drone.body_digest(DRONE_BODY)}
    signature = drone._hmac_b64(DRONE["secret"], drone._signing_string(["date", "digest"], values))
    headers = drone_headers(
        date="yesterday-ish",
        signature=(f'keyId="hmac-key",algorithm="hmac-sha256",signature="{signature}",headers="date digest"'),
    )
    with pytest.raises(Unauthorized, match="Date"):
        drone.verify(headers, DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT)


def test_drone_tampered_date_breaks_the_signature():
    with pytest.raises(Unauthorized, match="signature does not match"):
        drone.verify(
            drone_headers(date="Mon, 25 Nov 2024 08:06:01 GMT"), DRONE_BODY, DRONE["secret"], now=DRONE_SENT_AT
        )


def test_drone_fresh_signature_round_trips():
    body = b'{"event":"build","repo":{"slug":"a/b"}}'
    headers = {k.lower(): v for k, v in drone.sign(body, "s3cret").items()}
    drone.verify(headers, body, "s3cret")
