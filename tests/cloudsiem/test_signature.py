"""The ACS3-HMAC-SHA256 verifier against the request captured from the official
SDK (docs: the wire contract's test vector, secret ``testAccessKeySecret``)."""

import pytest

from cloudsiem import signature

SECRET = "testAccessKeySecret"
BODY = (
    b"CurrentPage=1&EndTime=1700086400000&EventName=Suspicious+login&Order=desc"
    b"&OrderField=GmtModified&PageSize=10&RegionId=cn-hangzhou&StartTime=1700000000000"
    b"&Status=0&ThreadLevel.1=serious&ThreadLevel.2=suspicious"
)
SIGNED = (
    "accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;"
    "x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version"
)
HEADERS = {
    "host": "127.0.0.1:45421",
    "x-acs-version": "2022-06-16",
    "x-acs-action": "DescribeCloudSiemEvents",
    "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
    "x-acs-date": "2026-11-28T17:07:50Z",
    "x-acs-signature-nonce": "090056186cd7826164cf55002f1f80fc",
    "accept": "application/json",
    "content-type": "application/x-www-form-urlencoded",
    "x-acs-content-sha256": "9d72ae056f92ecaffe0537c174cfb05bd1f9af8532f1470366e55225fff59cc6",
    "x-acs-credentials-provider": "static_ak",
    "authorization": (
        f"ACS3-HMAC-SHA256 Credential=testAccessKeyId,SignedHeaders={SIGNED},"
        "Signature=1a96a814e8f6a7cdf0b1396f02f15f145010dbc48e2c643a91f872e9a05dddde"
    ),
}
CANONICAL = "\n".join(
    [
        "POST",
        "/",
        "",
        "accept:application/json",
        "content-type:application/x-www-form-urlencoded",
        "host:127.0.0.1:45421",
        "user-agent:AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
        "x-acs-action:DescribeCloudSiemEvents",
        "x-acs-content-sha256:9d72ae056f92ecaffe0537c174cfb05bd1f9af8532f1470366e55225fff59cc6",
        "x-acs-credentials-provider:static_ak",
        "x-acs-date:2026-11-28T17:07:50Z",
        "x-acs-signature-nonce:090056186cd7826164cf55002f1f80fc",
        "x-acs-version:2022-06-16",
        "",
        SIGNED,
        "9d72ae056f92ecaffe0537c174cfb05bd1f9af8532f1470366e55225fff59cc6",
    ]
)


def _verify(secret=SECRET, headers=None, body=BODY, query=""):
    headers = headers or HEADERS
    authorization = signature.parse_authorization(headers["authorization"])
    signature.verify(
        authorization,
        secret,
        method="POST",
        path="/",
        query_string=query,
        headers=headers,
        body=body,
    )


def test_it_accepts_the_captured_request():
    _verify()


def test_it_rebuilds_the_captured_canonical_request():
    authorization = signature.parse_authorization(HEADERS["authorization"])

    canonical = signature.canonical_request(
        "POST", "/", "", HEADERS, authorization.signed_headers, signature.payload_hash(BODY)
    )

    assert canonical == CANONICAL
    assert authorization.access_key_id == "testAccessKeyId"


def test_it_refuses_a_tampered_body():
    with pytest.raises(signature.SignatureError) as refused:
        _verify(body=BODY.replace(b"Status=0", b"Status=1"))

    assert refused.value.code == "SignatureDoesNotMatch"
    assert "x-acs-content-sha256" in refused.value.message


def test_it_refuses_a_wrong_secret():
    with pytest.raises(signature.SignatureError) as refused:
        _verify(secret="anotherSecret")

    assert refused.value.code == "SignatureDoesNotMatch"


def test_it_refuses_a_changed_action():
    headers = {**HEADERS, "x-acs-action": "DescribeAlerts"}

    with pytest.raises(signature.SignatureError) as refused:
        _verify(headers=headers)

    assert refused.value.code == "SignatureDoesNotMatch"


def test_it_refuses_an_unsigned_acs_header():
    headers = {**HEADERS, "x-acs-security-token": "added on the way"}

    with pytest.raises(signature.SignatureError) as refused:
        _verify(headers=headers)

    assert refused.value.code == "IncompleteSignature"
    assert "x-acs-security-token" in refused.value.message


def test_it_requires_the_nonce_and_date_to_be_signed():
    signed = SIGNED.replace(";x-acs-signature-nonce", "")
    header = HEADERS["authorization"].replace(SIGNED, signed)

    with pytest.raises(signature.SignatureError) as refused:
        signature.check_signed_headers(
            signature.parse_authorization(header), {k: v for k, v in HEADERS.items()}
        )

    assert refused.value.code == "IncompleteSignature"
    assert "x-acs-signature-nonce" in refused.value.message


@pytest.mark.parametrize(
    "header",
    ["", "Bearer abc", "ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=" + "0" * 64],
)
def test_it_refuses_other_authorizations(header):
    with pytest.raises(signature.SignatureError) as refused:
        signature.parse_authorization(header)

    assert refused.value.code == "IncompleteSignature"


def test_it_encodes_the_query_as_the_sdk_signs_it():
    # The captured unicode query of ListDisposeStrategy and its canonical line.
    query = "MaxResults=5&NextToken=%E4%B8%AD%E6%96%87+%2A~%21%27%28%29%26%3D%3F%23"

    assert signature.canonical_query(query) == (
        "MaxResults=5&NextToken=%E4%B8%AD%E6%96%87%20%2A~%21%27%28%29%26%3D%3F%23"
    )
