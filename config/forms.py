"""Form pieces the admins share."""

from django import forms


def spec_field(*, rows: int, placeholder: str = "") -> forms.CharField:
    """A monospace text area for a YAML or JSON spec, kept exactly as typed."""
    attrs = {"rows": rows, "class": "vLargeTextField", "spellcheck": "false",
             "style": "font-family: monospace; width: 90%;"}  # fmt: skip
    if placeholder:
        attrs["placeholder"] = placeholder
    return forms.CharField(label="Spec (YAML or JSON)", strip=False, widget=forms.Textarea(attrs))
