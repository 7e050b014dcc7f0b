"""The review pages' access: login, the signed session cookie, CSRF, and refusals, with Falcon's TestClient."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import redis
from falcon.testing import Result, TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from autolog.errors import AuthenticationFailed
from autolog.settings import Settings
from autolog.store import NewItem
from tests.web.conftest import KEY, OTHER_KEY
from web.app import AutologApi
from web.auth import CSRF_HEADER, SESSION_COOKIE, SessionCookies
from web.sign_ins import SignIns

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def login(client: TestClient, key: str = KEY, **fields: str) -> Result:
    body = "&".join(f"{name}={value}" for name, value in {"key": key, **fields}.items())
    return client.simulate_post("/ui/login", body=body, headers=FORM)


@dataclass(frozen=True)
class Browser:
    """A client signed in through the login form, its cookie's value and its session's CSRF token."""

    client: TestClient
    cookie: str
    csrf: str


def csrf_of(page: str) -> str:
    """Return the CSRF token a page carries in its ``csrf-token`` meta tag."""
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


@pytest.fixture
def browser(anonymous: TestClient) -> Browser:
    response = login(anonymous)
    assert response.status_code == 303
    cookie = response.cookies[SESSION_COOKIE].value
    signed_in = TestClient(anonymous.app, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    return Browser(client=signed_in, cookie=cookie, csrf=csrf_of(signed_in.simulate_get("/ui").text))


@pytest.fixture
def item_id(api: AutologApi, unique_id: Callable[[str], str]) -> str:
    created = unique_id("UI")
    api.services.store.items.create([NewItem(created, f"/media/{created}.mov")])
    return created


def with_cookie(api: Any, value: str) -> TestClient:
    return TestClient(api, headers={"Cookie": f"{SESSION_COOKIE}={value}"})


def test_login_with_a_key_sets_a_signed_httponly_secure_samesite_cookie_and_redirects(anonymous: TestClient,
                                                                                      api_settings: Settings) -> None:
    response = login(anonymous, next="/ui/items/LF1409")

    assert (response.status_code, response.headers["location"]) == (303, "/ui/items/LF1409")
    cookie = response.cookies[SESSION_COOKIE]
    assert (cookie.http_only, cookie.secure, cookie.same_site, cookie.path) == (True, True, "Lax", "/")
    assert cookie.max_age == api_settings.session_ttl_s
    assert KEY not in cookie.value


def test_login_with_a_wrong_key_is_refused_and_sets_no_cookie(anonymous: TestClient) -> None:
    response = login(anonymous, key="not-a-key")

    assert response.status_code == 401
    assert SESSION_COOKIE not in response.cookies
    assert "not valid" in response.text and '<form method="post" action="/ui/login"' in response.text


def test_login_does_not_redirect_off_the_review_pages(anonymous: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/ui", "/items/X", "/ui\\evil"):
        assert login(anonymous, next=target).headers["location"] == "/ui"


def test_login_returns_to_a_filtered_or_searched_library_with_its_query(anonymous: TestClient) -> None:
    target = "/ui?status=Awaiting+User+Input&q=fox"  # as the library's search form sends it

    response = login(anonymous, next=quote(target, safe=""))

    assert response.headers["location"] == target


def test_login_posted_from_another_site_is_refused(anonymous: TestClient) -> None:
    body = f"key={KEY}"
    response = anonymous.simulate_post("/ui/login", body=body, headers={**FORM, "Origin": "https://evil.example"})

    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_login_needs_a_form(anonymous: TestClient) -> None:
    response = anonymous.simulate_post("/ui/login", json={"key": KEY})

    assert response.status_code == 415


def test_the_session_cookie_opens_the_pages_and_the_json_api(browser: Browser, item_id: str) -> None:
    assert browser.client.simulate_get("/ui").status_code == 200
    assert browser.client.simulate_get(f"/items/{item_id}").json["id"] == item_id


def test_the_session_cookie_opens_the_dashboard_and_a_signed_out_or_forged_one_does_not(
    api: AutologApi, browser: Browser,
) -> None:
    page = browser.client.simulate_get("/dashboard/")
    assert page.status_code == 200 and "Dramatiq Dashboard" in page.text

    forged = SessionCookies((KEY,), secret="guessed", ttl_s=3600).issue(KEY)[0]
    for cookie in (forged, "garbage"):
        refused = with_cookie(api, cookie).simulate_get("/dashboard/")
        assert (refused.status_code, refused.headers["WWW-Authenticate"].startswith("Basic")) == (401, True)
    browser.client.simulate_post("/ui/logout", headers={CSRF_HEADER: browser.csrf})
    assert with_cookie(api, browser.cookie).simulate_get("/dashboard/").status_code == 401


def test_unsafe_request_with_the_cookie_needs_the_session_csrf_token(browser: Browser, item_id: str) -> None:
    missing = browser.client.simulate_post(f"/items/{item_id}/cancel")
    wrong = browser.client.simulate_post(f"/items/{item_id}/cancel", headers={CSRF_HEADER: "x" * 43})
    other_session = browser.client.simulate_post(f"/items/{item_id}/cancel", headers={CSRF_HEADER: "é"})

    assert (missing.status_code, wrong.status_code, other_session.status_code) == (403, 403, 403)
    assert browser.client.simulate_get(f"/items/{item_id}").json["cancelled"] is False
    done = browser.client.simulate_post(f"/items/{item_id}/cancel", headers={CSRF_HEADER: browser.csrf})
    assert done.status_code == 200 and done.json["item"]["cancelled"] is True


def test_a_csrf_token_of_another_session_is_refused(browser: Browser, anonymous: TestClient, item_id: str) -> None:
    other = login(anonymous, key=OTHER_KEY).cookies[SESSION_COOKIE].value
    other_token = csrf_of(with_cookie(anonymous.app, other).simulate_get("/ui").text)

    response = browser.client.simulate_post(f"/items/{item_id}/cancel", headers={CSRF_HEADER: other_token})

    assert response.status_code == 403


def test_requests_with_a_key_need_no_csrf_token(client: TestClient, item_id: str) -> None:
    assert client.simulate_post(f"/items/{item_id}/cancel").status_code == 200


def test_tampered_cookie_is_refused(api: AutologApi, browser: Browser, item_id: str) -> None:
    payload, signature = browser.cookie.rsplit(".", 1)
    tampered = with_cookie(api, payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:])
    forged = SessionCookies((KEY,), secret="guessed", ttl_s=3600).issue(KEY)[0]

    for cookie in (tampered, with_cookie(api, forged), with_cookie(api, "garbage")):
        assert cookie.simulate_get(f"/items/{item_id}").status_code == 401
        assert cookie.simulate_get("/ui").status_code == 303


def test_expired_cookie_is_refused(api: AutologApi, api_settings: Settings, item_id: str) -> None:
    issued_long_ago = SessionCookies(api_settings.api_keys, secret=api_settings.session_secret,
                                     ttl_s=api_settings.session_ttl_s,
                                     clock=lambda: time.time() - api_settings.session_ttl_s - 1)
    expired = with_cookie(api, issued_long_ago.issue(KEY)[0])

    api_answer = expired.simulate_get(f"/items/{item_id}")
    assert (api_answer.status_code, api_answer.json["description"]) == (401, "the session has expired: sign in again")
    # No basic-auth challenge: a page's script must not open the browser's login dialog.
    assert "WWW-Authenticate" not in api_answer.headers
    page = expired.simulate_get("/ui/items/" + item_id)
    assert (page.status_code, page.headers["location"]) == (303, f"/ui/login?next=%2Fui%2Fitems%2F{item_id}")


def test_a_session_ends_when_its_key_is_removed() -> None:
    secret = "fixed-secret"
    before = SessionCookies((KEY, OTHER_KEY), secret=secret, ttl_s=3600)
    after = SessionCookies((KEY,), secret=secret, ttl_s=3600)

    with pytest.raises(AuthenticationFailed, match="no longer accepted"):
        after.read(before.issue(OTHER_KEY)[0])
    assert after.read(before.issue(KEY)[0]).key_id


@pytest.mark.parametrize(("method", "route"), [
    ("GET", "/ui"), ("GET", "/ui/items/X"), ("GET", "/ui?status=Awaiting%20User%20Input"), ("POST", "/ui/logout"),
])
def test_signed_out_browsers_are_sent_to_the_login_page(anonymous: TestClient, method: str, route: str) -> None:
    response = anonymous.simulate_request(method, route)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")


def test_signed_out_requests_for_data_are_refused(anonymous: TestClient, item_id: str) -> None:
    assert anonymous.simulate_get("/ui/progress", params={"ids": item_id, "max_s": "0"}).status_code == 401
    assert anonymous.simulate_get("/ui/counts").status_code == 401
    assert anonymous.simulate_get(f"/items/{item_id}/artifacts/poster/0").status_code == 401
    assert anonymous.simulate_get(f"/items/{item_id}/exports/ale").status_code == 401


def test_a_signed_out_page_s_script_gets_a_plain_401_and_a_bare_request_the_basic_challenge(
        anonymous: TestClient, item_id: str) -> None:
    # A tab signed out in another tab (or whose cookie expired and was dropped) still runs its scripts: their
    # requests carry no cookie, and a basic-auth challenge would open the browser's login dialog over the page.
    from_scripts = [anonymous.simulate_get("/ui/counts"),
                    anonymous.simulate_get("/ui/progress", params={"ids": item_id, "max_s": "0"}),
                    anonymous.simulate_get(f"/items/{item_id}", headers={CSRF_HEADER: "token-of-a-gone-session"})]
    bare = anonymous.simulate_get(f"/items/{item_id}")

    assert [(answer.status_code, "WWW-Authenticate" in answer.headers) for answer in from_scripts] == [(401, False)] * 3
    assert (bare.status_code, bare.headers["WWW-Authenticate"].startswith("Basic")) == (401, True)


def test_the_login_page_and_the_static_files_are_open(anonymous: TestClient) -> None:
    page = anonymous.simulate_get("/ui/login")

    assert page.status_code == 200 and 'type="password"' in page.text and 'for="key"' in page.text
    assert "for 12 hours." in page.text
    assert anonymous.simulate_get("/ui/static/ui.css").headers["content-type"].startswith("text/css")


def test_logout_needs_the_csrf_token_and_clears_the_cookie(browser: Browser) -> None:
    refused = browser.client.simulate_post("/ui/logout", body="", headers=FORM)
    done = browser.client.simulate_post("/ui/logout", body=f"csrf_token={browser.csrf}", headers=FORM)

    assert refused.status_code == 403
    assert (done.status_code, done.headers["location"]) == (303, "/ui/login")
    cleared = done.cookies[SESSION_COOKIE]
    assert cleared.value == "" and cleared.max_age in (0, None)
    assert (cleared.secure, cleared.http_only, cleared.same_site) == (True, True, "Lax")


def test_a_signed_out_session_is_refused_even_with_a_copy_of_its_cookie(browser: Browser, item_id: str) -> None:
    copied = TestClient(browser.client.app, headers={"Cookie": f"{SESSION_COOKIE}={browser.cookie}"})
    assert copied.simulate_get(f"/items/{item_id}").status_code == 200

    browser.client.simulate_post("/ui/logout", body=f"csrf_token={browser.csrf}", headers=FORM)

    assert copied.simulate_get(f"/items/{item_id}").status_code == 401
    page = copied.simulate_get("/ui")
    assert (page.status_code, page.headers["location"].split("?")[0]) == (303, "/ui/login")


def test_failed_sign_ins_from_one_address_are_throttled_then_allowed_again(api: AutologApi) -> None:
    client = TestClient(api)
    address = "192.0.2.10"

    def sign_in(key: str, remote_addr: str = address) -> Result:
        return client.simulate_post("/ui/login", body=f"key={key}", headers=FORM, remote_addr=remote_addr)

    assert [sign_in("wrong").status_code for _ in range(10)] == [401] * 10
    throttled = sign_in(KEY)
    assert throttled.status_code == 429 and 0 < int(throttled.headers["retry-after"]) <= 300
    assert "too many failed sign-ins" in throttled.text and SESSION_COOKIE not in throttled.cookies
    assert sign_in(KEY, remote_addr="192.0.2.11").status_code == 303, "another address is not held back"

    # When the window has passed (its key expires), the address may sign in, and success clears its count
    api.services.redis_client.delete(f"{api.services.settings.namespace}:ui:failed-sign-ins:{address}")
    assert sign_in("wrong").status_code == 401
    assert sign_in(KEY).status_code == 303
    assert [sign_in("wrong").status_code for _ in range(10)] == [401] * 10


def test_behind_the_local_tls_proxy_each_reviewer_is_throttled_by_their_own_address(api: AutologApi) -> None:
    # Given reviewers reaching the API through a proxy on its host, which appends their address
    client = TestClient(api)

    def sign_in(key: str, forwarded_for: str, peer: str = "127.0.0.1") -> Result:
        return client.simulate_post("/ui/login", body=f"key={key}", remote_addr=peer,
                                    headers={**FORM, "X-Forwarded-For": forwarded_for})

    # When one of them mistypes the key ten times
    assert [sign_in("wrong", "198.51.100.7").status_code for _ in range(10)] == [401] * 10

    # Then that reviewer is held back, another is not, and a claim in the header of a client
    # forging it first is not believed: the proxy's appended entry counts
    assert sign_in(KEY, "198.51.100.7").status_code == 429
    assert sign_in(KEY, "198.51.100.8").status_code == 303
    assert sign_in(KEY, "198.51.100.8, 198.51.100.7").status_code == 429
    # And a peer that is not the local proxy is counted by its own address, whatever it claims
    assert [sign_in("wrong", f"203.0.113.{n}", peer="192.0.2.20").status_code for n in range(10)] == [401] * 10
    assert sign_in(KEY, "203.0.113.99", peer="192.0.2.20").status_code == 429


def test_with_redis_unreachable_sign_ins_are_neither_throttled_nor_signed_out() -> None:
    # No retries: redis-py's default backoff would spend seconds per call on a server that is not there.
    client = redis.Redis(unix_socket_path="/nonexistent/redis.sock", retry=Retry(NoBackoff(), 0))
    unreachable = SignIns(client, namespace="n")

    unreachable.failed("192.0.2.1")
    unreachable.sign_out("token", expires_at=time.time() + 60)

    assert unreachable.wait_s("192.0.2.1") == 0
    assert not unreachable.is_signed_out("token")
