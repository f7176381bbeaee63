from django import forms


class AccessKeyForm(forms.Form):
    """The label of a new AccessKey (optional; the service shortens it)."""

    name = forms.CharField(required=False, max_length=100)
