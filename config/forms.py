"""Form pieces the admins share."""

import yaml
from django import forms

from config.errors import ChameleonError, error_lines


def spec_field(*, rows: int, placeholder: str = "") -> forms.CharField:
    """A monospace text area for a YAML or JSON spec, kept exactly as typed."""
    attrs = {"rows": rows, "class": "vLargeTextField", "spellcheck": "false",
             "style": "font-family: monospace; width: 90%;"}  # fmt: skip
    if placeholder:
        attrs["placeholder"] = placeholder
    return forms.CharField(label="Spec (YAML or JSON)", strip=False, widget=forms.Textarea(attrs))


class SpecForm(forms.ModelForm):
    """A definition saved from its spec through its service, from `clean()`, so every spec
    error lands on the form with its path and nothing is saved."""

    spec_source = spec_field(rows=24)
    author = None  # set per request by the admin's get_form

    class Meta:
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        spec = self.current_spec()
        if spec:
            self.fields["spec_source"].initial = yaml.safe_dump(spec, sort_keys=False)

    def current_spec(self) -> dict | None:
        raise NotImplementedError

    def saved(self, source: str):
        """Save through the service; return the instance."""
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        source = (cleaned.get("spec_source") or "").replace("\r\n", "\n")
        if source:
            try:
                self.instance = self.saved(source)
            except ChameleonError as exc:
                for line in error_lines(exc):
                    self.add_error("spec_source", line)
        return cleaned


class VersionedSpecForm(SpecForm):
    """A versioned definition (an agent, a guardian): the add page creates version 1, the change
    page publishes the next through its services: `create(source=, by=)` and
    `publish(<publishes>=instance, source=, by=)`."""

    create = publish = None
    publishes = ""  # the publish service's name for the instance: "agent", "guardian"

    def current_spec(self):
        version = self.instance.current_version if self.instance.pk else None
        return version.spec if version else None

    def saved(self, source):
        if self.instance.pk is None:
            return type(self).create(source=source, by=self.author)
        type(self).publish(**{self.publishes: self.instance}, source=source, by=self.author)
        return type(self.instance).objects.get(pk=self.instance.pk)
