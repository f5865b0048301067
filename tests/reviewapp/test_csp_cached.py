"""reviewapp.fastpaths.csp: the cached policy header is what django-csp's own middleware writes."""

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE
from csp.middleware import CSPMiddleware as StockCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from reviewapp.fastpaths.csp import CSPMiddleware

POLICY = {"DIRECTIVES": {"default-src": ["'self'"], "img-src": ["'self'", "data:"]}}


def _headers(middleware_class, *, path="/desk/", nonce=False, **attributes):
    request = RequestFactory().get(path)
    response = HttpResponse("ok", status=attributes.pop("status", 200))
    for name, value in attributes.items():
        setattr(response, name, value)
    middleware = middleware_class(lambda request: response)
    middleware.process_request(request)
    if nonce:
        str(request.csp_nonce)
    middleware.process_response(request, response)
    return {h: response.get(h) for h in (HEADER, HEADER_REPORT_ONLY)}, request


def _ours_and_stock(**kwargs):
    """The headers our middleware writes (and its request), and those django-csp's writes."""
    ours, request = _headers(CSPMiddleware, **kwargs)
    stock, _ = _headers(StockCSPMiddleware, **kwargs)
    return ours, stock, request


def test_a_plain_response_gets_the_sites_policy():
    headers, stock, request = _ours_and_stock()
    assert headers == stock
    assert "default-src 'self'" in headers[HEADER] and headers[HEADER_REPORT_ONLY] is None
    with pytest.raises(Exception, match="not available after the CSP header"):
        str(request.csp_nonce)  # asked for too late, as with the stock middleware


@pytest.mark.parametrize(
    ("attributes", "says"),
    [
        ({"_csp_update": {"img-src": ["https://example.org"]}}, "https://example.org"),
        ({"_csp_replace": {"default-src": ["'none'"]}}, "default-src 'none'"),
        ({"_csp_config": {"default-src": ["'none'"]}}, "default-src 'none'"),
        ({"_csp_exempt": True}, None),
        ({"status": 404}, "default-src 'self'"),  # DEBUG is off: error pages get the policy
    ],
)
def test_per_view_policies_exemptions_and_errors_match_the_stock_middleware(attributes, says):
    headers, stock, _ = _ours_and_stock(**attributes)
    assert headers == stock
    if says is None:
        assert headers[HEADER] is None
    else:
        assert says in headers[HEADER]


def test_a_request_that_used_a_nonce_gets_it_in_the_header():
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"script-src": [NONCE]}}):
        headers, request = _headers(CSPMiddleware, nonce=True)
    assert f"script-src 'nonce-{request._csp_nonce}'" in headers[HEADER]


def test_changed_settings_change_the_cached_header():
    with override_settings(CONTENT_SECURITY_POLICY=POLICY):
        first, first_stock, _ = _ours_and_stock()
    with override_settings(
        CONTENT_SECURITY_POLICY=None, CONTENT_SECURITY_POLICY_REPORT_ONLY=POLICY
    ):
        second, second_stock, _ = _ours_and_stock()
    with override_settings(CONTENT_SECURITY_POLICY={**POLICY, "EXCLUDE_URL_PREFIXES": ["/desk/"]}):
        excluded, excluded_stock, _ = _ours_and_stock()
    assert (first, second, excluded) == (first_stock, second_stock, excluded_stock)
    assert first[HEADER] and not first[HEADER_REPORT_ONLY]
    assert second[HEADER_REPORT_ONLY] == first[HEADER] and not second[HEADER]
    assert excluded == {HEADER: None, HEADER_REPORT_ONLY: None}


def test_the_site_sends_the_policy_header(client):
    response = client.get("/accounts/login/")
    assert "frame-ancestors 'none'" in response[HEADER]
