from cloudsiem import dispatch


class CloudSiemMiddleware:
    """Answers cloud SIEM API calls (``POST /`` with an ``x-acs-action`` header)
    before the console's middleware sees them.

    ``/`` is also the console's home page, behind the CSRF check and the login
    requirement, which would answer the SDK with an HTML 403 or a redirect to
    the login page. API calls authenticate with their signature instead, so
    this middleware comes first in ``MIDDLEWARE`` and hands them to the
    dispatcher; every other request goes on unchanged.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if dispatch.is_api_request(request):
            return dispatch.handle(request)
        return self.get_response(request)
